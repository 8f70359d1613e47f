"""Retrain job queue: one row per job, its state, attempts, lease and result; at most one
running job per model (a partial unique index).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrain_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("trigger", sa.JSON, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("backoff_s", sa.Float, nullable=False),
        sa.Column("max_backoff_s", sa.Float, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("owner", sa.String(255)),
        sa.Column("heartbeat_at", sa.Float),
        sa.Column("lease_until", sa.Float),
        sa.Column("result", sa.JSON),
    )
    op.create_index("ix_retrain_jobs_due", "retrain_jobs", ["state", "next_attempt_at"])
    op.create_index("ix_retrain_jobs_model", "retrain_jobs", ["model", "state"])
    running = sa.text("state = 'running'")
    op.create_index(
        "uq_retrain_jobs_one_running",
        "retrain_jobs",
        ["model"],
        unique=True,
        postgresql_where=running,
        sqlite_where=running,
    )


def downgrade() -> None:
    op.drop_index("uq_retrain_jobs_one_running", table_name="retrain_jobs")
    op.drop_index("ix_retrain_jobs_model", table_name="retrain_jobs")
    op.drop_index("ix_retrain_jobs_due", table_name="retrain_jobs")
    op.drop_table("retrain_jobs")
