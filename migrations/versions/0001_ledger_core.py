"""Ledger core: parties, accounts, entries, postings, users, settings, idempotency.

Reviewed by hand after autogenerate: the system accounts and counters are seeded,
and triggers make entries and postings append-only (both databases); on PostgreSQL a
deferred constraint trigger also refuses, at commit, any entry that does not balance
per currency.

Revision ID: 0001_ledger_core
Revises: 
Create Date: 2026-11-22 08:40:25.779406

"""
import datetime as dt

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0001_ledger_core'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('counters',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_counters'))
    )
    op.create_table('parties',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('filiere', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("filiere IS NULL OR filiere IN ('alimentation', 'loisirs-culture', 'services-de-proximite', 'mobilite-douce', 'habitat-durable')", name=op.f('ck_parties_filiere')),
    sa.CheckConstraint("kind <> 'prestataire' OR filiere IS NOT NULL", name=op.f('ck_parties_prestataire_filiere')),
    sa.CheckConstraint("kind IN ('soliste', 'prestataire', 'ccas', 'bank', 'association')", name=op.f('ck_parties_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parties')),
    sa.UniqueConstraint('code', name=op.f('uq_parties_code')),
    sa.UniqueConstraint('kind', 'number', name=op.f('uq_parties_kind_number'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=True),
    sa.Column('system_code', sa.String(length=32), nullable=True),
    sa.Column('currency', sa.String(length=4), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('allow_negative', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("currency IN ('EUR', 'BSOL')", name=op.f('ck_accounts_currency')),
    sa.CheckConstraint('party_id IS NOT NULL OR system_code IS NOT NULL', name=op.f('ck_accounts_owned')),
    sa.CheckConstraint('balance >= 0 OR allow_negative', name=op.f('ck_accounts_balance_not_negative')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_accounts_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('id', 'currency', name=op.f('uq_accounts_id_currency')),
    sa.UniqueConstraint('party_id', 'currency', 'purpose', name=op.f('uq_accounts_party_id_currency_purpose')),
    sa.UniqueConstraint('system_code', name=op.f('uq_accounts_system_code'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'bank', 'soliste', 'prestataire', 'ccas')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_users_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('entry_kinds',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_entry_kinds'))
    )
    op.create_table('entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('memo', sa.String(length=500), nullable=True),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['kind'], ['entry_kinds.name'], name=op.f('fk_entries_kind_entry_kinds')),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_entries_actor_user_id_users')),
    sa.ForeignKeyConstraint(['reverses_id'], ['entries.id'], name=op.f('fk_entries_reverses_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entries')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_entries_reverses_id'))
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entries_created_at'), ['created_at'], unique=False)

    op.create_table('setting_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_by_user_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_user_id'], ['users.id'], name=op.f('fk_setting_changes_changed_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_setting_changes'))
    )
    with op.batch_alter_table('setting_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_setting_changes_key'), ['key'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('ok', 'error')", name=op.f('ck_idempotency_keys_outcome')),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_idempotency_keys_entry_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('scope', 'key', name=op.f('uq_idempotency_keys_scope_key'))
    )
    op.create_table('postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=4), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("currency IN ('EUR', 'BSOL')", name=op.f('ck_postings_currency')),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_postings_amount_not_zero')),
    sa.ForeignKeyConstraint(['account_id', 'currency'], ['accounts.id', 'accounts.currency'], name='fk_postings_account_currency'),
    sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], name=op.f('fk_postings_entry_id_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_postings'))
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_postings_account_id_entry_id'), ['account_id', 'entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_postings_entry_id'), ['entry_id'], unique=False)


    _seed()
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in PG_UP:
            op.execute(statement)
    else:
        for statement in SQLITE_UP:
            op.execute(statement)


PARTIES = [
    # kind, prefix, name
    ("bank", "B", "Banque SOL — Crédit Municipal de Boulogne-sur-Mer"),
    ("association", "A",
     "APMC — Association pour la Promotion de la Monnaie Citoyenne du Boulonnais"),
]

SYSTEM_ACCOUNTS = [
    # system_code, owner's prefix, currency, allow_negative, label
    ("issuance", "A", "BSOL", True, "Émission de Bou'Sols"),
    ("notes_circulation", "B", "BSOL", False, "Billets en circulation"),
    ("eur_outside", None, "EUR", True, "Euros hors du système (contrepartie)"),
    ("eur_reserve", "B", "EUR", False, "Fonds de garantie en euros"),
    ("desk_cash", "B", "EUR", False, "Caisse du comptoir"),
    ("bonus_fund", "A", "EUR", False, "Fonds de bonification"),
    ("fees_income", "A", "EUR", False, "Produits de l'association"),
]


ENTRY_KINDS = ["exchange", "payment", "reconversion", "reversal", "subsidy", "cash_deposit"]


def _seed():
    now = dt.datetime.now(dt.UTC)
    kinds = sa.table("entry_kinds", sa.column("name"))
    op.bulk_insert(kinds, [{"name": kind} for kind in ENTRY_KINDS])
    bind = op.get_bind()
    parties = sa.table(
        "parties", sa.column("id"), sa.column("kind"), sa.column("number"), sa.column("code"),
        sa.column("name"), sa.column("status"), sa.column("created_at"),
    )
    owner_id = {}
    for kind, prefix, name in PARTIES:
        bind.execute(parties.insert().values(kind=kind, number=1, code=f"{prefix}-000001",
                                             name=name, status="active", created_at=now))
        owner_id[prefix] = bind.execute(
            sa.select(parties.c.id).where(parties.c.code == f"{prefix}-000001")
        ).scalar_one()
    accounts = sa.table(
        "accounts", sa.column("party_id"), sa.column("system_code"), sa.column("currency"),
        sa.column("purpose"), sa.column("label"), sa.column("balance"),
        sa.column("allow_negative"), sa.column("created_at"),
    )
    op.bulk_insert(accounts, [
        {"party_id": owner_id.get(owner), "system_code": code, "currency": currency,
         "purpose": code, "label": label, "balance": 0, "allow_negative": negative,
         "created_at": now}
        for code, owner, currency, negative, label in SYSTEM_ACCOUNTS
    ])
    counters = sa.table("counters", sa.column("name"), sa.column("value"))
    op.bulk_insert(counters, [{"name": f"party:{p}", "value": 0} for p in "SPC"]
                   + [{"name": f"party:{p}", "value": 1} for p in "BA"])


SQLITE_UP = [
    f"""CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} are append-only: reverse the entry instead'); END"""
    for table in ("entries", "postings") for action in ("update", "delete")
]

PG_UP = [
    """CREATE FUNCTION bousol_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION '% are append-only: reverse the entry instead', TG_TABLE_NAME
           USING ERRCODE = 'restrict_violation';
       END $$""",
    """CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
       FOR EACH ROW EXECUTE FUNCTION bousol_append_only()""",
    """CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
       FOR EACH ROW EXECUTE FUNCTION bousol_append_only()""",
    """CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
       FOR EACH STATEMENT EXECUTE FUNCTION bousol_append_only()""",
    """CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
       FOR EACH STATEMENT EXECUTE FUNCTION bousol_append_only()""",
    # Checked at commit, once all the entry's postings are in (django-hordak's way).
    """CREATE FUNCTION bousol_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.entry_id
                    GROUP BY currency HAVING SUM(amount) <> 0) THEN
           RAISE EXCEPTION 'entry % does not balance per currency', NEW.entry_id
             USING ERRCODE = 'check_violation';
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bousol_entry_balanced()""",
]


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS postings_balanced ON postings")
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_postings_entry_id'))
        batch_op.drop_index(batch_op.f('ix_postings_account_id_entry_id'))

    op.drop_table('postings')
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('setting_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_setting_changes_key'))

    op.drop_table('setting_changes')
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entries_created_at'))

    op.drop_table('entries')
    op.drop_table('entry_kinds')
    op.drop_table('users')
    op.drop_table('accounts')
    op.drop_table('parties')
    op.drop_table('counters')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bousol_entry_balanced()")
        op.execute("DROP FUNCTION IF EXISTS bousol_append_only()")
