"""Log-ins that cannot be raced or turned into a lock-out (issue 13, docs/security.md).

Revision ID: 0011_login_safety
Revises: 0010_token_scopes

login_attempts.kind: a log-in (``login``), a PIN typed to confirm a payment (``pin``)
the password typed again by a logged-in user (``confirm``), or a username the public
application form said was unavailable (``signup``); each kind is throttled apart, so
wrong PINs never lock the log-in. Existing rows are log-ins.

password_resets: the forgotten-password links; only the SHA-256 of a link's token is
kept, with its expiry and the moment it was used (once).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011_login_safety'
down_revision = '0010_token_scopes'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('login_attempts') as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                      server_default='login'))
        batch_op.create_check_constraint(
            op.f('ck_login_attempts_kind'), "kind IN ('login', 'pin', 'confirm', 'signup')")
    op.create_table(
        'password_resets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('requested_from', sa.String(length=64), nullable=False),
        sa.CheckConstraint('expires_at > created_at',
                           name=op.f('ck_password_resets_expires_after_creation')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_password_resets_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash')),
    )
    op.create_index(op.f('ix_password_resets_user_id_used_at'), 'password_resets',
                    ['user_id', 'used_at'], unique=False)
    op.create_index(op.f('ix_password_resets_requested_from_created_at'), 'password_resets',
                    ['requested_from', 'created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_password_resets_requested_from_created_at'),
                  table_name='password_resets')
    op.drop_index(op.f('ix_password_resets_user_id_used_at'), table_name='password_resets')
    op.drop_table('password_resets')
    with op.batch_alter_table('login_attempts') as batch_op:
        batch_op.drop_constraint(op.f('ck_login_attempts_kind'), type_='check')
        batch_op.drop_column('kind')
