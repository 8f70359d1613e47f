"""Checkpoint tables: partition state blobs and the offsets they reflect.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "driftd_checkpoints",
        sa.Column("pipeline", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("offsets", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("nbytes", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "driftd_checkpoint_chunks",
        sa.Column("pipeline", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("chunk", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("driftd_checkpoint_chunks")
    op.drop_table("driftd_checkpoints")
