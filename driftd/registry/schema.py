"""The registry's tables (SQLAlchemy Core), shared by queries and the Alembic migration.

Every mutable fact has a history table beside it so that "what was true at time T" is one
indexed query: ``alias_history`` for aliases, ``stage_history`` for stages. JSON payloads that
the audit chain hashes are stored as canonical text, so the bytes hashed are the bytes kept.
"""

from __future__ import annotations

import sqlalchemy as sa

from driftd.db import metadata

models = sa.Table(
    "registry_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("next_version", sa.Integer, nullable=False, default=1),
)

datasets = sa.Table(
    "registry_datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, index=True, unique=True),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("window_start", sa.Float),
    sa.Column("window_end", sa.Float),
    sa.Column("source_offsets", sa.JSON, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
)

runs = sa.Table(
    "registry_runs",
    metadata,
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

versions = sa.Table(
    "registry_versions",
    metadata,
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

aliases = sa.Table(
    "registry_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), primary_key=True),
    sa.Column("alias", sa.String(255), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

alias_history = sa.Table(
    "registry_alias_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
    sa.Column("alias", sa.String(255), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("valid_from", sa.Float, nullable=False),
    sa.Column("valid_to", sa.Float),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Index("ix_registry_alias_history_at", "model_id", "alias", "valid_from"),
)

stage_history = sa.Table(
    "registry_stage_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("registry_versions.id"), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("valid_from", sa.Float, nullable=False),
    sa.Column("valid_to", sa.Float),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Index("ix_registry_stage_history_version", "version_id", "valid_from"),
)

approvals = sa.Table(
    "registry_approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("registry_versions.id"), nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("approver", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("version_id", "stage", "approver", name="uq_registry_approvals_once"),
)

audit = sa.Table(
    "registry_audit",
    metadata,
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

# One row: the sequence and hash of the newest audit record. Every write transaction locks it
# first, which serialises registry writes and makes a removed tail record detectable.
audit_head = sa.Table(
    "registry_audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # The head's seal ("" when unkeyed): an HMAC over seq, hash and the key's fingerprint under
    # the audit secret (driftd.registry.audit.head_seal). Every writer must hold the same secret,
    # and nobody without it can move the head back after removing the tail.
    sa.Column("key_check", sa.String(64)),
)

# Approval gates per target stage, applied from the config by `driftd registry gates apply`
# (and at start-up of the daemon and the API), so that every client enforces the same rules.
gates = sa.Table(
    "registry_gates",
    metadata,
    sa.Column("stage", sa.String(16), primary_key=True),
    sa.Column("approvals", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("require_evaluation", sa.Boolean, nullable=False),
)

# Request ids are idempotency keys scoped by actor (migration 0006): one caller's key never
# answers another caller's request.
requests = sa.Table(
    "registry_requests",
    metadata,
    sa.Column("request_id", sa.String(255), primary_key=True),
    sa.Column("actor", sa.String(255), primary_key=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

outbox = sa.Table(
    "registry_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

# Per delivery target: the id of the last outbox row handled (delivered or dead-lettered) and
# the attempts spent on the next one. Delivery is in order per target.
outbox_cursors = sa.Table(
    "registry_outbox_cursors",
    metadata,
    sa.Column("target", sa.String(255), primary_key=True),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
)

outbox_dead = sa.Table(
    "registry_outbox_dead",
    metadata,
    sa.Column("target", sa.String(255), primary_key=True),
    sa.Column("outbox_id", sa.BigInteger, primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("dead_at", sa.Float, nullable=False),
)

tokens = sa.Table(
    "registry_tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("revoked_at", sa.Float),
)

# Traffic weights per model: the current split (valid_to NULL) and its history; each change
# is announced as a ``deployment`` outbox event that model servers follow.
deployments = sa.Table(
    "registry_deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
    sa.Column("weights", sa.JSON, nullable=False),
    sa.Column("decision_id", sa.String(255), nullable=False),
    sa.Column("valid_from", sa.Float, nullable=False),
    sa.Column("valid_to", sa.Float),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("ix_registry_deployments_at", "model_id", "valid_from"),
)

# Step-wise metric history of runs (epoch or step -> value), one row per run, key and step;
# the run's ``metrics`` keep the final numbers. ``value`` is NULL for a number that was not
# finite (NaN or infinity: JSON and SQLite cannot hold them).
run_metric_steps = sa.Table(
    "registry_run_metric_steps",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("registry_runs.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Float),
    sa.Column("ts", sa.Float, nullable=False),
)
