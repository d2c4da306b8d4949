"""The association advances the 5 % bonus when the bonus fund is empty.

Revision ID: 0008_bonus_advance
Revises: 0007_api_tokens

An exchange must not be refused because no partner's subsidy has arrived yet (the JSON
API contract names no such refusal): the bonus fund may go below zero, which records
the bonus the association owes the reserve until a subsidy covers it
(docs/ledger.md, "Exchange").
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008_bonus_advance'
down_revision = '0007_api_tokens'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE accounts SET allow_negative = TRUE WHERE system_code = 'bonus_fund'")


def downgrade():
    # Refused by the balance CHECK while an advance is outstanding: history stays.
    op.execute("UPDATE accounts SET allow_negative = FALSE WHERE system_code = 'bonus_fund'")
