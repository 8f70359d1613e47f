"""Migration 0007: a database with the same dataset recorded twice (a retried retrain before
the fix) keeps one row per content hash, its runs point at it, and the hash is unique."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from driftd.db import alembic_config, make_engine, upgrade
from driftd.registry import Registry
from driftd.registry import schema as t


def _dataset(conn: sa.Connection, sha: str, uri: str, at: float) -> int:
    row = conn.execute(
        t.datasets.insert().values(
            sha256=sha,
            row_count=10,
            uri=uri,
            source_offsets={},
            schema={},
            created_at=at,
            created_by="t",
        )
    ).inserted_primary_key
    assert row is not None
    return int(row[0])


def _run(conn: sa.Connection, run_id: str, model_id: int, dataset_id: int | None) -> None:
    empty: dict[str, object] = {}
    conn.execute(
        t.runs.insert().values(
            id=run_id,
            model_id=model_id,
            status="finished",
            params=empty,
            metrics=empty,
            tags=empty,
            seeds=empty,
            code=empty,
            environment=empty,
            dataset_id=dataset_id,
            started_at=0.0,
            created_by="t",
        )
    )


def test_duplicate_datasets_are_merged_and_the_hash_made_unique(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0006")
    a, b = "ab" * 32, "cd" * 32
    with engine.begin() as conn:
        model = conn.execute(
            t.models.insert().values(
                name="fraud", description="", created_at=0.0, created_by="t", next_version=1
            )
        ).inserted_primary_key
        assert model is not None
        first = _dataset(conn, a, "file:///w/1/snapshot", 1.0)
        second = _dataset(conn, a, "file:///w/2/snapshot", 2.0)
        third = _dataset(conn, a, "file:///w/3/snapshot", 3.0)
        other = _dataset(conn, b, "file:///w/4/snapshot", 4.0)
        for run_id, ds in (("r1", first), ("r2", second), ("r3", third), ("r4", other)):
            _run(conn, run_id, int(model[0]), ds)
        _run(conn, "r5", int(model[0]), None)
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.datasets.c.id, t.datasets.c.sha256)).all()
        runs = dict(conn.execute(sa.select(t.runs.c.id, t.runs.c.dataset_id)).all())
    assert sorted((r.id, r.sha256) for r in rows) == [(first, a), (other, b)]
    assert runs == {"r1": first, "r2": first, "r3": first, "r4": other, "r5": None}
    reg = Registry(engine)
    assert reg.get_dataset(first).uri == "file:///w/1/snapshot"  # the earliest row is kept
    assert reg.register_dataset(a, 10, "file:///w/5/snapshot", "t") == first
    indexes = {i["name"]: i for i in sa.inspect(engine).get_indexes("registry_datasets")}
    assert indexes["ix_registry_datasets_sha256"]["unique"]
    command.downgrade(alembic_config(engine), "0006")  # and back: the index is plain again
    indexes = {i["name"]: i for i in sa.inspect(engine).get_indexes("registry_datasets")}
    assert not indexes["ix_registry_datasets_sha256"]["unique"]
    engine.dispose()
