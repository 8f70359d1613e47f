"""One dataset per content hash: ``registry_datasets.sha256`` becomes unique.

A retried retrain used to record its snapshot a second time (same hash, new directory). The
upgrade keeps the earliest row of each hash, points the runs of the others at it (its URI
holds the same bytes), deletes the others, then makes the index unique.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEX = "ix_registry_datasets_sha256"
# Constant SQL (no input), in this order: re-point the runs, then delete the duplicates.
_REPOINT = (
    "UPDATE registry_runs SET dataset_id = (SELECT MIN(k.id) FROM registry_datasets d "
    "JOIN registry_datasets k ON k.sha256 = d.sha256 WHERE d.id = registry_runs.dataset_id) "
    "WHERE dataset_id IS NOT NULL"
)
_DEDUPE = (
    "DELETE FROM registry_datasets WHERE id NOT IN "
    "(SELECT MIN(id) FROM registry_datasets GROUP BY sha256)"
)


def upgrade() -> None:
    op.execute(_REPOINT)
    op.execute(_DEDUPE)
    op.drop_index(_INDEX, "registry_datasets")
    op.create_index(_INDEX, "registry_datasets", ["sha256"], unique=True)


def downgrade() -> None:
    op.drop_index(_INDEX, "registry_datasets")
    op.create_index(_INDEX, "registry_datasets", ["sha256"])
