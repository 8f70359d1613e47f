"""The database schema of driftd's own tables, the engine factory and Alembic upgrades.

One Alembic environment (``driftd/migrations``) owns every driftd table, so a single
``driftd db upgrade`` brings a database up to date. An engine refuses a URL whose scheme it
cannot open, and a failed connection says where it tried and what to check
(``DatabaseUnreachable``) instead of the driver's traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from driftd.config.dburl import check_url, without_password
from driftd.errors import ConfigError, DriftdError


class DatabaseError(DriftdError):
    """The database cannot be used as it is (e.g. its schema is out of date)."""


class DatabaseUrlError(DatabaseError, ConfigError):
    """A database URL driftd cannot open (its scheme); the message names it and the schemes."""


class DatabaseUnreachable(sa.exc.OperationalError):
    """No connection could be made. Still an ``OperationalError`` for the code that retries or
    answers 503; ``str()`` is one line: where it tried, the driver's reason, what to check."""

    def __init__(
        self,
        statement: str | None,
        params: Any,
        orig: BaseException,
        url: sa.URL,
        connection_invalidated: bool = False,
    ) -> None:
        super().__init__(statement, params, orig, connection_invalidated=connection_invalidated)
        self.url = url

    def __reduce__(self) -> Any:
        args = (self.statement, self.params, self.orig, self.url, self.connection_invalidated)
        return self.__class__, args

    def __str__(self) -> str:
        return unreachable_message(self.url, self.orig)


def unreachable_message(url: sa.URL, reason: BaseException | str | None) -> str:
    """Where a connection was tried, why it failed (the driver's first line), what to check."""
    why = (str(reason or "").strip().splitlines() or ["no reason given"])[0][:300]
    where = "checkpoint.url or registry.url (DRIFTD_CHECKPOINT__URL, DRIFTD_REGISTRY__URL, --db)"
    if url.get_backend_name() == "sqlite":
        return (
            f"cannot open SQLite database {url.database or ':memory:'}: {why}; check that its "
            f"directory exists and is writable, and the database URL in {where}"
        )
    host = url.host or "localhost (Unix socket)"
    port = url.port or 5432
    return (
        f"cannot connect to PostgreSQL at host {host}, port {port} (database "
        f"{url.database or '(default)'}, user {url.username or '(default)'}): {why}; check that "
        f"the server is running and accepts connections there, that the user and password are "
        f"right, and the database URL in {where}"
    )


def _on_connect_error(url: sa.URL) -> Any:
    """A ``handle_error`` listener: a failed new connection becomes ``DatabaseUnreachable``."""

    def handle(ctx: sa.engine.ExceptionContext) -> None:
        err = ctx.sqlalchemy_exception
        if ctx.connection is not None or ctx.is_pre_ping or not isinstance(err, sa.exc.DBAPIError):
            return  # a failing statement, or a stale pooled connection the pool replaces
        if not isinstance(err, sa.exc.OperationalError | sa.exc.InterfaceError) or not err.orig:
            return
        raise DatabaseUnreachable(
            err.statement, err.params, err.orig, url, connection_invalidated=ctx.is_disconnect
        )

    return handle


metadata = sa.MetaData()

checkpoints = sa.Table(
    "driftd_checkpoints",
    metadata,
    sa.Column("pipeline", sa.String(255), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("offsets", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("nbytes", sa.BigInteger, nullable=False),
)

checkpoint_chunks = sa.Table(
    "driftd_checkpoint_chunks",
    metadata,
    sa.Column("pipeline", sa.String(255), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("chunk", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# One brain (see ``daemon.leader``): the partitions' reports to the leader, the leader's state,
# and the lease that makes one instance the leader, with the history of who held it.
reports = sa.Table(
    "driftd_reports",
    metadata,
    sa.Column("pipeline", sa.String(255), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("watermark", sa.Float, nullable=False),
    sa.Column("active_at", sa.Float, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

leader_state = sa.Table(
    "driftd_leader_state",
    metadata,
    sa.Column("pipeline", sa.String(255), primary_key=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

leases = sa.Table(
    "driftd_leases",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),  # the database's clock
    sa.Column("renewed_at", sa.Float, nullable=False),
)

lease_history = sa.Table(
    "driftd_lease_history",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("epoch", sa.BigInteger, primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
    sa.Column("valid_until", sa.Float, nullable=False),  # the last renewal's expiry
    sa.Column("ended", sa.String(32)),  # released, expired (taken over), or NULL while held
)

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # SQLAlchemy, not pysqlite, decides when a transaction begins (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # A writer takes SQLite's write lock at BEGIN, so two read-then-write transactions queue on
    # the busy timeout instead of failing with "database is locked" when the reader upgrades.
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_FENCES: weakref.WeakKeyDictionary[Engine, Callable[[sa.Connection], object]] = (
    weakref.WeakKeyDictionary()
)


def fence_writes(engine: Engine, fence: Callable[[sa.Connection], object] | None) -> None:
    """Make every ``write_transaction`` on ``engine`` call ``fence(conn)`` first, which raises
    to refuse the write (the leader's decisions carry its lease epoch; see ``daemon.lease``)."""
    if fence is None:
        _FENCES.pop(engine, None)
    else:
        _FENCES[engine] = fence


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite, a plain one elsewhere;
    fenced first when the engine has a fence (``fence_writes``)."""
    fence = _FENCES.get(engine)
    with engine.connect() as conn:
        conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if fence is not None:
                fence(conn)
            yield conn


def make_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL; SQLite files get WAL and a busy timeout.

    :raises DatabaseUrlError: the URL is not one driftd can open."""
    shown = without_password(url)
    try:
        check_url(url)
    except ValueError as exc:
        raise DatabaseUrlError(f"database URL {shown!r}: expected {exc}") from None
    try:
        u = sa.engine.make_url(url)
    except (ValueError, sa.exc.ArgumentError) as exc:
        raise DatabaseUrlError(f"database URL {shown!r} cannot be parsed: {exc}") from None
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            try:
                Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(unreachable_message(u, exc.strerror or exc)) from None
        engine = sa.create_engine(u)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
    else:
        if u.drivername == "postgresql":
            u = u.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(u, pool_pre_ping=True)
    sa.event.listen(engine, "handle_error", _on_connect_error(u))
    return engine


def _scripts() -> Config:
    """An Alembic config naming driftd's migrations, enough to read their revisions."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on ``engine`` with driftd's migrations."""
    cfg = _scripts()
    cfg.attributes["engine"] = engine
    return cfg


# An arbitrary, fixed key: every driftd process migrating this database takes this lock.
MIGRATION_LOCK_KEY = 0x64726966  # "drif"


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one database across processes (two daemons starting at once)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``, one process at a time."""
    with migration_lock(engine):
        command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision this driftd knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_scripts()).get_current_head()
    assert head is not None
    return head


def require_current(engine: Engine, create_empty: bool = True) -> None:
    """Refuse a database whose schema is not at this driftd's head revision, saying what to run.

    An empty database (a first start) is given the schema when ``create_empty``; an existing
    schema at an older revision is never migrated behind an operator's back.
    """
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if current is None and create_empty:
        upgrade(engine)
        if current_revision(engine) == head:
            return
    url = engine.url.render_as_string(hide_password=True)
    state = "has no driftd schema" if current is None else f"is at schema revision {current}"
    raise DatabaseError(
        f"database {url} {state}; this driftd needs revision {head}. "
        "Run `driftd db upgrade --config FILE` (or `driftd db upgrade --db URL`) first."
    )
