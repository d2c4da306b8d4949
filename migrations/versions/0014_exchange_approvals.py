"""Exchanges above the thresholds wait for a second person's approval (issue 13).

Revision ID: 0014_exchange_approvals
Revises: 0013_desk_registration

- ``exchange_approvals``: an exchange above ``exchange.approval_above_cents`` (per
  operation) or ``exchange.approval_daily_above_cents`` (per member and Paris day) is
  recorded here, pending, and moves no money; another bank user or an admin approves
  it (then it is posted, ``entry_id``) or refuses it with a reason; the one who asked
  may cancel it. pending → approved | refused | cancelled, the decider never the one
  who asked (CHECK ``two_people``). The settings are rows of ``setting_changes``
  (defaults in bousol/ledger/kernel/settings.py): nothing to migrate for them.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014_exchange_approvals'
down_revision = '0013_desk_registration'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'exchange_approvals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('party_id', sa.Integer(), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('tender', sa.String(length=16), nullable=False),
        sa.Column('programme_id', sa.Integer(), nullable=True),
        sa.Column('memo', sa.String(length=500), nullable=True),
        sa.Column('rule', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('requested_by_user_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by_user_id', sa.Integer(), nullable=True),
        sa.Column('cancelled_by_user_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'approved', 'refused', 'cancelled')",
                           name=op.f('ck_exchange_approvals_status')),
        sa.CheckConstraint('amount_cents > 0', name=op.f('ck_exchange_approvals_amount_positive')),
        sa.CheckConstraint("tender IN ('cash', 'cheque', 'card', 'transfer')",
                           name=op.f('ck_exchange_approvals_tender')),
        sa.CheckConstraint("rule IN ('operation', 'day')", name=op.f('ck_exchange_approvals_rule')),
        sa.CheckConstraint("(status = 'approved') = (entry_id IS NOT NULL)",
                           name=op.f('ck_exchange_approvals_approved_entry')),
        sa.CheckConstraint("(status = 'pending') = (decided_at IS NULL)",
                           name=op.f('ck_exchange_approvals_decided')),
        sa.CheckConstraint("status <> 'refused' OR reason IS NOT NULL",
                           name=op.f('ck_exchange_approvals_refusal_reason')),
        sa.CheckConstraint("decided_by_user_id IS NULL OR requested_by_user_id IS NULL "
                           "OR decided_by_user_id <> requested_by_user_id",
                           name=op.f('ck_exchange_approvals_two_people')),
        sa.ForeignKeyConstraint(['party_id'], ['parties.id'],
                                name=op.f('fk_exchange_approvals_party_id_parties')),
        sa.ForeignKeyConstraint(['programme_id'], ['aid_programmes.id'],
                                name=op.f('fk_exchange_approvals_programme_id_aid_programmes')),
        sa.ForeignKeyConstraint(['requested_by_user_id'], ['users.id'],
                                name=op.f('fk_exchange_approvals_requested_by_user_id_users')),
        sa.ForeignKeyConstraint(['decided_by_user_id'], ['users.id'],
                                name=op.f('fk_exchange_approvals_decided_by_user_id_users')),
        sa.ForeignKeyConstraint(['cancelled_by_user_id'], ['users.id'],
                                name=op.f('fk_exchange_approvals_cancelled_by_user_id_users')),
        sa.ForeignKeyConstraint(['entry_id'], ['entries.id'],
                                name=op.f('fk_exchange_approvals_entry_id_entries')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_approvals')),
        sa.UniqueConstraint('entry_id', name=op.f('uq_exchange_approvals_entry_id')),
    )
    op.create_index(op.f('ix_exchange_approvals_status_id'), 'exchange_approvals',
                    ['status', 'id'], unique=False)
    op.create_index(op.f('ix_exchange_approvals_party_id_requested_at'), 'exchange_approvals',
                    ['party_id', 'requested_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_exchange_approvals_party_id_requested_at'),
                  table_name='exchange_approvals')
    op.drop_index(op.f('ix_exchange_approvals_status_id'), table_name='exchange_approvals')
    op.drop_table('exchange_approvals')
