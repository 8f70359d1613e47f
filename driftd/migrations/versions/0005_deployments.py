"""Traffic weights per model and their history (``deployment`` events), and the rollout
state that a restarted controller resumes from.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_deployments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
        sa.Column("weights", sa.JSON, nullable=False),
        sa.Column("decision_id", sa.String(255), nullable=False),
        sa.Column("valid_from", sa.Float, nullable=False),
        sa.Column("valid_to", sa.Float),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_registry_deployments_at", "registry_deployments", ["model_id", "valid_from"]
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("canary", sa.Integer, nullable=False),
        sa.Column("champion", sa.Integer, nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("step_started_at", sa.Float, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("baseline", sa.JSON, nullable=False),
        sa.Column("tau_ms", sa.Float),
        sa.Column("pending", sa.JSON),
        sa.Column("verdict", sa.JSON),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_rollouts_model", "rollouts", ["model"])


def downgrade() -> None:
    op.drop_table("rollouts")
    op.drop_table("registry_deployments")
