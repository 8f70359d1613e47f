"""The incidents table (SQLAlchemy Core), beside the registry: the queries and the Alembic
migration share it. One row per incident, rewritten in place at each change (``revision``);
the change itself is in the registry's audit chain and outbox."""

from __future__ import annotations

import sqlalchemy as sa

from driftd.db import metadata

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("version", sa.String(255), nullable=False),
    sa.Column("stream", sa.String(512), nullable=False),
    sa.Column("group_id", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("opened_ts", sa.Float, nullable=False),
    sa.Column("last_alarm_ts", sa.Float, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),  # the whole Incident, as plain data
    sa.Column("evidence", sa.JSON),  # the explanation when the alarm had one
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_incidents_key", "model", "version", "stream", "opened_ts"),
    sa.Index("ix_incidents_state", "state", "last_alarm_ts"),
)
