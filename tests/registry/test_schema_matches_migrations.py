"""The migrations build the schema that the table definitions declare, on SQLite and PostgreSQL.

The tables are written twice: as ``sa.Table`` definitions that the queries use, and as the
Alembic migrations that build a database. Alembic's comparison finds tables, columns, types,
nullability, server defaults, indexes, unique and foreign-key constraints that differ; it never
compares primary keys or the predicate of a partial index, so those are compared with a twin
database made from the definitions by ``create_all``, each as the backend itself reports it.
Nothing is ignored. Constraint names are not compared: the primary key of ``registry_requests``
is named ``pk_registry_requests_new`` (migration 0006 renamed its table, not the constraint).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import driftd
from driftd import db
from driftd.db import make_engine, upgrade
from tests.databases import fresh_database

PACKAGE = Path(driftd.__file__).parent
# A module that defines tables or a MetaData (rich's Table, in the CLI, is not one).
DEFINES_TABLES = re.compile(r"\b(?:sa|sqlalchemy)\.(?:Table|MetaData)\(")


def table_modules() -> list[str]:
    """Every driftd module, migrations aside, whose source defines a table or a MetaData."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if "migrations" not in rel.parts and DEFINES_TABLES.search(path.read_text()):
            found.append(".".join(rel.parts))
    return found


def declared_metadata() -> sa.MetaData:
    """``driftd.db.metadata`` with every table defined in driftd, checked to be on it."""
    for name in table_modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            elsewhere = (isinstance(obj, sa.Table) and obj.metadata is not db.metadata) or (
                isinstance(obj, sa.MetaData) and obj is not db.metadata
            )
            # driftd/migrations/env.py compares and migrates driftd.db.metadata only.
            assert not elsewhere, f"{name} defines tables outside driftd.db.metadata"
    return db.metadata


def differences(engine: sa.Engine, metadata: sa.MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match ``metadata``."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def keys_and_predicates(engine: sa.Engine) -> dict[str, Any]:
    """Per table: the primary-key columns, and each index's partial predicate (None: total)."""
    inspector = sa.inspect(engine)
    where = f"{engine.dialect.name}_where"
    shape: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        predicates = {}
        for index in inspector.get_indexes(table):
            predicate = index.get("dialect_options", {}).get(where)
            predicates[index["name"]] = None if predicate is None else str(predicate)
        shape[table] = (inspector.get_pk_constraint(table)["constrained_columns"], predicates)
    return shape


def migrated_and_created(
    url: str, tmp_path: Path, metadata: sa.MetaData
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys and predicates of ``url`` migrated to head and of a twin made by create_all."""
    migrated = make_engine(url)
    upgrade(migrated)
    with fresh_database(migrated.dialect.name, tmp_path) as twin_url:
        twin = make_engine(twin_url)
        metadata.create_all(twin)
        created = keys_and_predicates(twin)
        twin.dispose()
    shape = keys_and_predicates(migrated)
    migrated.dispose()
    return shape, created


def test_every_table_module_is_found() -> None:
    assert {
        "driftd.db",
        "driftd.registry.schema",
        "driftd.retrain.jobs",
        "driftd.rollout.store",
    } <= set(table_modules())


def test_upgrade_head_leaves_nothing_for_autogenerate_to_change(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    metadata = declared_metadata()
    try:
        assert differences(engine, metadata) == []
        assert set(metadata.tables) == set(sa.inspect(engine).get_table_names()) - {
            "alembic_version"
        }
    finally:
        engine.dispose()


def test_upgrade_head_has_the_declared_primary_keys_and_partial_indexes(
    db_url: str, tmp_path: Path
) -> None:
    migrated, created = migrated_and_created(db_url, tmp_path, declared_metadata())
    assert migrated == created


@pytest.mark.parametrize(
    ("change", "table"),
    [("primary key", "registry_requests"), ("partial predicate", "retrain_jobs")],
)
def test_the_comparison_autogenerate_skips_sees_a_change(
    change: str, table: str, tmp_path: Path
) -> None:
    # Guards the guard: autogenerate alone lets both changes pass.
    metadata = sa.MetaData()
    for t in declared_metadata().sorted_tables:
        t.to_metadata(metadata)
    if change == "primary key":
        # registry_requests as it was before migration 0006: keyed by request_id alone.
        requests = metadata.tables["registry_requests"]
        metadata.remove(requests)
        columns = (
            sa.Column(c.name, c.type, primary_key=c.name == "request_id", nullable=False)
            for c in requests.columns
        )
        sa.Table("registry_requests", metadata, *columns)
    else:
        (index,) = (
            i
            for i in metadata.tables["retrain_jobs"].indexes
            if i.dialect_options["sqlite"]["where"] is not None
        )
        index.dialect_options["sqlite"]["where"] = sa.text("state = 'queued'")
    with fresh_database("sqlite", tmp_path) as url:
        migrated, created = migrated_and_created(url, tmp_path, metadata)
        engine = make_engine(url)
        assert differences(engine, metadata) == []  # what autogenerate alone says
        engine.dispose()
    assert {name for name in migrated if migrated[name] != created[name]} == {table}
