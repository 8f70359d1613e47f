"""Manual control of a rollout against a real SQLite registry: the controller honours a pause
(across a restart) and a resume; promote now respects the production gate; abort rolls back
at once; each command is in the audit log, whose chain verifies; a decision the controller made
on a row a manual command has since changed is dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from driftd.db import make_engine, upgrade
from driftd.registry import GateNotSatisfied, Registry
from driftd.registry.names import Stage
from driftd.registry.roles import Gate
from driftd.rollout.machine import Action
from driftd.rollout.manual import NoActiveRollout, control
from driftd.rollout.store import RolloutStore, to_rollout
from tests.rollout.test_controller import (
    Traffic,
    _controller,
    _run,
    champion_and_challenger,
)

GOOD = {"1": 0.005, "2": 0.005}
BAD = {"1": 0.005, "2": 0.04}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Registry, Path]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    upgrade(engine)
    reg = Registry(engine)
    config = champion_and_challenger(reg, tmp_path)
    yield reg, config
    engine.dispose()


def _actions(reg: Registry) -> list[str]:
    return [r.action for r in reg.audit_log(limit=10_000)]


def test_a_paused_rollout_takes_no_step_even_after_a_restart(
    setup: tuple[Registry, Path],
) -> None:
    reg, config = setup
    traffic = Traffic(1)
    ctl = _controller(reg, config, traffic)
    _run(ctl, reg, traffic, GOOD, 1)
    assert reg.traffic("fraud") == {1: 0.9, 2: 0.1}
    done = control(reg, "fraud", "pause", "alice", "investigating a latency alert")
    assert done.changed and done.paused
    _run(ctl, reg, traffic, GOOD, 200)  # enough for the first step to move on, unpaused
    assert reg.traffic("fraud") == {1: 0.9, 2: 0.1}
    store = RolloutStore(reg.engine)
    row = store.active("fraud")
    assert row is not None and row.paused and row.step == 0
    verdict = ctl.last_verdicts()["fraud"]  # evidence accrued, verdicts are still given
    assert verdict.elapsed_s > 1000 and verdict.decision.value in ("continue", "promote")

    restarted = _controller(reg, config, traffic)  # a new process reads the pause back
    _run(restarted, reg, traffic, GOOD, 200)
    assert reg.traffic("fraud") == {1: 0.9, 2: 0.1}
    assert reg.get_version("fraud", 2).stage == "canary"

    assert not control(reg, "fraud", "pause", "alice").changed  # already paused: nothing
    assert control(reg, "fraud", "resume", "alice", "alert explained").changed
    _run(restarted, reg, traffic, GOOD, 400)
    assert reg.get_version("fraud", 2).stage == "production", restarted.timeline
    assert reg.traffic("fraud") == {2: 1.0}
    actions = _actions(reg)
    assert actions.count("rollout.pause") == 1 and actions.count("rollout.resume") == 1
    pause = next(r for r in reg.audit_log(limit=10_000) if r.action == "rollout.pause")
    assert pause.actor == "alice" and pause.reason == "investigating a latency alert"
    assert pause.subject == "fraud/2"
    assert reg.verify_audit().ok


def test_a_pause_holds_back_a_rollback_and_abort_rolls_back_at_once(
    setup: tuple[Registry, Path],
) -> None:
    reg, config = setup
    traffic = Traffic(2)
    ctl = _controller(reg, config, traffic)
    _run(ctl, reg, traffic, BAD, 1)
    control(reg, "fraud", "pause", "bob")
    _run(ctl, reg, traffic, BAD, 200)  # a bad canary: rolled back within 200 ticks unpaused
    assert reg.get_version("fraud", 2).stage == "canary"
    assert ctl.last_verdicts()["fraud"].decision.value == "rollback"  # seen, not acted on

    done = control(reg, "fraud", "abort", "bob", "error rate up", request_id="abort-1")
    assert done.phase == "rolled_back" and not done.paused
    assert reg.get_version("fraud", 2).stage == "rolled_back"
    assert reg.traffic("fraud") == {1: 1.0}
    assert reg.resolve("fraud@champion").version == 1
    # The same request again answers as before and changes nothing.
    n = len(reg.audit_log(limit=10_000))
    assert control(reg, "fraud", "abort", "bob", "error rate up", request_id="abort-1") == done
    assert len(reg.audit_log(limit=10_000)) == n
    _run(ctl, reg, traffic, BAD, 20)  # the controller has nothing left to do
    assert RolloutStore(reg.engine).active("fraud") is None
    assert not [e for e in ctl.timeline if e["event"] == "rollback"]
    assert _actions(reg).count("rollout.abort") == 1
    with pytest.raises(NoActiveRollout):
        control(reg, "fraud", "abort", "bob")
    with pytest.raises(NoActiveRollout):
        control(reg, "fraud", "pause", "bob")
    assert reg.verify_audit().ok


def test_promote_now_respects_the_production_gate(setup: tuple[Registry, Path]) -> None:
    reg, config = setup
    traffic = Traffic(3)
    ctl = _controller(reg, config, traffic)
    _run(ctl, reg, traffic, GOOD, 1)
    reg.set_gates({Stage.PRODUCTION: Gate(approvals=1)}, "admin")
    before = RolloutStore(reg.engine).active("fraud")
    assert before is not None
    seq = before.seq
    with pytest.raises(GateNotSatisfied):
        control(reg, "fraud", "promote", "carol", "ship it")
    row = RolloutStore(reg.engine).active("fraud")
    assert row is not None and row.seq == seq and row.phase == "running"  # nothing changed
    assert reg.get_version("fraud", 2).stage == "canary"
    assert "rollout.promote" not in _actions(reg)

    reg.approve("fraud", 2, "production", "dave", "approver")
    done = control(reg, "fraud", "promote", "carol", "ship it")
    assert done.phase == "promoted"
    v2 = reg.get_version("fraud", 2)
    assert v2.stage == "production" and "champion" in v2.aliases
    assert reg.traffic("fraud") == {2: 1.0}
    _run(ctl, reg, traffic, GOOD, 20)
    assert RolloutStore(reg.engine).active("fraud") is None
    assert reg.traffic("fraud") == {2: 1.0}
    assert _actions(reg).count("rollout.promote") == 1
    assert reg.verify_audit().ok


def test_a_decision_on_a_row_changed_by_hand_is_dropped(setup: tuple[Registry, Path]) -> None:
    reg, config = setup
    traffic = Traffic(4)
    ctl = _controller(reg, config, traffic)
    _run(ctl, reg, traffic, GOOD, 1)
    store = RolloutStore(reg.engine)
    row = store.active("fraud")
    stale = to_rollout(row)  # what a controller read just before the operator acted
    control(reg, "fraud", "abort", "erin")
    action = Action("traffic", f"{stale.id}:{stale.seq}", {1: 0.5, 2: 0.5}, "canary at 50%")
    assert not store.save(stale, traffic.t, action, expect_seq=stale.seq)
    after = store.get(stale.id)
    assert after is not None and after.phase == "rolled_back" and after.pending is None
    # A paused row takes no action either, though its verdict may be stored.
    assert reg.traffic("fraud") == {1: 1.0}
