"""Idempotency keys belong to their caller: ``registry_requests`` is keyed by
``(request_id, actor)``, so one actor's key never answers another actor's request.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Constant SQL (no input): copy every row up; one row per request id down, the earliest
# (then the first actor by name).
_UP = (
    "INSERT INTO registry_requests_new "
    "(request_id, actor, action, fingerprint, response, created_at) "
    "SELECT request_id, actor, action, fingerprint, response, created_at FROM registry_requests"
)
_DOWN = (
    "INSERT INTO registry_requests_old "
    "(request_id, actor, action, fingerprint, response, created_at) "
    "SELECT request_id, actor, action, fingerprint, response, created_at "
    "FROM registry_requests r WHERE NOT EXISTS (SELECT 1 FROM registry_requests o "
    "WHERE o.request_id = r.request_id AND (o.created_at < r.created_at OR "
    "(o.created_at = r.created_at AND o.actor < r.actor)))"
)


def _requests_table(name: str, *key: str) -> None:
    op.create_table(
        name,
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(*key, name=f"pk_{name}"),
    )


def upgrade() -> None:
    # A new table and a copy: changing a primary key in place is not portable (SQLite).
    _requests_table("registry_requests_new", "request_id", "actor")
    op.execute(_UP)
    op.drop_table("registry_requests")
    op.rename_table("registry_requests_new", "registry_requests")


def downgrade() -> None:
    _requests_table("registry_requests_old", "request_id")
    op.execute(_DOWN)
    op.drop_table("registry_requests")
    op.rename_table("registry_requests_old", "registry_requests")
