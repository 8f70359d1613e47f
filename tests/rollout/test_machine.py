"""The rollout state machine's plain data: a pending action survives its trip through the store."""

from __future__ import annotations

import json

from driftd.rollout.machine import Action


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
