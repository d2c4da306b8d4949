"""The association (issue 7): partners, mail, the collective's votes, the FEC mapping,
and the hash-chained audit trail.

Revision ID: 0009_association
Revises: 0008_bonus_advance

- ``partners``: acteurs-locaux members without an account;
- ``mail_messages``: every e-mail sent (reminders once per member and month);
- ``collective_members``, ``motions``, ``votes``; ``setting_changes.motion_id`` names
  the decision that changed a setting;
- ``fec_mappings``: ledger account groups → the association's chart of accounts;
- ``audit_records`` (append-only, triggers) and ``audit_head`` (one row, the chain's
  head, seeded with the genesis hash: 64 zeros).
"""
import sqlalchemy as sa
from alembic import op

GENESIS = "0" * 64


# revision identifiers, used by Alembic.
revision = '0009_association'
down_revision = '0008_bonus_advance'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_audit_head_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('audit_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=120), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_records')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_records_hash')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_records_seq'))
    )
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_records_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_records_username_at'), ['username', 'at'], unique=False)

    op.create_table('collective_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('college', sa.String(length=16), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('added_by_user_id', sa.Integer(), nullable=True),
    sa.Column('removed_by_user_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("college IN ('solistes', 'prestataires', 'acteurs_locaux')", name=op.f('ck_collective_members_college')),
    sa.ForeignKeyConstraint(['added_by_user_id'], ['users.id'], name=op.f('fk_collective_members_added_by_user_id_users')),
    sa.ForeignKeyConstraint(['removed_by_user_id'], ['users.id'], name=op.f('fk_collective_members_removed_by_user_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_collective_members_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collective_members'))
    )
    with op.batch_alter_table('collective_members', schema=None) as batch_op:
        batch_op.create_index('uq_collective_members_user_current', ['user_id'], unique=True, sqlite_where=sa.text('until IS NULL'), postgresql_where=sa.text('until IS NULL'))

    op.create_table('fec_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ledger_key', sa.String(length=64), nullable=False),
    sa.Column('account_number', sa.String(length=20), nullable=False),
    sa.Column('account_label', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_user_id'], ['users.id'], name=op.f('fk_fec_mappings_updated_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fec_mappings')),
    sa.UniqueConstraint('ledger_key', name=op.f('uq_fec_mappings_ledger_key'))
    )
    op.create_table('mail_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('recipient_key', sa.String(length=32), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('to_address', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('transport', sa.String(length=16), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f('ck_mail_messages_status')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_mail_messages_created_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_messages')),
    sa.UniqueConstraint('kind', 'recipient_key', 'period', name=op.f('uq_mail_messages_kind_recipient_key_period'))
    )
    op.create_table('motions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('effect', sa.String(length=16), nullable=False),
    sa.Column('setting_key', sa.String(length=64), nullable=True),
    sa.Column('setting_value', sa.String(length=200), nullable=True),
    sa.Column('prestataire_party_id', sa.Integer(), nullable=True),
    sa.Column('opens_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by_user_id', sa.Integer(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('effect_note', sa.String(length=500), nullable=True),
    sa.CheckConstraint("(effect = 'setting' AND setting_key IS NOT NULL AND setting_value IS NOT NULL) OR (effect = 'approval' AND prestataire_party_id IS NOT NULL) OR (effect = 'none')", name=op.f('ck_motions_effect_target')),
    sa.CheckConstraint("effect IN ('none', 'setting', 'approval')", name=op.f('ck_motions_effect')),
    sa.CheckConstraint("status IN ('open', 'adopted', 'rejected', 'withdrawn')", name=op.f('ck_motions_status')),
    sa.CheckConstraint('closes_at > opens_at', name=op.f('ck_motions_period')),
    sa.ForeignKeyConstraint(['closed_by_user_id'], ['users.id'], name=op.f('fk_motions_closed_by_user_id_users')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_motions_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['prestataire_party_id'], ['parties.id'], name=op.f('fk_motions_prestataire_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_motions'))
    )
    with op.batch_alter_table('motions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_motions_status'), ['status'], unique=False)

    op.create_table('partners',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('contact_name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('commune', sa.String(length=100), nullable=True),
    sa.Column('membership_until', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("category IN ('collectivite', 'credit_municipal', 'reseau_ess', 'autre')", name=op.f('ck_partners_category')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_partners_created_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    sa.UniqueConstraint('code', name=op.f('uq_partners_code'))
    )
    op.create_table('votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('motion_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('college', sa.String(length=16), nullable=False),
    sa.Column('choice', sa.String(length=8), nullable=False),
    sa.Column('cast_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("choice IN ('for', 'against', 'abstain')", name=op.f('ck_votes_choice')),
    sa.CheckConstraint("college IN ('solistes', 'prestataires', 'acteurs_locaux')", name=op.f('ck_votes_college')),
    sa.ForeignKeyConstraint(['motion_id'], ['motions.id'], name=op.f('fk_votes_motion_id_motions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_votes_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_votes')),
    sa.UniqueConstraint('motion_id', 'user_id', name=op.f('uq_votes_motion_id_user_id'))
    )
    if op.get_bind().dialect.name == "postgresql":
        op.add_column('setting_changes', sa.Column('motion_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_setting_changes_motion_id_motions'), 'setting_changes',
                              'motions', ['motion_id'], ['id'])
        op.execute("""CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE
                      ON audit_records FOR EACH ROW EXECUTE FUNCTION bousol_append_only()""")
    else:
        # SQLite adds a column with its reference in place (no table rebuild).
        op.execute("ALTER TABLE setting_changes ADD COLUMN motion_id INTEGER "
                   "CONSTRAINT fk_setting_changes_motion_id_motions REFERENCES motions (id)")
        for action in ("update", "delete"):
            op.execute(f"""CREATE TRIGGER audit_records_no_{action} BEFORE {action.upper()}
                           ON audit_records
                           BEGIN SELECT RAISE(ABORT, 'audit_records are append-only'); END""")
    op.bulk_insert(sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash")),
                   [{"id": 1, "seq": 0, "hash": GENESIS}])



def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f('fk_setting_changes_motion_id_motions'), 'setting_changes',
                           type_='foreignkey')
        op.execute("DROP TRIGGER audit_records_append_only ON audit_records")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_records_no_{action}")
    op.execute("ALTER TABLE setting_changes DROP COLUMN motion_id")

    op.drop_table('votes')
    op.drop_table('partners')
    with op.batch_alter_table('motions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_motions_status'))

    op.drop_table('motions')
    op.drop_table('mail_messages')
    op.drop_table('fec_mappings')
    with op.batch_alter_table('collective_members', schema=None) as batch_op:
        batch_op.drop_index('uq_collective_members_user_current', sqlite_where=sa.text('until IS NULL'), postgresql_where=sa.text('until IS NULL'))

    op.drop_table('collective_members')
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_records_username_at'))
        batch_op.drop_index(batch_op.f('ix_audit_records_at'))

    op.drop_table('audit_records')
    op.drop_table('audit_head')
