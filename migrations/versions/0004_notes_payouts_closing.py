"""The desk: paper notes and their stock, SEPA payout batches, the cash closing.

Revision ID: 0004_notes_payouts_closing
Revises: 0003_members_at_the_desk

Notes are one row per serial (so a serial is in one place) with append-only moves;
payout batches (at most one open, a partial unique index) list what each prestataire
is paid; a cash closing is append-only (a closed day is closed). Seeds the first desk,
the cash discrepancy account and the new kinds of entry.
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

NEW_KINDS = ["note_deposit", "note_reactivation", "payout", "cash_discrepancy"]
APPEND_ONLY = ["note_moves", "note_move_items", "cash_closings"]


# revision identifiers, used by Alembic.
revision = '0004_notes_payouts_closing'
down_revision = '0003_members_at_the_desk'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('desks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desks')),
    sa.UniqueConstraint('code', name=op.f('uq_desks_code'))
    )
    op.create_table('note_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=8), nullable=False),
    sa.Column('printed_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('valid_until > printed_on', name=op.f('ck_note_series_validity')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_note_series_created_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_note_series')),
    sa.UniqueConstraint('code', name=op.f('uq_note_series_code'))
    )
    op.create_table('cash_closings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_by_user_id', sa.Integer(), nullable=True),
    sa.Column('last_entry_id', sa.BigInteger(), nullable=False),
    sa.Column('expected_cash_cents', sa.BigInteger(), nullable=False),
    sa.Column('counted_cash_cents', sa.BigInteger(), nullable=False),
    sa.Column('expected_cheque_cents', sa.BigInteger(), nullable=False),
    sa.Column('counted_cheque_cents', sa.BigInteger(), nullable=False),
    sa.Column('cheque_count', sa.Integer(), nullable=False),
    sa.Column('expected_card_cents', sa.BigInteger(), nullable=False),
    sa.Column('counted_card_cents', sa.BigInteger(), nullable=False),
    sa.Column('discrepancy_cents', sa.BigInteger(), nullable=False),
    sa.Column('float_cents', sa.BigInteger(), nullable=False),
    sa.Column('deposited_cents', sa.BigInteger(), nullable=False),
    sa.Column('counts', sa.Text(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('discrepancy_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('deposit_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("discrepancy_cents = 0 OR (comment IS NOT NULL AND comment <> '')", name=op.f('ck_cash_closings_discrepancy_explained')),
    sa.CheckConstraint('float_cents >= 0', name=op.f('ck_cash_closings_float_not_negative')),
    sa.ForeignKeyConstraint(['closed_by_user_id'], ['users.id'], name=op.f('fk_cash_closings_closed_by_user_id_users')),
    sa.ForeignKeyConstraint(['deposit_entry_id'], ['entries.id'], name=op.f('fk_cash_closings_deposit_entry_id_entries')),
    sa.ForeignKeyConstraint(['discrepancy_entry_id'], ['entries.id'], name=op.f('fk_cash_closings_discrepancy_entry_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cash_closings')),
    sa.UniqueConstraint('business_date', name=op.f('uq_cash_closings_business_date'))
    )
    op.create_table('note_moves',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('from_place', sa.String(length=16), nullable=True),
    sa.Column('from_desk_id', sa.Integer(), nullable=True),
    sa.Column('to_place', sa.String(length=16), nullable=False),
    sa.Column('to_desk_id', sa.Integer(), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('face_cents', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('party_id', sa.Integer(), nullable=True),
    sa.Column('memo', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_note_moves_actor_user_id_users')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_note_moves_entry_id_entries')),
    sa.ForeignKeyConstraint(['from_desk_id'], ['desks.id'], name=op.f('fk_note_moves_from_desk_id_desks')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_note_moves_party_id_parties')),
    sa.ForeignKeyConstraint(['to_desk_id'], ['desks.id'], name=op.f('fk_note_moves_to_desk_id_desks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_note_moves'))
    )
    with op.batch_alter_table('note_moves', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_note_moves_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_note_moves_entry_id'), ['entry_id'], unique=False)

    op.create_table('notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=20), nullable=False),
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('denomination', sa.Integer(), nullable=False),
    sa.Column('place', sa.String(length=16), nullable=False),
    sa.Column('desk_id', sa.Integer(), nullable=True),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.CheckConstraint("(place = 'desk' AND desk_id IS NOT NULL) OR (place <> 'desk' AND desk_id IS NULL)", name=op.f('ck_notes_desk_place')),
    sa.CheckConstraint("place IN ('printed', 'vault', 'desk', 'circulation', 'returned', 'destroyed')", name=op.f('ck_notes_place')),
    sa.CheckConstraint('denomination IN (1, 2, 5, 10, 20)', name=op.f('ck_notes_denomination')),
    sa.ForeignKeyConstraint(['desk_id'], ['desks.id'], name=op.f('fk_notes_desk_id_desks')),
    sa.ForeignKeyConstraint(['series_id'], ['note_series.id'], name=op.f('fk_notes_series_id_note_series')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notes')),
    sa.UniqueConstraint('serial', name=op.f('uq_notes_serial'))
    )
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notes_place_desk_id_denomination_serial'), ['place', 'desk_id', 'denomination', 'serial'], unique=False)

    op.create_table('payout_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=35), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by_user_id', sa.Integer(), nullable=True),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("status IN ('open', 'paid', 'cancelled')", name=op.f('ck_payout_batches_status')),
    sa.CheckConstraint('total_cents > 0', name=op.f('ck_payout_batches_total_positive')),
    sa.ForeignKeyConstraint(['closed_by_user_id'], ['users.id'], name=op.f('fk_payout_batches_closed_by_user_id_users')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_payout_batches_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_payout_batches_entry_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_batches')),
    sa.UniqueConstraint('message_id', name=op.f('uq_payout_batches_message_id'))
    )
    with op.batch_alter_table('payout_batches', schema=None) as batch_op:
        batch_op.create_index('uq_payout_batches_one_open', ['status'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('note_move_items',
    sa.Column('move_id', sa.Integer(), nullable=False),
    sa.Column('note_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['move_id'], ['note_moves.id'], name=op.f('fk_note_move_items_move_id_note_moves')),
    sa.ForeignKeyConstraint(['note_id'], ['notes.id'], name=op.f('fk_note_move_items_note_id_notes')),
    sa.PrimaryKeyConstraint('move_id', 'note_id', name=op.f('pk_note_move_items'))
    )
    with op.batch_alter_table('note_move_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_note_move_items_note_id'), ['note_id'], unique=False)

    op.create_table('payouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=140), nullable=False),
    sa.Column('iban', sa.String(length=34), nullable=False),
    sa.Column('bic', sa.String(length=11), nullable=True),
    sa.Column('end_to_end_id', sa.String(length=35), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_payouts_amount_positive')),
    sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_payouts_batch_id_payout_batches')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_payouts_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts')),
    sa.UniqueConstraint('batch_id', 'party_id', name=op.f('uq_payouts_batch_id_party_id'))
    )
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.add_column(sa.Column('iban', sa.String(length=34), nullable=True))
        batch_op.add_column(sa.Column('bic', sa.String(length=11), nullable=True))

    if op.get_bind().dialect.name == "postgresql":
        op.add_column('users', sa.Column('desk_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_users_desk_id_desks', 'users', 'desks', ['desk_id'], ['id'])
        for table in APPEND_ONLY:
            op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                           FOR EACH ROW EXECUTE FUNCTION bousol_append_only()""")
    else:
        # Native ADD COLUMN with its reference: a batch rebuild of users would have to
        # drop a table that entries reference.
        op.execute("ALTER TABLE users ADD COLUMN desk_id INTEGER "
                   "CONSTRAINT fk_users_desk_id_desks REFERENCES desks (id)")
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(
                    f"""CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table}
                        BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"""
                )
    _seed()


