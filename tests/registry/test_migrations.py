"""Alembic: upgrade from empty, downgrade to nothing, and refusal of an outdated schema."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from driftd.daemon.checkpoint import SqlCheckpointStore
from driftd.db import (
    DatabaseError,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from driftd.registry import Registry


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_and_downgrade_to_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert {"registry_audit", "registry_versions", "driftd_checkpoints"} <= _tables(engine)
    command.downgrade(alembic_config(engine), "0002")
    assert not any(name.startswith("registry_") for name in _tables(engine))
    command.downgrade(alembic_config(engine), "base")
    assert _tables(engine) == set()
    upgrade(engine)  # and back up again
    reg = Registry(engine)
    reg.register_version("m", "file:///m", "ab" * 32, 1, "t")
    assert reg.verify_audit().ok
    engine.dispose()


def test_an_outdated_schema_is_refused_with_the_command_to_run(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0002")
    for opener in (
        lambda: Registry.open(db_url),
        lambda: SqlCheckpointStore.open(make_engine(db_url)),
    ):
        with pytest.raises(DatabaseError) as err:
            opener()
        msg = str(err.value)
        assert "schema revision 0002" in msg and head_revision() in msg
        assert "driftd db upgrade" in msg
    assert current_revision(engine) == "0002"  # nothing was migrated behind the operator's back
    engine.dispose()


def test_an_empty_database_gets_the_schema_on_first_start(db_url: str) -> None:
    reg = Registry.open(db_url)
    assert current_revision(reg.engine) == head_revision()
    reg.engine.dispose()
