"""The engine factory: a URL it cannot open, and a database it cannot reach, are named in one
line; an unreachable database is still an OperationalError for the code that retries."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import sqlalchemy as sa

from driftd.db import DatabaseError, DatabaseUnreachable, make_engine
from driftd.errors import ConfigError


@pytest.mark.parametrize("url", ["mysql://ops:hunter2@db/x", "state.db", "postgresql://h:port/d"])
def test_a_url_driftd_cannot_open_is_a_config_error_naming_it(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_engine(url)
    msg = str(info.value)
    assert isinstance(info.value, DatabaseError) and "hunter2" not in msg
    assert url.replace("hunter2", "***") in msg and "\n" not in msg


def test_an_unreachable_postgresql_says_where_and_stays_an_operational_error() -> None:
    engine = make_engine("postgresql://driftd:hunter2@127.0.0.1:1/metrics")
    with pytest.raises(sa.exc.OperationalError) as info:
        engine.connect()
    err = info.value
    assert isinstance(err, DatabaseUnreachable)
    msg = str(err)
    assert "host 127.0.0.1, port 1 (database metrics, user driftd)" in msg
    assert "check that the server is running" in msg and "hunter2" not in msg
    assert "\n" not in msg
    assert str(pickle.loads(pickle.dumps(err))) == msg
    engine.dispose()


def test_a_sqlite_file_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}")  # a directory, not a database file
    with pytest.raises(DatabaseUnreachable, match=f"cannot open SQLite database {tmp_path}:"):
        engine.connect()
    engine.dispose()
    (tmp_path / "file").write_text("")
    with pytest.raises(DatabaseError, match="check that its directory exists"):
        make_engine(f"sqlite:///{tmp_path}/file/state.db")


def test_a_failing_statement_is_not_taken_for_an_unreachable_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/ok.db")
    with pytest.raises(sa.exc.OperationalError) as info, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert not isinstance(info.value, DatabaseUnreachable)
    engine.dispose()
