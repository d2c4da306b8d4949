"""Per-account daily figures, maintained with the entries (issue 18).

Revision ID: 0018_account_days
Revises: 0017_export_jobs

- ``account_days``: one row per (account, Paris day, kind of entry) with the entries
  that put money in and took it out (counts and cents) and the day's entry-id range.
  The posting engine upserts it in the entry's own transaction; pages read it instead
  of counting the journal (today's takings, the reserve's history, the date bounds of
  a filtered statement). Backfilled here from the journal
  (:func:`bousol.ledger.books.account_days.rebuild`).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018_account_days'
down_revision = '0017_export_jobs'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'account_days',
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('in_count', sa.Integer(), nullable=False),
        sa.Column('in_cents', sa.BigInteger(), nullable=False),
        sa.Column('out_count', sa.Integer(), nullable=False),
        sa.Column('out_cents', sa.BigInteger(), nullable=False),
        sa.Column('first_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.Column('last_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.CheckConstraint('in_count >= 0 AND out_count >= 0 AND in_count + out_count > 0',
                           name=op.f('ck_account_days_counts')),
        sa.CheckConstraint('in_cents >= 0 AND out_cents >= 0', name=op.f('ck_account_days_cents')),
        sa.CheckConstraint('(in_count = 0) = (in_cents = 0) AND (out_count = 0) = (out_cents = 0)',
                           name=op.f('ck_account_days_count_matches_cents')),
        sa.CheckConstraint('first_entry_id <= last_entry_id',
                           name=op.f('ck_account_days_entry_range')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_account_days_account_id_accounts')),
        sa.ForeignKeyConstraint(['kind'], ['entry_kinds.name'],
                                name=op.f('fk_account_days_kind_entry_kinds')),
        sa.PrimaryKeyConstraint('account_id', 'day', 'kind', name=op.f('pk_account_days')),
    )
    from bousol.ledger.books import account_days

    account_days.rebuild(op.get_bind())


def downgrade():
    op.drop_table('account_days')
