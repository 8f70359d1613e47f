"""The rollout controller against a real registry (SQLite and PostgreSQL): a good canary walks
the steps to production, a bad one is rolled back, and a crash between deciding and acting
neither loses nor repeats a traffic decision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from driftd.config import load_settings
from driftd.db import make_engine, upgrade
from driftd.registry import Registry
from driftd.rollout.actions import RegistryActions
from driftd.rollout.controller import Controller, rollout_sections
from driftd.rollout.counts import EDGES_MS, FIELDS, Totals
from driftd.rollout.machine import Action
from driftd.rollout.store import RolloutStore, to_rollout
from tests.databases import fresh_database

SHA = "ab" * 32
CONFIG = """
[models.fraud]
features = {{ a = "numeric" }}
[models.fraud.rollout]
steps = [0.1, 0.5]
step_min_s = {step_min_s}
[models.fraud.rollout.slo]
min_samples = 300
min_labeled = 0
checks = ["error_rate", "latency"]
max_duration_s = 100000
"""


class Traffic:
    """Per-version cumulative counts the test advances: requests, errors at a chosen rate,
    lognormal latencies."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.t = 1000.0
        self.totals: dict[str, Totals] = {}

    def counts(self, model: str, version: str) -> Totals:
        return self.totals.get(version, Totals())

    def serve(self, rates: dict[str, float], weights: dict[int, float], n: int = 500) -> None:
        self.t += 10.0
        for v, w in weights.items():
            k = int(self.rng.binomial(n, w))
            errors = int(self.rng.binomial(k, rates[str(v)]))
            c = np.zeros(len(FIELDS))
            c[0], c[1] = k, errors
            ms = self.rng.lognormal(np.log(100.0), 0.5, size=k)  # median 100 ms
            lat = np.bincount(np.searchsorted(EDGES_MS, ms), minlength=len(EDGES_MS)).astype(float)
            old = self.totals.get(str(v), Totals())
            self.totals[str(v)] = Totals(old.counts + c, old.latency + lat)


def champion_and_challenger(reg: Registry, tmp_path: Path) -> Path:
    """fraud/1 in production (the champion), fraud/2 in staging as the challenger, and a
    config whose rollout starts it; the config's path."""
    reg.register_version("fraud", "file:///1", SHA, 1, "t", stage="staging")
    reg.promote("fraud", 1, "production", "ops")
    reg.register_version("fraud", "file:///2", SHA, 1, "t", stage="staging",
                         aliases=["challenger"], parent_version=1)  # fmt: skip
    config = tmp_path / "driftd.toml"
    config.write_text(CONFIG.format(step_min_s=30))
    return config


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Registry, Path]]:
    with fresh_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        reg = Registry(engine)
        config = champion_and_challenger(reg, tmp_path)
        yield reg, config
        engine.dispose()


def _controller(reg: Registry, config: Path, traffic: Traffic) -> Controller:
    models = rollout_sections(load_settings(config).models)
    store, actions = RolloutStore(reg.engine), RegistryActions(reg)
    return Controller(models, store, actions, traffic.counts, lambda: traffic.t)


def _run(
    ctl: Controller, reg: Registry, traffic: Traffic, rates: dict[str, float], ticks: int
) -> None:
    for _ in range(ticks):
        weights = reg.traffic("fraud") or {1: 1.0}
        traffic.serve(rates, weights)
        ctl.tick()


def test_a_good_canary_walks_the_steps_to_production(setup: tuple[Registry, Path]) -> None:
    reg, config = setup
    traffic = Traffic(1)
    ctl = _controller(reg, config, traffic)
    _run(ctl, reg, traffic, {"1": 0.005, "2": 0.005}, 1)
    assert reg.get_version("fraud", 2).stage == "canary"
    assert reg.traffic("fraud") == {1: 0.9, 2: 0.1}
    _run(ctl, reg, traffic, {"1": 0.005, "2": 0.005}, 400)
    v2 = reg.get_version("fraud", 2)
    assert v2.stage == "production" and "champion" in v2.aliases, ctl.timeline
    assert reg.traffic("fraud") == {2: 1.0}
    events = [e["event"] for e in ctl.timeline if e["event"] != "canary plan"]
    assert events[:3] == ["canary started", "start", "traffic"] and events[-1] == "promote"
    assert [e for e in ctl.timeline if e["event"] == "canary plan"], ctl.timeline
    assert reg.verify_audit().ok


def test_a_bad_canary_is_rolled_back_quickly(setup: tuple[Registry, Path]) -> None:
    reg, config = setup
    traffic = Traffic(2)
    ctl = _controller(reg, config, traffic)
    _run(ctl, reg, traffic, {"1": 0.005, "2": 0.04}, 200)
    assert reg.get_version("fraud", 2).stage == "rolled_back", ctl.timeline
    assert reg.traffic("fraud") == {1: 1.0}
    assert reg.resolve("fraud@champion").version == 1
    rollbacks = [e for e in ctl.timeline if e["event"] == "rollback"]
    assert len(rollbacks) == 1 and "error_rate" in rollbacks[0]["detail"]
    assert ctl.last_verdicts()["fraud"].decision.value == "rollback"


def test_a_crash_between_deciding_and_acting_resumes_once(setup: tuple[Registry, Path]) -> None:
    reg, config = setup
    traffic = Traffic(3)
    ctl = _controller(reg, config, traffic)
    _run(ctl, reg, traffic, {"1": 0.005, "2": 0.005}, 1)  # canary started at 10 %
    store = RolloutStore(reg.engine)
    row = store.active("fraud")
    r = to_rollout(row)
    # The process decided "50 %" and recorded it, then died before acting.
    action = Action("traffic", f"{r.id}:{r.seq}", {1: 0.5, 2: 0.5}, "canary at 50%")
    store.save(r, traffic.t, action)
    audit_before = len(reg.audit_log(limit=10_000))
    fresh = _controller(reg, config, traffic)  # a restarted process
    fresh.tick()
    assert reg.traffic("fraud") == {1: 0.5, 2: 0.5}
    assert store.active("fraud").pending is None
    # The same decision replayed (e.g. a crash after acting, before clearing) changes nothing.
    store.save(r, traffic.t, action)
    fresh.tick()
    traffic_changes = [
        a for a in reg.audit_log(after=audit_before, limit=10_000) if a.action == "traffic.set"
    ]
    assert len(traffic_changes) == 1
