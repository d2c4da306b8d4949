"""The report's rows of prestataires and the CCAS through one covering index (issue 18).

Revision ID: 0020_report_rows_index
Revises: 0019_member_sort_names

- ``ix_report_month_parties_not_soliste``: a partial index on (month, party_id) of the
  rows that are not solistes', holding (PostgreSQL's INCLUDE) every column the activity
  report sums. The report then reads the index alone, never the table's pages where
  those rows lie scattered among the solistes' (at 10 M entries: 15,000 pages for a
  year). SQLite gets the partial index without the included columns.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020_report_rows_index'
down_revision = '0019_member_sort_names'
branch_labels = None
depends_on = None

_INCLUDED = ['purchases_count', 'b2b_count', 'paper_count', 'earmarked_count',
             'refunds_count', 'refunds_b2b_count', 'aid_count', 'spent_count',
             'purchases_cents', 'b2b_cents', 'paper_cents', 'earmarked_cents',
             'refunds_cents', 'refunds_b2b_cents', 'aid_cents', 'party_kind']


def upgrade():
    op.create_index(
        'ix_report_month_parties_not_soliste', 'report_month_parties',
        ['month', 'party_id'], unique=False,
        postgresql_include=_INCLUDED,
        postgresql_where=sa.text("party_kind <> 'soliste'"),
        sqlite_where=sa.text("party_kind <> 'soliste'"))


def downgrade():
    op.drop_index('ix_report_month_parties_not_soliste', table_name='report_month_parties')
