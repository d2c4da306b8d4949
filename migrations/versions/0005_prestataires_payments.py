"""Prestataires and payments: approval, payment requests, refunds, reconversion requests.

Revision ID: 0005_prestataires_payments
Revises: 0004_notes_payouts_closing

Adds the application fields of a prestataire and its append-only approval decisions,
backs the party statuses with a CHECK (a trigger on SQLite, which cannot add one to an
existing table without rebuilding it), payment requests (paid at most once: a unique
entry), refunds linked to their payment (append-only), reconversion requests, the
users' optional PIN, and the ``refund`` kind of entry.
"""
import sqlalchemy as sa
from alembic import op

NEW_KINDS = ["refund"]
APPEND_ONLY = ["approval_decisions", "refunds"]
STATUSES = "('active', 'draft', 'submitted', 'approved', 'refused', 'suspended')"

# revision identifiers, used by Alembic.
revision = '0005_prestataires_payments'
down_revision = '0004_notes_payouts_closing'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('approval_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('decided_by_user_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('submit', 'approve', 'refuse', 'suspend', 'reinstate', 'amend')", name=op.f('ck_approval_decisions_action')),
    sa.ForeignKeyConstraint(['decided_by_user_id'], ['users.id'], name=op.f('fk_approval_decisions_decided_by_user_id_users')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_approval_decisions_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_decisions'))
    )
    op.create_index(op.f('ix_approval_decisions_party_id'), 'approval_decisions', ['party_id'], unique=False)

    op.create_table('payment_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=43), nullable=False),
    sa.Column('short_code', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('payee_party_id', sa.Integer(), nullable=False),
    sa.Column('payer_party_id', sa.Integer(), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('reference', sa.String(length=140), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('paid_by_party_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by_user_id', sa.Integer(), nullable=True),
    sa.Column('decline_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint("kind IN ('till', 'invoice')", name=op.f('ck_payment_requests_kind')),
    sa.CheckConstraint("status IN ('open', 'paid', 'declined', 'cancelled')", name=op.f('ck_payment_requests_status')),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_payment_requests_amount_positive')),
    sa.CheckConstraint("(status = 'paid') = (paid_entry_id IS NOT NULL)", name=op.f('ck_payment_requests_paid_entry')),
    sa.CheckConstraint("kind = 'till' OR payer_party_id IS NOT NULL", name=op.f('ck_payment_requests_invoice_payer')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_payment_requests_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['closed_by_user_id'], ['users.id'], name=op.f('fk_payment_requests_closed_by_user_id_users')),
    sa.ForeignKeyConstraint(['paid_by_party_id'], ['parties.id'], name=op.f('fk_payment_requests_paid_by_party_id_parties')),
    sa.ForeignKeyConstraint(['paid_entry_id'], ['entries.id'], name=op.f('fk_payment_requests_paid_entry_id_entries')),
    sa.ForeignKeyConstraint(['payee_party_id'], ['parties.id'], name=op.f('fk_payment_requests_payee_party_id_parties')),
    sa.ForeignKeyConstraint(['payer_party_id'], ['parties.id'], name=op.f('fk_payment_requests_payer_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_requests')),
    sa.UniqueConstraint('paid_entry_id', name=op.f('uq_payment_requests_paid_entry_id')),
    sa.UniqueConstraint('short_code', name=op.f('uq_payment_requests_short_code')),
    sa.UniqueConstraint('token', name=op.f('uq_payment_requests_token'))
    )
    op.create_index(op.f('ix_payment_requests_payee_party_id_id'), 'payment_requests', ['payee_party_id', 'id'], unique=False)
    op.create_index(op.f('ix_payment_requests_payer_party_id_status'), 'payment_requests', ['payer_party_id', 'status'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('refund_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['payment_entry_id'], ['entries.id'], name=op.f('fk_refunds_payment_entry_id_entries')),
    sa.ForeignKeyConstraint(['refund_entry_id'], ['entries.id'], name=op.f('fk_refunds_refund_entry_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('refund_entry_id', name=op.f('uq_refunds_refund_entry_id'))
    )
    op.create_index(op.f('ix_refunds_payment_entry_id'), 'refunds', ['payment_entry_id'], unique=False)

    op.create_table('reconversion_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=False),
    sa.Column('bousol_cents', sa.BigInteger(), nullable=False),
    sa.Column('memo', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by_user_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("status IN ('requested', 'executed', 'cancelled', 'refused')", name=op.f('ck_reconversion_requests_status')),
    sa.CheckConstraint('bousol_cents > 0', name=op.f('ck_reconversion_requests_amount_positive')),
    sa.CheckConstraint("(status = 'executed') = (entry_id IS NOT NULL)", name=op.f('ck_reconversion_requests_executed_entry')),
    sa.ForeignKeyConstraint(['closed_by_user_id'], ['users.id'], name=op.f('fk_reconversion_requests_closed_by_user_id_users')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_reconversion_requests_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_reconversion_requests_entry_id_entries')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_reconversion_requests_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconversion_requests')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_reconversion_requests_entry_id'))
    )
    op.create_index(op.f('ix_reconversion_requests_party_id'), 'reconversion_requests', ['party_id'], unique=False)
    op.create_index(op.f('ix_reconversion_requests_status_id'), 'reconversion_requests', ['status', 'id'], unique=False)

    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('legal_form', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('siret', sa.String(length=14), nullable=True))
        batch_op.add_column(sa.Column('contact_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('opening_hours', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('description', sa.Text(), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pin_hash', sa.String(length=255), nullable=True))
    # One prestataire per SIRET, even when two applications arrive at once.
    op.create_index('uq_parties_siret_prestataire', 'parties', ['siret'], unique=True,
                    sqlite_where=sa.text("kind = 'prestataire' AND siret IS NOT NULL"),
                    postgresql_where=sa.text("kind = 'prestataire' AND siret IS NOT NULL"))

    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(op.f("ck_parties_status"), "parties", f"status IN {STATUSES}")
        for table in APPEND_ONLY:
            op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                           FOR EACH ROW EXECUTE FUNCTION bousol_append_only()""")
    else:
        for action in ("insert", "update"):
            op.execute(
                f"""CREATE TRIGGER parties_status_{action} BEFORE {action.upper()} ON parties
                    WHEN NEW.status NOT IN {STATUSES}
                    BEGIN SELECT RAISE(ABORT, 'unknown party status'); END"""
            )
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(
                    f"""CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table}
                        BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"""
                )
    op.bulk_insert(sa.table("entry_kinds", sa.column("name")),
                   [{"name": kind} for kind in NEW_KINDS])


def downgrade():
    op.execute("DELETE FROM entry_kinds WHERE name = 'refund'")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_parties_status"), "parties", type_="check")
    else:
        op.execute("DROP TRIGGER parties_status_insert")
        op.execute("DROP TRIGGER parties_status_update")
    op.drop_index('uq_parties_siret_prestataire', table_name='parties')
    # Native DROP COLUMN: a batch rebuild would drop tables that others reference.
    for table, column in (("users", "pin_hash"), ("parties", "description"),
                          ("parties", "opening_hours"), ("parties", "contact_name"),
                          ("parties", "siret"), ("parties", "legal_form"),
                          ("parties", "status_changed_at")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for table in ('reconversion_requests', 'refunds', 'payment_requests', 'approval_decisions'):
        op.drop_table(table)
