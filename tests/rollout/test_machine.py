"""The rollout state machine: each verdict's next state and action, and a pending action's trip
through the store."""

from __future__ import annotations

import json

from driftd.rollout.evidence import Reason, RolloutDecision, Verdict
from driftd.rollout.machine import (
    AWAITING_APPROVAL,
    HALTED,
    ROLLED_BACK,
    RUNNING,
    Action,
    Rollout,
    decide,
    start,
)


def test_action_round_trips_through_json_with_every_field() -> None:
    # a pending action is re-read after a crash: its reason and verdict go to the audit record
    verdict = {"decision": "rollback", "reasons": [{"slo": "errors", "fired": True}]}
    action = Action("rollback", "r1:3", {7: 0.25, 6: 0.75}, "rolled back: errors", verdict)
    again = Action.from_dict(json.loads(json.dumps(action.to_dict())))
    assert again == action
    assert again.weights == {7: 0.25, 6: 0.75} and again.verdict == verdict


def test_action_from_a_minimal_record_takes_the_defaults() -> None:
    again = Action.from_dict({"kind": "halt", "decision_id": "r1:0"})
    assert again == Action("halt", "r1:0")
    assert (again.weights, again.reason, again.verdict) == ({}, "", None)


def _verdict(decision: RolloutDecision, *reasons: Reason) -> Verdict:
    return Verdict(decision, "sequential", 60.0, reasons)


FIRED = Reason("errors", "rollback", 4.0, 3.0, True, "sequential", "canary worse by 2%")
QUIET = Reason("latency", "rollback", 0.1, 3.0, False, "sequential")


def test_start_puts_the_first_step_on_the_canary() -> None:
    r, act = start("r1", "m", canary=7, champion=6, steps=(0.1, 0.5), now=100.0)
    assert (r.step, r.phase, r.started_at, r.step_started_at, r.seq) == (
        0,
        RUNNING,
        100.0,
        100.0,
        1,
    )
    assert act == Action("start", "r1:0", {6: 0.9, 7: 0.1}, "canary at 10%")


def test_each_decision_takes_the_next_id() -> None:
    r, _ = start("r1", "m", 7, 6, (0.1, 0.5, 1.0), now=0.0)
    ids = []
    for t in (100.0, 200.0):
        r, act = decide(r, _verdict(RolloutDecision.PROMOTE), now=t, step_min_s=50.0)
        assert act is not None
        ids.append(act.decision_id)
    assert ids == ["r1:1", "r1:2"] and r.seq == 3


def test_halt_moves_all_traffic_to_the_champion_and_keeps_the_verdict() -> None:
    r, _ = start("r1", "m", 7, 6, (0.1, 0.5), now=0.0)
    v = _verdict(RolloutDecision.HALT, QUIET, FIRED)
    halted, act = decide(r, v, now=10.0, step_min_s=0.0)
    assert halted.phase == HALTED and halted.seq == r.seq + 1
    assert act == Action(
        "halt", "r1:1", {6: 1.0}, "halted: errors: canary worse by 2%", v.to_dict()
    )
    # a halted rollout takes no further decision
    promote = _verdict(RolloutDecision.PROMOTE)
    assert decide(halted, promote, now=1e6, step_min_s=0.0) == (halted, None)


def test_rollback_records_why_and_the_verdict() -> None:
    r, _ = start("r1", "m", 7, 6, (0.1, 0.5), now=0.0)
    v = _verdict(RolloutDecision.ROLLBACK, FIRED)
    done, act = decide(r, v, now=10.0, step_min_s=0.0)
    assert done.phase == ROLLED_BACK
    assert act == Action(
        "rollback", "r1:1", {}, "rolled back: errors: canary worse by 2%", v.to_dict()
    )


def test_why_falls_back_to_the_check_then_the_decision() -> None:
    r, _ = start("r1", "m", 7, 6, (0.1,), now=0.0)
    bare = Reason("errors", "halt", 0.0, 0.0, True, "sequential")
    _, act = decide(r, _verdict(RolloutDecision.HALT, bare), now=1.0, step_min_s=0.0)
    assert act is not None and act.reason == "halted: errors: halt"
    _, act = decide(r, _verdict(RolloutDecision.HALT), now=1.0, step_min_s=0.0)
    assert act is not None and act.reason == "halted: halt"


def test_promote_waits_for_the_step_dwell_time() -> None:
    r, _ = start("r1", "m", 7, 6, (0.1, 0.5), now=100.0)
    promote = _verdict(RolloutDecision.PROMOTE)
    assert decide(r, promote, now=159.0, step_min_s=60.0) == (r, None)
    # exactly the dwell time is enough
    nr, act = decide(r, promote, now=160.0, step_min_s=60.0)
    assert (nr.step, nr.step_started_at, nr.phase) == (1, 160.0, RUNNING)
    assert act == Action(
        "traffic", "r1:1", {6: 0.5, 7: 0.5}, "canary at 50%: SLOs held at 10%", promote.to_dict()
    )
    # the dwell time counts from the new step's start, not the rollout's
    assert decide(nr, promote, now=219.0, step_min_s=60.0) == (nr, None)
    last, act = decide(nr, promote, now=220.0, step_min_s=60.0)
    assert last.phase == AWAITING_APPROVAL
    assert act == Action("promote", "r1:2", {7: 1.0}, "promoted: every SLO held", promote.to_dict())


def test_continue_changes_nothing() -> None:
    r, _ = start("r1", "m", 7, 6, (0.1, 0.5), now=0.0)
    assert decide(r, _verdict(RolloutDecision.CONTINUE), now=1e6, step_min_s=0.0) == (r, None)


def test_weights_at_the_current_or_a_given_step() -> None:
    r = Rollout("r1", "m", 7, 6, (0.1, 0.3), step=1)
    assert r.weights() == {6: 0.7, 7: 0.3}
    assert r.weights(0) == {6: 0.9, 7: 0.1}
