"""Row lookups every part of the registry shares, in reads and inside write transactions: a
model's id, a version's row, a model's aliases, and the ``VersionInfo`` a row becomes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.errors import NotFound
from driftd.registry.names import ModelRef, Stage
from driftd.registry.records import VersionInfo
from driftd.registry.writer import Writer


def locked(stmt: sa.Select[Any], lock: bool) -> sa.Select[Any]:
    """``stmt`` taking row locks (``FOR UPDATE``) when ``lock`` is set."""
    return stmt.with_for_update() if lock else stmt


def find_model(conn: sa.Connection, model: str, lock: bool = False) -> int:
    """The id of ``model``; NotFound when it does not exist."""
    found = conn.execute(
        locked(sa.select(t.models.c.id).where(t.models.c.name == model), lock)
    ).scalar()
    if found is None:
        raise NotFound(f"model {model!r} does not exist")
    return int(found)


def find_version(conn: sa.Connection, model_id: int, model: str, version: int) -> sa.Row[Any]:
    """The row of ``model``'s version ``version``; NotFound when it does not exist."""
    row = conn.execute(
        sa.select(t.versions).where(
            (t.versions.c.model_id == model_id) & (t.versions.c.version == version)
        )
    ).first()
    if row is None:
        raise NotFound(f"model {model!r} has no version {version}")
    return row


def alias_map(conn: sa.Connection, model_id: int) -> dict[str, int]:
    """Each alias of the model and the version it points at."""
    rows = conn.execute(
        sa.select(t.aliases.c.alias, t.aliases.c.version).where(t.aliases.c.model_id == model_id)
    )
    return {r.alias: int(r.version) for r in rows}


def versions_in(conn: sa.Connection, model_id: int, stage: Stage) -> list[int]:
    """The numbers of the model's versions in ``stage``."""
    rows = conn.execute(
        sa.select(t.versions.c.version).where(
            (t.versions.c.model_id == model_id) & (t.versions.c.stage == stage.value)
        )
    )
    return [int(v) for v in rows.scalars()]


def row_exists(conn: sa.Connection, table: sa.Table, key: Any) -> bool:
    """Whether ``table`` has a row with primary key ``key``."""
    pk = next(iter(table.primary_key.columns))
    return conn.execute(sa.select(pk).where(pk == key)).first() is not None


def ensure_model(w: Writer, model: str, lock: bool = False) -> int:
    """The id of ``model``, created (and audited) when new."""
    found = w.conn.execute(
        locked(sa.select(t.models.c.id).where(t.models.c.name == model), lock)
    ).scalar()
    if found is not None:
        return int(found)
    new_id = w.conn.execute(
        t.models.insert().values(
            name=model, description="", created_at=w.now, created_by=w.actor, next_version=1
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    w.audit("model.create", model, None, {"name": model})
    return int(new_id)


def version_info(
    conn: sa.Connection, model: str, row: sa.Row[Any], amap: dict[str, int] | None = None
) -> VersionInfo:
    """The record of a version row, with the aliases that point at it."""
    aliases_by = alias_map(conn, int(row.model_id)) if amap is None else amap
    aliases = sorted(a for a, v in aliases_by.items() if v == row.version)
    return VersionInfo(
        model=model,
        version=int(row.version),
        stage=row.stage,
        artifact_uri=row.artifact_uri,
        artifact_sha256=row.artifact_sha256,
        artifact_size=int(row.artifact_size),
        framework=row.framework,
        signature=dict(row.signature),
        run_id=row.run_id,
        parent_version=row.parent_version,
        evaluation=None if row.evaluation is None else dict(row.evaluation),
        description=row.description,
        created_at=float(row.created_at),
        created_by=row.created_by,
        row_version=int(row.row_version),
        aliases=aliases,
    )


def resolve_number(conn: sa.Connection, ref: ModelRef) -> tuple[int, int]:
    """The model id and version number ``ref`` names (a number, ``latest`` or an alias)."""
    model_id = find_model(conn, ref.model)
    if ref.version is not None:
        return model_id, ref.version
    if ref.alias == "latest":
        found = conn.execute(
            sa.select(sa.func.max(t.versions.c.version)).where(t.versions.c.model_id == model_id)
        ).scalar()
        if found is None:
            raise NotFound(f"model {ref.model!r} has no versions")
        return model_id, int(found)
    number = alias_map(conn, model_id).get(str(ref.alias))
    if number is None:
        raise NotFound(f"model {ref.model!r} has no alias {ref.alias!r}")
    return model_id, number
