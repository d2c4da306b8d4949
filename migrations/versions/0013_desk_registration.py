"""The desk's registration and the day's reopening (issue 13, docs/ledger.md).

Revision ID: 0013_desk_registration
Revises: 0012_separated_duties

- ``parties.birth_date`` (optional, 1900-01-01 or later): with the name and the phone,
  how the desk recognises a member already registered.
- ``first_password_codes``: the one-time code printed on a new soliste's registration
  sheet, with which they choose their first password. Only the SHA-256 of the code is
  kept; it expires, is used once, dies after five wrong tries; at most one live code
  (neither used nor revoked) per user.
- ``cash_closings.sequence``: a day reopened by an admin can be closed again, so the
  unique key becomes (business_date, sequence).
- ``cash_closing_reopenings`` (append-only): who reopened which closing, when, why;
  once per closing.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013_desk_registration'
down_revision = '0012_separated_duties'
branch_labels = None
depends_on = None

BIRTH_RULE = "birth_date IS NULL OR birth_date >= '1900-01-01'"


def _append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                       FOR EACH ROW EXECUTE FUNCTION bousol_append_only()""")
    else:
        for action in ("update", "delete"):
            op.execute(f"""CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table}
                           BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END""")


def _drop_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.add_column('parties', sa.Column('birth_date', sa.Date(), nullable=True))
        op.create_check_constraint(op.f('ck_parties_birth_date'), 'parties', BIRTH_RULE)
    else:
        # Native ADD COLUMN with its CHECK: a batch rebuild would have to drop a table
        # that accounts, users and entries reference.
        op.execute("ALTER TABLE parties ADD COLUMN birth_date DATE "
                   f"CONSTRAINT ck_parties_birth_date CHECK ({BIRTH_RULE})")
    op.create_index(op.f('ix_parties_birth_date'), 'parties', ['birth_date'], unique=False)

    op.create_table(
        'first_password_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('failed_attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('created_by_user_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('expires_at > created_at',
                           name=op.f('ck_first_password_codes_expires_after_creation')),
        sa.CheckConstraint('failed_attempts >= 0',
                           name=op.f('ck_first_password_codes_attempts_not_negative')),
        sa.CheckConstraint('used_at IS NULL OR revoked_at IS NULL',
                           name=op.f('ck_first_password_codes_used_or_revoked')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_first_password_codes_user_id_users')),
        sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'],
                                name=op.f('fk_first_password_codes_created_by_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_first_password_codes')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_first_password_codes_code_hash')),
    )
    op.create_index('uq_first_password_codes_one_live', 'first_password_codes', ['user_id'],
                    unique=True,
                    sqlite_where=sa.text("used_at IS NULL AND revoked_at IS NULL"),
                    postgresql_where=sa.text("used_at IS NULL AND revoked_at IS NULL"))

    if postgres:
        op.add_column('cash_closings', sa.Column('sequence', sa.Integer(), nullable=False,
                                                 server_default='1'))
        op.drop_constraint('uq_cash_closings_business_date', 'cash_closings', type_='unique')
        op.create_unique_constraint(op.f('uq_cash_closings_business_date_sequence'),
                                    'cash_closings', ['business_date', 'sequence'])
        op.create_check_constraint(op.f('ck_cash_closings_sequence_positive'),
                                   'cash_closings', 'sequence >= 1')
    else:
        # SQLite rebuilds the table (nothing references it); its append-only triggers
        # go with the old table and are made again.
        _drop_append_only('cash_closings')
        with op.batch_alter_table('cash_closings', recreate='always') as batch_op:
            batch_op.add_column(sa.Column('sequence', sa.Integer(), nullable=False,
                                          server_default='1'))
            batch_op.drop_constraint('uq_cash_closings_business_date', type_='unique')
            batch_op.create_unique_constraint(
                batch_op.f('uq_cash_closings_business_date_sequence'),
                ['business_date', 'sequence'])
            batch_op.create_check_constraint(batch_op.f('ck_cash_closings_sequence_positive'),
                                             'sequence >= 1')
        _append_only('cash_closings')

    op.create_table(
        'cash_closing_reopenings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('closing_id', sa.Integer(), nullable=False),
        sa.Column('reopened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reopened_by_user_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.CheckConstraint("length(reason) >= 3",
                           name=op.f('ck_cash_closing_reopenings_reason_given')),
        sa.ForeignKeyConstraint(['closing_id'], ['cash_closings.id'],
                                name=op.f('fk_cash_closing_reopenings_closing_id_cash_closings')),
        sa.ForeignKeyConstraint(['reopened_by_user_id'], ['users.id'],
                                name=op.f('fk_cash_closing_reopenings_reopened_by_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cash_closing_reopenings')),
        sa.UniqueConstraint('closing_id', name=op.f('uq_cash_closing_reopenings_closing_id')),
    )
    _append_only('cash_closing_reopenings')


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    _drop_append_only('cash_closing_reopenings')
    op.drop_table('cash_closing_reopenings')
    # A day closed again after a reopening (two closings, sequences 1 and 2) cannot go
    # back under the old one-closing-a-day key: the downgrade then fails, writing nothing.
    if postgres:
        op.drop_constraint(op.f('ck_cash_closings_sequence_positive'), 'cash_closings',
                           type_='check')
        op.drop_constraint(op.f('uq_cash_closings_business_date_sequence'), 'cash_closings',
                           type_='unique')
        op.create_unique_constraint(op.f('uq_cash_closings_business_date'), 'cash_closings',
                                    ['business_date'])
        op.drop_column('cash_closings', 'sequence')
    else:
        _drop_append_only('cash_closings')
        with op.batch_alter_table('cash_closings', recreate='always') as batch_op:
            batch_op.drop_constraint(op.f('ck_cash_closings_sequence_positive'), type_='check')
            batch_op.drop_constraint(op.f('uq_cash_closings_business_date_sequence'),
                                     type_='unique')
            batch_op.create_unique_constraint(op.f('uq_cash_closings_business_date'),
                                              ['business_date'])
            batch_op.drop_column('sequence')
        _append_only('cash_closings')

    op.drop_index(op.f('uq_first_password_codes_one_live'), table_name='first_password_codes')
    op.drop_table('first_password_codes')

    op.drop_index(op.f('ix_parties_birth_date'), table_name='parties')
    if postgres:
        op.drop_constraint(op.f('ck_parties_birth_date'), 'parties', type_='check')
        op.drop_column('parties', 'birth_date')
    else:
        op.execute("ALTER TABLE parties DROP COLUMN birth_date")
