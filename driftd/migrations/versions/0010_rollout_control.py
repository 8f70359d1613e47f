"""Manual control of a rollout: a pause flag the controller honours, and the last manual
command (who, when, why), so that both survive a restart and every instance reads them.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("control", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("control")
        batch.drop_column("paused")
