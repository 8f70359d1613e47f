"""Registry tables: models, versions, runs, datasets, aliases and stages with their history,
approvals, the hash-chained audit log, idempotent requests, the outbox and API tokens.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False, default=1),
    )
    op.create_table(
        "registry_datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("window_start", sa.Float),
        sa.Column("window_end", sa.Float),
        sa.Column("source_offsets", sa.JSON, nullable=False),
        sa.Column("schema", sa.JSON, nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "registry_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("seeds", sa.JSON, nullable=False),
        sa.Column("code", sa.JSON, nullable=False),
        sa.Column("environment", sa.JSON, nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("registry_datasets.id")),
        sa.Column("trigger", sa.JSON),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("created_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "registry_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_size", sa.BigInteger, nullable=False),
        sa.Column("framework", sa.String(64), nullable=False),
        sa.Column("signature", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("registry_runs.id")),
        sa.Column("parent_version", sa.Integer),
        sa.Column("evaluation", sa.JSON),
        sa.Column("description", sa.Text, nullable=False, default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False, default=1),
        sa.UniqueConstraint("model_id", "version", name="uq_registry_versions_model_version"),
    )
    op.create_table(
        "registry_aliases",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), primary_key=True),
        sa.Column("alias", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "registry_alias_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("valid_from", sa.Float, nullable=False),
        sa.Column("valid_to", sa.Float),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, default=""),
    )
    op.create_table(
        "registry_stage_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("registry_versions.id"), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("valid_from", sa.Float, nullable=False),
        sa.Column("valid_to", sa.Float),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, default=""),
    )
    op.create_table(
        "registry_approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("registry_versions.id"), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("version_id", "stage", "approver", name="uq_registry_approvals_once"),
    )
    op.create_table(
        "registry_audit",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("old", sa.Text, nullable=False),
        sa.Column("new", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "registry_audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_check", sa.String(64)),
    )
    op.create_table(
        "registry_gates",
        sa.Column("stage", sa.String(16), primary_key=True),
        sa.Column("approvals", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("require_evaluation", sa.Boolean, nullable=False),
    )
    op.create_table(
        "registry_requests",
        sa.Column("request_id", sa.String(255), primary_key=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "registry_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_outbox_cursors",
        sa.Column("target", sa.String(255), primary_key=True),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_outbox_dead",
        sa.Column("target", sa.String(255), primary_key=True),
        sa.Column("outbox_id", sa.BigInteger, primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("dead_at", sa.Float, nullable=False),
    )
    op.create_table(
        "registry_tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_index("ix_registry_datasets_sha256", "registry_datasets", ["sha256"])
    op.create_index(
        "ix_registry_alias_history_at",
        "registry_alias_history",
        ["model_id", "alias", "valid_from"],
    )
    op.create_index(
        "ix_registry_stage_history_version", "registry_stage_history", ["version_id", "valid_from"]
    )
    op.bulk_insert(
        sa.table("registry_audit_head", sa.column("id"), sa.column("seq"), sa.column("hash")),
        [{"id": 1, "seq": 0, "hash": "0" * 64}],
    )


def downgrade() -> None:
    op.drop_table("registry_tokens")
    op.drop_table("registry_outbox_dead")
    op.drop_table("registry_outbox_cursors")
    op.drop_table("registry_outbox")
    op.drop_table("registry_requests")
    op.drop_table("registry_gates")
    op.drop_table("registry_audit_head")
    op.drop_table("registry_audit")
    op.drop_table("registry_approvals")
    op.drop_table("registry_stage_history")
    op.drop_table("registry_alias_history")
    op.drop_table("registry_aliases")
    op.drop_table("registry_versions")
    op.drop_table("registry_runs")
    op.drop_table("registry_datasets")
    op.drop_table("registry_models")
