"""The members' list at the scale of the territory (issue 18, docs/members.md).

Revision ID: 0019_member_sort_names
Revises: 0018_account_days

- ``parties.sort_name`` and ``partners.sort_name``: the accent-folded, case-folded name
  (``bousol.ledger.kernel.text.sort_name``) the members' list is ordered by, compared by
  code point (collation "C" on PostgreSQL). Backfilled here; CHECK ``sort_name IS NOT
  NULL`` on PostgreSQL, two triggers on SQLite (a CHECK rather than NOT NULL: SQLite
  adds a NOT NULL column only with a default, and a table rebuild of ``parties`` would
  drop its triggers).
- Indexes: ``parties (kind, sort_name, code, membership_until, status)`` (a page of the
  list is a range of it, its filters read in the index alone),
  ``parties (kind, membership_until, status)`` (a rare status: a date range),
  ``partners (sort_name, code)``.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019_member_sort_names'
down_revision = '0018_account_days'
branch_labels = None
depends_on = None

RULE = "sort_name IS NOT NULL"
SORT_NAME = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _backfill(table: str) -> None:
    from bousol.ledger.kernel.text import sort_name

    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, name FROM {table}")).all()
    update = sa.text(f"UPDATE {table} SET sort_name = :s WHERE id = :i")
    batch = [{"s": sort_name(name), "i": row_id} for row_id, name in rows]
    for start in range(0, len(batch), 5000):
        conn.execute(update, batch[start:start + 5000])


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in ("parties", "partners"):
        if postgres:
            op.add_column(table, sa.Column('sort_name', SORT_NAME, nullable=True))
            _backfill(table)
            op.create_check_constraint(op.f(f'ck_{table}_sort_name'), table, RULE)
        else:
            # SQLite tests a new column's CHECK against the rows already there (NULL
            # before the backfill) and a rebuild of parties would drop its triggers:
            # the rule is a pair of triggers, as for parties.status (migration 0005).
            op.add_column(table, sa.Column('sort_name', SORT_NAME, nullable=True))
            _backfill(table)
            for action in ("insert", "update"):
                op.execute(
                    f"""CREATE TRIGGER {table}_sort_name_{action} BEFORE {action.upper()}
                        ON {table} WHEN NEW.sort_name IS NULL
                        BEGIN SELECT RAISE(ABORT, '{table}.sort_name is required'); END""")
    op.create_index('ix_parties_kind_sort_name', 'parties',
                    ['kind', 'sort_name', 'code', 'membership_until', 'status'])
    op.create_index('ix_parties_kind_membership', 'parties',
                    ['kind', 'membership_until', 'status'])
    op.create_index('ix_partners_sort_name', 'partners', ['sort_name', 'code'])


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index('ix_partners_sort_name', table_name='partners')
    op.drop_index('ix_parties_kind_membership', table_name='parties')
    op.drop_index('ix_parties_kind_sort_name', table_name='parties')
    for table in ("partners", "parties"):
        if postgres:
            op.drop_constraint(op.f(f'ck_{table}_sort_name'), table, type_='check')
            op.drop_column(table, 'sort_name')
        else:
            op.execute(f"DROP TRIGGER {table}_sort_name_insert")
            op.execute(f"DROP TRIGGER {table}_sort_name_update")
            op.execute(f"ALTER TABLE {table} DROP COLUMN sort_name")
