"""Background jobs: the FEC of a whole year prepared by a worker (issue 18).

Revision ID: 0017_export_jobs
Revises: 0016_verify_seals

- ``jobs``: a generic job table (bousol/ledger/kernel/jobs.py, docs/fec.md): kind and
  parameters (canonical JSON), who asked and with which role, the state
  (queued → running → done | failed; a stale running job back to queued), the worker
  that claimed it and its heartbeat, and the output: a file name under ``EXPORTS_DIR``,
  its size and SHA-256, or the error. ``active_key`` (unique, NULL once finished) makes
  the same request made twice while it waits or runs queue one job.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017_export_jobs'
down_revision = '0016_verify_seals'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('active_key', sa.String(length=200), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('requested_by_user_id', sa.Integer(), nullable=True),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=100), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('output_name', sa.String(length=200), nullable=True),
        sa.Column('download_name', sa.String(length=200), nullable=True),
        sa.Column('size_bytes', sa.BigInteger(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')",
                           name=op.f('ck_jobs_status')),
        sa.CheckConstraint("(status IN ('queued', 'running')) = (active_key IS NOT NULL)",
                           name=op.f('ck_jobs_active_key')),
        sa.CheckConstraint("status <> 'done' OR (output_name IS NOT NULL AND sha256 IS NOT NULL "
                           "AND size_bytes IS NOT NULL)", name=op.f('ck_jobs_done_output')),
        sa.CheckConstraint("status <> 'failed' OR error IS NOT NULL",
                           name=op.f('ck_jobs_failed_error')),
        sa.CheckConstraint('attempts >= 0', name=op.f('ck_jobs_attempts')),
        sa.ForeignKeyConstraint(['requested_by_user_id'], ['users.id'],
                                name=op.f('fk_jobs_requested_by_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
        sa.UniqueConstraint('active_key', name=op.f('uq_jobs_active_key')),
    )
    op.create_index(op.f('ix_jobs_status_id'), 'jobs', ['status', 'id'], unique=False)
    op.create_index(op.f('ix_jobs_kind_requested_at'), 'jobs', ['kind', 'requested_at'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_jobs_kind_requested_at'), table_name='jobs')
    op.drop_index(op.f('ix_jobs_status_id'), table_name='jobs')
    op.drop_table('jobs')
