"""The leader's incident hook: a database error fails the merge (which is retried); any other
error is counted and logged, so that incidents never stall the decisions behind them."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from driftd.contracts.monitor import DriftDetected
from driftd.daemon.incidents import IncidentHook

DRIFT = DriftDetected("m", "1", "error", "ADWIN", "drift", 5.0, 1.0, 0.5)
WARNING = DriftDetected("m", "1", "error", "ADWIN", "warning", 4.0, 1.0, 0.5)


class Store:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.recorded: list[list[DriftDetected]] = []

    def record(self, alarms: list[DriftDetected], evidence: Any) -> list[Any]:
        self.recorded.append(list(alarms))
        if self.error is not None:
            raise self.error
        return []

    def resolve_quiet(self, clock: float) -> list[Any]:
        return []


def test_warnings_page_nobody() -> None:
    store = Store()
    IncidentHook(store, lambda: 0.0)([WARNING, DRIFT], {})  # type: ignore[arg-type]
    assert store.recorded == [[DRIFT]]


def test_a_bug_is_counted_and_the_merge_goes_on() -> None:
    hook = IncidentHook(Store(ValueError("bug")), lambda: 0.0)  # type: ignore[arg-type]
    hook([DRIFT], {})
    assert hook.failures == 1


def test_a_database_error_fails_the_merge_so_it_is_retried() -> None:
    hook = IncidentHook(Store(sa.exc.OperationalError("x", {}, Exception("gone"))), lambda: 0.0)  # type: ignore[arg-type]
    with pytest.raises(sa.exc.OperationalError):
        hook([DRIFT], {})
    assert hook.failures == 0
