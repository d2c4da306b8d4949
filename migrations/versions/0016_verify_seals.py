"""Seals of closed months for an incremental ``verify`` (issue 18).

Revision ID: 0016_verify_seals
Revises: 0015_report_figures

- ``period_seals``: one row per sealed Paris month (bousol/ledger/books/seals.py): its
  entry-id range, counts, the digest of its entries and postings, the digest of its
  per-account sums, the audit chain's head when sealed, chained by hashes.
- ``period_seal_accounts``: each account's count and sum of postings in a sealed month.

Both are append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL),
like the journal and the audit trail. Nothing to backfill: the first
``flask bousol verify --seal`` seals every closed month.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016_verify_seals'
down_revision = '0015_report_figures'
branch_labels = None
depends_on = None

TABLES = ("period_seals", "period_seal_accounts")


def upgrade():
    op.create_table(
        'period_seals',
        sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('after_entry_id', sa.BigInteger(), nullable=False),
        sa.Column('last_entry_id', sa.BigInteger(), nullable=False),
        sa.Column('entries', sa.BigInteger(), nullable=False),
        sa.Column('postings', sa.BigInteger(), nullable=False),
        sa.Column('journal_digest', sa.String(length=64), nullable=False),
        sa.Column('accounts_digest', sa.String(length=64), nullable=False),
        sa.Column('audit_seq', sa.BigInteger(), nullable=False),
        sa.Column('audit_hash', sa.String(length=64), nullable=False),
        sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_period_seals')),
        sa.UniqueConstraint('hash', name=op.f('uq_period_seals_hash')),
        sa.UniqueConstraint('month', name=op.f('uq_period_seals_month')),
    )
    op.create_table(
        'period_seal_accounts',
        sa.Column('seal_seq', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('postings', sa.BigInteger(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_period_seal_accounts_account_id_accounts')),
        sa.ForeignKeyConstraint(['seal_seq'], ['period_seals.seq'],
                                name=op.f('fk_period_seal_accounts_seal_seq_period_seals')),
        sa.PrimaryKeyConstraint('seal_seq', 'account_id', name=op.f('pk_period_seal_accounts')),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE
                           ON {table} FOR EACH ROW EXECUTE FUNCTION bousol_append_only()""")
            op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE
                           ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bousol_append_only()""")
    else:
        for table in TABLES:
            for action in ("update", "delete"):
                op.execute(f"""CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()}
                               ON {table}
                               BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END""")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
    else:
        for table in TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{action}")
    op.drop_table('period_seal_accounts')
    op.drop_table('period_seals')
