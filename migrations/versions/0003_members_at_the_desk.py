"""Members at the desk: contact details, charter consent, membership fee.

Revision ID: 0003_members_at_the_desk
Revises: 0002_login_security

The desk records a member's contact (phone, e-mail, address, commune), when they
accepted the charter, and until when their membership is paid; the yearly fee is a
new kind of entry.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_members_at_the_desk"
down_revision = "0002_login_security"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("parties") as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("address", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("commune", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("charter_accepted_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("membership_until", sa.Date(), nullable=True))
        batch_op.create_index("ix_parties_phone", ["phone"])
    op.bulk_insert(sa.table("entry_kinds", sa.column("name")), [{"name": "membership_fee"}])


def downgrade():
    op.execute("DELETE FROM entry_kinds WHERE name = 'membership_fee'")
    op.drop_index("ix_parties_phone", table_name="parties")
    # Native DROP COLUMN (SQLite >= 3.35, PostgreSQL): a batch rebuild of parties would
    # have to drop a table that accounts and users reference.
    for column in ("membership_until", "charter_accepted_at", "commune", "address", "email",
                   "phone"):
        op.execute(f"ALTER TABLE parties DROP COLUMN {column}")
