"""One rule for every test that needs a service: fail under CI, skip with the reason elsewhere."""

from __future__ import annotations

import os

import pytest

_TRUE = {"1", "true", "yes", "on"}


def in_ci(environ: dict[str, str] | None = None) -> bool:
    """True when CI is set to a true value (true, True, 1, yes, on), as CI systems spell it."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() in _TRUE


def unavailable(what: str) -> None:
    """A service the test needs is missing: fail under CI (it must run there), skip elsewhere."""
    if in_ci():
        pytest.fail(f"{what} (CI=true: service tests must run)")
    pytest.skip(what)
