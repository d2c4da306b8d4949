"""Separation of duties (issue 13): no money leaves on one person's word.

Revision ID: 0012_separated_duties
Revises: 0011_login_safety

- ``iban_changes``: an IBAN entered or changed by the desk waits for the prestataire's
  confirmation (or an admin's validation): requested → confirmed | cancelled, one
  change waiting per prestataire, who asked and who confirmed, never the same user.
- ``payout_batches`` gain ``released_at`` / ``released_by_user_id``: a prepared batch
  is released (its file downloadable, then marked paid) by another user than the one
  who prepared it. The stored status stays ``open`` until paid or cancelled (SQLite
  cannot rebuild a table that ``payouts`` reference, so its inline CHECK keeps its
  three values); prepared = open and not released, released = open and released.
The two-person rules are CHECKs on PostgreSQL and on the new tables, triggers on the
altered SQLite table (docs/duties.md).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012_separated_duties'
down_revision = '0011_login_safety'
branch_labels = None
depends_on = None

RELEASE_RULE = ("released_by_user_id IS NULL OR created_by_user_id IS NULL "
                "OR released_by_user_id <> created_by_user_id")
PAID_RULE = ("status <> 'paid' OR released_at IS NULL OR closed_by_user_id IS NULL "
             "OR created_by_user_id IS NULL OR closed_by_user_id <> created_by_user_id")
RELEASED_OPEN_RULE = "released_at IS NULL OR status IN ('open', 'paid', 'cancelled')"


def upgrade():
    op.create_table(
        'iban_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('party_id', sa.Integer(), nullable=False),
        sa.Column('iban', sa.String(length=34), nullable=False),
        sa.Column('bic', sa.String(length=11), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('requested_by_user_id', sa.Integer(), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('confirmed_by_user_id', sa.Integer(), nullable=True),
        sa.Column('cancelled_by_user_id', sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('requested', 'confirmed', 'cancelled')",
                           name=op.f('ck_iban_changes_status')),
        sa.CheckConstraint("(status = 'confirmed') = (confirmed_by_user_id IS NOT NULL)",
                           name=op.f('ck_iban_changes_confirmed_by')),
        sa.CheckConstraint("(status = 'requested') = (closed_at IS NULL)",
                           name=op.f('ck_iban_changes_closed')),
        sa.CheckConstraint("confirmed_by_user_id IS NULL OR requested_by_user_id IS NULL "
                           "OR confirmed_by_user_id <> requested_by_user_id",
                           name=op.f('ck_iban_changes_two_people')),
        sa.ForeignKeyConstraint(['party_id'], ['parties.id'],
                                name=op.f('fk_iban_changes_party_id_parties')),
        sa.ForeignKeyConstraint(['requested_by_user_id'], ['users.id'],
                                name=op.f('fk_iban_changes_requested_by_user_id_users')),
        sa.ForeignKeyConstraint(['confirmed_by_user_id'], ['users.id'],
                                name=op.f('fk_iban_changes_confirmed_by_user_id_users')),
        sa.ForeignKeyConstraint(['cancelled_by_user_id'], ['users.id'],
                                name=op.f('fk_iban_changes_cancelled_by_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_iban_changes')),
    )
    with op.batch_alter_table('iban_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iban_changes_party_id'), ['party_id'], unique=False)
        batch_op.create_index('uq_iban_changes_one_requested', ['party_id'], unique=True,
                              sqlite_where=sa.text("status = 'requested'"),
                              postgresql_where=sa.text("status = 'requested'"))

    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.add_column('payout_batches', sa.Column('released_at', sa.DateTime(timezone=True),
                                                  nullable=True))
        op.add_column('payout_batches', sa.Column('released_by_user_id', sa.Integer(),
                                                  nullable=True))
        op.create_foreign_key('fk_payout_batches_released_by_user_id_users', 'payout_batches',
                              'users', ['released_by_user_id'], ['id'])
        op.create_check_constraint(op.f('ck_payout_batches_two_people_release'),
                                   'payout_batches', RELEASE_RULE)
        op.create_check_constraint(op.f('ck_payout_batches_two_people_paid'),
                                   'payout_batches', PAID_RULE)
    else:
        # Native ADD COLUMN: a batch rebuild would drop a table that payouts reference.
        # No REFERENCES clause: SQLite could then not drop the column on downgrade.
        op.execute("ALTER TABLE payout_batches ADD COLUMN released_at DATETIME")
        op.execute("ALTER TABLE payout_batches ADD COLUMN released_by_user_id INTEGER")
        for action in ("insert", "update"):
            op.execute(
                f"""CREATE TRIGGER payout_batches_two_people_{action}
                    BEFORE {action.upper()} ON payout_batches
                    WHEN NOT ({_new(RELEASE_RULE)}) OR NOT ({_new(PAID_RULE)})
                    BEGIN SELECT RAISE(ABORT, 'payout batch: two people'); END""")


def _new(rule: str) -> str:
    for column in ("released_by_user_id", "created_by_user_id", "closed_by_user_id",
                   "released_at", "status"):
        rule = rule.replace(column, f"NEW.{column}")
    return rule.replace("NEW.NEW.", "NEW.")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f('ck_payout_batches_two_people_paid'), 'payout_batches')
        op.drop_constraint(op.f('ck_payout_batches_two_people_release'), 'payout_batches')
        op.drop_constraint('fk_payout_batches_released_by_user_id_users', 'payout_batches')
        op.drop_column('payout_batches', 'released_by_user_id')
        op.drop_column('payout_batches', 'released_at')
    else:
        for action in ("insert", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS payout_batches_two_people_{action}")
        # SQLite 3.35+ drops a plain column in place (no rebuild).
        op.execute("ALTER TABLE payout_batches DROP COLUMN released_by_user_id")
        op.execute("ALTER TABLE payout_batches DROP COLUMN released_at")
    with op.batch_alter_table('iban_changes', schema=None) as batch_op:
        batch_op.drop_index('uq_iban_changes_one_requested')
        batch_op.drop_index(batch_op.f('ix_iban_changes_party_id'))
    op.drop_table('iban_changes')
