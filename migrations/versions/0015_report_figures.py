"""The activity report's figures, kept with the entries (issue 18).

Revision ID: 0015_report_figures
Revises: 0014_exchange_approvals

- ``report_day_flows``: per Paris day, kind of entry, kind of account (system code, or
  ``''`` for the members' Bou'Sol accounts) and channel, the net of the postings and
  the number of entries (the money supply at each month's end is their running sum);
- ``report_month_parties``: per Paris month and party, the payments received, B2B, aid
  vouchers and refunds of a prestataire, the CCAS's aid to solistes, a soliste's
  payments made (a reversed payment is taken off its own month);
- ``report_months``: the distinct active solistes and prestataires of each month.

All three are kept by bousol/ledger/association/report_figures.py in each entry's own
transaction (docs/reports.md, "Maintained figures"); the upgrade fills them from the
entries already written.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015_report_figures'
down_revision = '0014_exchange_approvals'
branch_labels = None
depends_on = None

COUNTS = ("purchases_count", "b2b_count", "paper_count", "earmarked_count",
          "refunds_count", "refunds_b2b_count", "aid_count", "spent_count")
CENTS = ("purchases_cents", "b2b_cents", "paper_cents", "earmarked_cents",
         "refunds_cents", "refunds_b2b_cents", "aid_cents")
ORDER = ("purchases_count", "purchases_cents", "b2b_count", "b2b_cents", "paper_count",
         "paper_cents", "earmarked_count", "earmarked_cents", "refunds_count",
         "refunds_cents", "refunds_b2b_count", "refunds_b2b_cents", "aid_count",
         "aid_cents", "spent_count")


def upgrade():
    op.create_table(
        'report_day_flows',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('entries', sa.Integer(), nullable=False),
        sa.Column('cents', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('entries > 0', name=op.f('ck_report_day_flows_entries_positive')),
        sa.CheckConstraint("channel IN ('', 'cash', 'cheque', 'card', 'transfer', 'request')",
                           name=op.f('ck_report_day_flows_channel')),
        sa.PrimaryKeyConstraint('day', 'kind', 'code', 'channel',
                                name=op.f('pk_report_day_flows')),
    )
    op.create_table(
        'report_month_parties',
        sa.Column('party_kind', sa.String(length=16), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('party_id', sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer() if name.endswith('_count') else sa.BigInteger(),
                    nullable=False) for name in ORDER),
        sa.CheckConstraint("party_kind IN ('soliste', 'prestataire', 'ccas')",
                           name=op.f('ck_report_month_parties_party_kind')),
        sa.CheckConstraint(" AND ".join(f"{c} >= 0" for c in COUNTS),
                           name=op.f('ck_report_month_parties_counts_not_negative')),
        sa.CheckConstraint(" AND ".join(f"{c} >= 0" for c in CENTS),
                           name=op.f('ck_report_month_parties_cents_not_negative')),
        sa.ForeignKeyConstraint(['party_id'], ['parties.id'],
                                name=op.f('fk_report_month_parties_party_id_parties')),
        sa.PrimaryKeyConstraint('party_kind', 'month', 'party_id',
                                name=op.f('pk_report_month_parties')),
    )
    op.create_index(op.f('ix_report_month_parties_party_id'), 'report_month_parties',
                    ['party_id'], unique=False)
    op.create_table(
        'report_months',
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('active_solistes', sa.Integer(), nullable=False),
        sa.Column('active_prestataires', sa.Integer(), nullable=False),
        sa.CheckConstraint('active_solistes >= 0 AND active_prestataires >= 0',
                           name=op.f('ck_report_months_counts_not_negative')),
        sa.PrimaryKeyConstraint('month', name=op.f('pk_report_months')),
    )
    # The entries already written (none on a new database).
    from bousol.ledger.association import report_figures
    report_figures.rebuild(op.get_bind())


def downgrade():
    op.drop_table('report_months')
    op.drop_index(op.f('ix_report_month_parties_party_id'), table_name='report_month_parties')
    op.drop_table('report_month_parties')
    op.drop_table('report_day_flows')
