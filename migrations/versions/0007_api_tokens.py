"""Bearer tokens of the JSON API v1.

Revision ID: 0007_api_tokens
Revises: 0006_ccas_vouchers

Only the SHA-256 of a token is stored (the token itself is shown once, to the client
that asked for it). A token expires, and its owner or an admin can revoke it.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007_api_tokens'
down_revision = '0006_ccas_vouchers'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_from', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['revoked_by_user_id'], ['users.id'], name=op.f('fk_api_tokens_revoked_by_user_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index(op.f('ix_api_tokens_user_id_revoked_at_expires_at'), 'api_tokens', ['user_id', 'revoked_at', 'expires_at'], unique=False)
    op.create_index(op.f('ix_api_tokens_created_from_created_at'), 'api_tokens', ['created_from', 'created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_api_tokens_created_from_created_at'), table_name='api_tokens')
    op.drop_index(op.f('ix_api_tokens_user_id_revoked_at_expires_at'), table_name='api_tokens')
    op.drop_table('api_tokens')
