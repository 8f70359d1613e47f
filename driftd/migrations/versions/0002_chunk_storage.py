"""Store checkpoint chunks uncompressed out of line on PostgreSQL.

The blobs are mostly float arrays that do not compress; skipping the attempt saves time.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE driftd_checkpoint_chunks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE driftd_checkpoint_chunks ALTER COLUMN data SET STORAGE EXTENDED")
