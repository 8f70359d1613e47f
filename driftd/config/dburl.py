"""Database URLs: the schemes driftd can open, a check that names them, and a form of a URL that
is safe to print (no password). Plain string work, so that validating a config stays cheap."""

from __future__ import annotations

import re

# What ``driftd.db.make_engine`` opens: SQLite files and PostgreSQL through psycopg 3.
SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@")


def without_password(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    return _PASSWORD.sub(r"\1:***@", url)


def check_url(url: str) -> str:
    """``url`` when its scheme is one driftd can open; otherwise a ValueError whose message
    completes "expected ...": the schemes allowed and the one given."""
    m = _SCHEME.match(url)
    allowed = f"{', '.join(SCHEMES[:-1])} or {SCHEMES[-1]}"
    if m is None:
        raise ValueError(
            f"a database URL SCHEME://... with SCHEME one of {allowed} "
            "(e.g. sqlite:///.driftd/state.db); this one has no scheme"
        )
    if m.group(1).lower() not in SCHEMES:
        raise ValueError(
            f"a database URL whose scheme is {allowed}; {m.group(1)!r} is not supported"
        )
    return url
