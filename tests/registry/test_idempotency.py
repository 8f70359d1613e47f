"""Request ids (idempotency keys) belong to the actor who sent them: another actor's request
with the same id is a request of its own, never answered with the first one's result."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from driftd.db import alembic_config, make_engine, upgrade
from driftd.registry import Registry
from driftd.registry import schema as t

SHA = "ab" * 32


def test_the_same_request_id_from_two_actors_is_two_requests(registry: Registry) -> None:
    a = registry.register_version("m", "s3://b/1", SHA, 1, "alice", request_id="k")
    b = registry.register_version("m", "s3://b/1", SHA, 1, "bob", request_id="k")
    assert (a.version, a.created_by) == (1, "alice")
    assert (b.version, b.created_by) == (2, "bob")
    again = registry.register_version("m", "s3://b/1", SHA, 1, "bob", request_id="k")
    assert again.version == 2  # bob's repeat replays bob's answer
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.select(t.requests.c.actor, t.requests.c.request_id)).all()
    assert sorted(rows) == [("alice", "k"), ("bob", "k")]


def test_upgrade_keeps_the_recorded_requests(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0005")
    reg = Registry(engine)
    first = reg.register_version("m", "s3://b/1", SHA, 1, "alice", request_id="before")
    upgrade(engine)
    # A retry after the upgrade is still a replay for the same actor, not a second version.
    assert reg.register_version("m", "s3://b/1", SHA, 1, "alice", request_id="before") == first
    assert reg.register_version("m", "s3://b/1", SHA, 1, "bob", request_id="before").version == 2
    # Down again: one row per request id is kept (the first), so the old key still holds.
    command.downgrade(alembic_config(engine), "0005")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT actor, request_id FROM registry_requests")).all()
    assert [tuple(r) for r in rows] == [("alice", "before")]
    engine.dispose()
