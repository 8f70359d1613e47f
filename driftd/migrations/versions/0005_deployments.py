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


def downgrade() -> None:
    op.drop_table("registry_deployments")
