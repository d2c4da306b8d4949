"""API tokens get scopes and a checked lifetime (issue 13).

Revision ID: 0010_token_scopes
Revises: 0009_association

``api_tokens.scopes``: what a token may be used for (names of
``bousol.ledger.access.api_tokens.SCOPES``, one space apart, each at most once: the CHECK
``scopes_known``). The tokens issued before this revision get their role's full set
(``ROLE_SCOPES``, written out here so that the migration does not move with the code),
so every client keeps working as before. ``expires_after_created``: a token's expiry
follows its creation.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010_token_scopes'
down_revision = '0009_association'
branch_labels = None
depends_on = None

NAMES = ("read", "pay", "till", "desk", "vouchers", "tokens")
ROLE_SCOPES = {
    "soliste": "read pay tokens",
    "prestataire": "read pay till tokens",
    "bank": "read desk tokens",
    "ccas": "read vouchers tokens",
    "admin": "read tokens",
}
SCOPES_CHECK = "".join(["REPLACE(" * len(NAMES), "' ' || scopes || ' '",
                        *(f", ' {name} ', ' ')" for name in NAMES), " = ' '"])


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.String(length=100), nullable=True))
    tokens = sa.table('api_tokens', sa.column('user_id'), sa.column('scopes'))
    users = sa.table('users', sa.column('id'), sa.column('role'))
    role = sa.select(users.c.role).where(users.c.id == tokens.c.user_id).scalar_subquery()
    op.execute(tokens.update().values(scopes=sa.case(ROLE_SCOPES, value=role, else_='read')))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('scopes', existing_type=sa.String(length=100), nullable=False)
        batch_op.create_check_constraint(op.f('ck_api_tokens_scopes_known'), SCOPES_CHECK)
        batch_op.create_check_constraint(op.f('ck_api_tokens_expires_after_created'),
                                         'expires_at > created_at')


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_api_tokens_expires_after_created'), type_='check')
        batch_op.drop_constraint(op.f('ck_api_tokens_scopes_known'), type_='check')
        batch_op.drop_column('scopes')
