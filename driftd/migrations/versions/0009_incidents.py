"""Incidents: alarms grouped per model, version and stream, with their lifecycle.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("stream", sa.String(512), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_ts", sa.Float, nullable=False),
        sa.Column("last_alarm_ts", sa.Float, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_incidents_key", "incidents", ["model", "version", "stream", "opened_ts"])
    op.create_index("ix_incidents_state", "incidents", ["state", "last_alarm_ts"])


def downgrade() -> None:
    op.drop_table("incidents")