def _seed():
    op.bulk_insert(sa.table("entry_kinds", sa.column("name")),
                   [{"name": kind} for kind in NEW_KINDS])
    op.bulk_insert(sa.table("desks", sa.column("code"), sa.column("name"), sa.column("active")),
                   [{"code": "G1", "name": "Guichet principal", "active": True}])
    bank_id = op.get_bind().execute(
        sa.text("SELECT id FROM parties WHERE code = 'B-000001'")
    ).scalar_one()
    op.bulk_insert(
        sa.table("accounts", sa.column("party_id"), sa.column("system_code"),
                 sa.column("currency"), sa.column("purpose"), sa.column("label"),
                 sa.column("balance"), sa.column("allow_negative"), sa.column("created_at")),
        [{"party_id": bank_id, "system_code": "cash_discrepancy", "currency": "EUR",
          "purpose": "cash_discrepancy", "label": "Écarts de caisse", "balance": 0,
          "allow_negative": True, "created_at": dt.datetime.now(dt.UTC)}],
    )


def downgrade():
    # Refused by the foreign keys once a discrepancy was booked: history stays.
    op.execute("DELETE FROM accounts WHERE system_code = 'cash_discrepancy'")
    op.execute("DELETE FROM entry_kinds WHERE name IN ('note_deposit', 'note_reactivation', "
               "'payout', 'cash_discrepancy')")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint('fk_users_desk_id_desks', 'users', type_='foreignkey')
    for table, column in (("users", "desk_id"), ("parties", "bic"), ("parties", "iban")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")

    op.drop_table('payouts')
    with op.batch_alter_table('note_move_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_note_move_items_note_id'))

    op.drop_table('note_move_items')
    with op.batch_alter_table('payout_batches', schema=None) as batch_op:
        batch_op.drop_index('uq_payout_batches_one_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.drop_table('payout_batches')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notes_place_desk_id_denomination_serial'))

    op.drop_table('notes')
    with op.batch_alter_table('note_moves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_note_moves_entry_id'))
        batch_op.drop_index(batch_op.f('ix_note_moves_at'))

    op.drop_table('note_moves')
    op.drop_table('cash_closings')
    op.drop_table('note_series')
    op.drop_table('desks')
