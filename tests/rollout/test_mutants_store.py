"""The rollout store keeps the verdict it is given and leaves the last one when given none (a
sampled mutation run found the stored verdict unchecked)."""

from __future__ import annotations

from pathlib import Path

from driftd.db import make_engine, upgrade
from driftd.rollout.machine import Action, Rollout
from driftd.rollout.store import RolloutStore


def test_save_keeps_the_verdict_given_and_the_last_one_otherwise(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    store = RolloutStore(engine)
    r = Rollout("r1", "fraud", 2, 1, (0.1, 0.5))
    store.create(r, {"1": [0.0]}, None, Action("start", "d1"), 1.0)
    row = store.get("r1")
    assert row is not None and row.verdict is None
    verdict = {"decision": "continue", "rule": "driftd-sequential", "reasons": []}
    store.save(r, 2.0, None, verdict)
    row = store.get("r1")
    assert row is not None and row.verdict == verdict and row.pending is None
    store.save(r, 3.0, Action("traffic", "d2", {1: 0.5, 2: 0.5}))
    row = store.get("r1")
    assert row is not None and row.verdict == verdict and row.updated_at == 3.0
    engine.dispose()
