"""Step-wise metric history of runs: one row per run, metric key and step (epoch), so that a
run's learning curve is a series rather than names such as ``rows_per_s_epoch_3``.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_run_metric_steps",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("registry_runs.id"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("value", sa.Float),
        sa.Column("ts", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", "step"),
    )


def downgrade() -> None:
    op.drop_table("registry_run_metric_steps")
