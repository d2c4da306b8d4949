"""CCAS social aid: programmes, beneficiaries, vouchers, their redemptions.

Revision ID: 0006_ccas_vouchers
Revises: 0005_prestataires_payments

A voucher's value waits in the new system account ``vouchers_outstanding`` (BSOL);
redemptions are append-only. New kinds of entry: granting, redeeming, expiring and
cancelling a voucher.
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

NEW_KINDS = ["voucher_grant", "voucher_redemption", "voucher_expiry", "voucher_cancellation"]
APPEND_ONLY = ["voucher_redemptions"]

# revision identifiers, used by Alembic.
revision = '0006_ccas_vouchers'
down_revision = '0005_prestataires_payments'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('aid_programmes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ccas_party_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('budget_eur_cents', sa.BigInteger(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('filieres', sa.String(length=200), nullable=True),
    sa.Column('default_validity_days', sa.Integer(), nullable=False),
    sa.Column('multi_use', sa.Boolean(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('budget_eur_cents >= 0', name=op.f('ck_aid_programmes_budget_not_negative')),
    sa.CheckConstraint('ends_on >= starts_on', name=op.f('ck_aid_programmes_period')),
    sa.CheckConstraint('default_validity_days > 0', name=op.f('ck_aid_programmes_validity_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_aid_programmes_account_id_accounts')),
    sa.ForeignKeyConstraint(['ccas_party_id'], ['parties.id'], name=op.f('fk_aid_programmes_ccas_party_id_parties')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_aid_programmes_created_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aid_programmes')),
    sa.UniqueConstraint('account_id', name=op.f('uq_aid_programmes_account_id'))
    )
    op.create_table('beneficiaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ccas_party_id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ccas_party_id'], ['parties.id'], name=op.f('fk_beneficiaries_ccas_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_beneficiaries')),
    sa.UniqueConstraint('ccas_party_id', 'ref', name=op.f('uq_beneficiaries_ccas_party_id_ref'))
    )
    op.create_table('voucher_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ccas_party_id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['ccas_party_id'], ['parties.id'], name=op.f('fk_voucher_batches_ccas_party_id_parties')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_voucher_batches_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['programme_id'], ['aid_programmes.id'], name=op.f('fk_voucher_batches_programme_id_aid_programmes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_batches'))
    )
    op.create_table('vouchers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('ccas_party_id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=True),
    sa.Column('source_account_id', sa.Integer(), nullable=False),
    sa.Column('beneficiary_id', sa.Integer(), nullable=False),
    sa.Column('soliste_party_id', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('remaining_cents', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('filieres', sa.String(length=200), nullable=True),
    sa.Column('multi_use', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('grant_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("status IN ('open', 'redeemed', 'expired', 'cancelled')", name=op.f('ck_vouchers_status')),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_vouchers_amount_positive')),
    sa.CheckConstraint('remaining_cents >= 0 AND remaining_cents <= amount_cents', name=op.f('ck_vouchers_remaining_within_amount')),
    sa.CheckConstraint("(status = 'open') = (remaining_cents > 0)", name=op.f('ck_vouchers_open_remaining')),
    sa.ForeignKeyConstraint(['batch_id'], ['voucher_batches.id'], name=op.f('fk_vouchers_batch_id_voucher_batches')),
    sa.ForeignKeyConstraint(['beneficiary_id'], ['beneficiaries.id'], name=op.f('fk_vouchers_beneficiary_id_beneficiaries')),
    sa.ForeignKeyConstraint(['ccas_party_id'], ['parties.id'], name=op.f('fk_vouchers_ccas_party_id_parties')),
    sa.ForeignKeyConstraint(['close_entry_id'], ['entries.id'], name=op.f('fk_vouchers_close_entry_id_entries')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_vouchers_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['grant_entry_id'], ['entries.id'], name=op.f('fk_vouchers_grant_entry_id_entries')),
    sa.ForeignKeyConstraint(['programme_id'], ['aid_programmes.id'], name=op.f('fk_vouchers_programme_id_aid_programmes')),
    sa.ForeignKeyConstraint(['soliste_party_id'], ['parties.id'], name=op.f('fk_vouchers_soliste_party_id_parties')),
    sa.ForeignKeyConstraint(['source_account_id'], ['accounts.id'], name=op.f('fk_vouchers_source_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vouchers')),
    sa.UniqueConstraint('code', name=op.f('uq_vouchers_code')),
    sa.UniqueConstraint('grant_entry_id', name=op.f('uq_vouchers_grant_entry_id'))
    )
    for column in ('programme_id', 'beneficiary_id', 'soliste_party_id', 'batch_id'):
        op.create_index(op.f(f'ix_vouchers_{column}'), 'vouchers', [column], unique=False)
    op.create_index(op.f('ix_vouchers_status_valid_until'), 'vouchers', ['status', 'valid_until'], unique=False)
    op.create_table('voucher_redemptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('voucher_id', sa.Integer(), nullable=False),
    sa.Column('prestataire_party_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_voucher_redemptions_amount_positive')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_voucher_redemptions_entry_id_entries')),
    sa.ForeignKeyConstraint(['prestataire_party_id'], ['parties.id'], name=op.f('fk_voucher_redemptions_prestataire_party_id_parties')),
    sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'], name=op.f('fk_voucher_redemptions_voucher_id_vouchers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_redemptions')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_voucher_redemptions_entry_id'))
    )
    op.create_index(op.f('ix_voucher_redemptions_voucher_id'), 'voucher_redemptions', ['voucher_id'], unique=False)
    op.create_index(op.f('ix_voucher_redemptions_prestataire_party_id'), 'voucher_redemptions', ['prestataire_party_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                           FOR EACH ROW EXECUTE FUNCTION bousol_append_only()""")
    else:
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(
                    f"""CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table}
                        BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"""
                )
    op.bulk_insert(sa.table("entry_kinds", sa.column("name")),
                   [{"name": kind} for kind in NEW_KINDS])
    bank_id = op.get_bind().execute(
        sa.text("SELECT id FROM parties WHERE code = 'B-000001'")
    ).scalar_one()
    op.bulk_insert(
        sa.table("accounts", sa.column("party_id"), sa.column("system_code"),
                 sa.column("currency"), sa.column("purpose"), sa.column("label"),
                 sa.column("balance"), sa.column("allow_negative"), sa.column("created_at")),
        [{"party_id": bank_id, "system_code": "vouchers_outstanding", "currency": "BSOL",
          "purpose": "vouchers_outstanding", "label": "Bons d'aide en circulation",
          "balance": 0, "allow_negative": False, "created_at": dt.datetime.now(dt.UTC)}],
    )


def downgrade():
    # Refused by the foreign keys once a voucher was granted: history stays.
    op.execute("DELETE FROM accounts WHERE system_code = 'vouchers_outstanding'")
    op.execute("DELETE FROM entry_kinds WHERE name IN ('voucher_grant', 'voucher_redemption', "
               "'voucher_expiry', 'voucher_cancellation')")
    for table in ('voucher_redemptions', 'vouchers', 'voucher_batches', 'beneficiaries',
                  'aid_programmes'):
        op.drop_table(table)
