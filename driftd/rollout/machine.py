"""The rollout state machine: from a verdict to the next state and the action to take. Pure.

A rollout moves a challenger through the configured traffic steps. A step that is not the last
moves on once its dwell time is spent and the rule says it is ``ready`` (no rollback, the step's
least canary requests served): the early, small steps limit the blast radius while the rollback
tests run on every batch. Only the last step's move, to champion, needs the rule's PROMOTE
(non-inferiority shown for every SLO) and the dwell time; ROLLBACK ends it at once; HALT (no
data, drift between the arms, no conclusion in time) stops it with all traffic on the champion,
for a person to decide.
Every action carries a decision id, ``<rollout id>:<seq>``, that the registry uses as its
idempotency key: replaying a decision after a crash changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from driftd.rollout.evidence import RolloutDecision, Verdict

RUNNING, AWAITING_APPROVAL = "running", "awaiting_approval"
PROMOTED, ROLLED_BACK, HALTED = "promoted", "rolled_back", "halted"
ACTIVE = (RUNNING, AWAITING_APPROVAL)


@dataclass(frozen=True)
class Action:
    """What the controller must do: ``kind`` is start, traffic, promote, rollback or halt."""

    kind: str
    decision_id: str
    weights: dict[int, float] = field(default_factory=dict)
    reason: str = ""
    verdict: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, stored as the rollout's pending action."""
        return {
            "kind": self.kind,
            "decision_id": self.decision_id,
            "weights": {str(v): w for v, w in self.weights.items()},
            "reason": self.reason,
            "verdict": self.verdict,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Action:
        """The inverse of ``to_dict``."""
        weights = {int(v): float(w) for v, w in d.get("weights", {}).items()}
        return cls(d["kind"], d["decision_id"], weights, d.get("reason", ""), d.get("verdict"))


@dataclass(frozen=True)
class Rollout:
    """One canary of one model, as recorded (and resumed after a restart)."""

    id: str
    model: str
    canary: int
    champion: int
    steps: tuple[float, ...]
    step: int = 0
    phase: str = RUNNING
    started_at: float = 0.0
    step_started_at: float = 0.0
    seq: int = 0

    def weights(self, step: int | None = None) -> dict[int, float]:
        """Traffic at a step: the canary's share, the rest to the champion."""
        w = self.steps[self.step if step is None else step]
        return {self.champion: round(1.0 - w, 12), self.canary: w}

    def then(self, kind: str, **kw: Any) -> tuple[Rollout, Action]:
        """The next decision: this rollout with its sequence advanced, and the action."""
        action = Action(kind, f"{self.id}:{self.seq}", **kw)
        return replace(self, seq=self.seq + 1), action


def start(rollout_id: str, model: str, canary: int, champion: int, steps: tuple[float, ...],
          now: float) -> tuple[Rollout, Action]:  # fmt: skip
    """A new rollout and its first action: canary stage and the first traffic step."""
    r = Rollout(rollout_id, model, canary, champion, steps, 0, RUNNING, now, now, 0)
    return r.then("start", weights=r.weights(0), reason=f"canary at {steps[0]:.0%}")


def _why(verdict: Verdict) -> str:
    fired = [f"{x.slo}: {x.detail or x.check}" for x in verdict.reasons if x.fired]
    return "; ".join(fired) or verdict.decision.value


def decide(
    r: Rollout, verdict: Verdict, now: float, step_min_s: float
) -> tuple[Rollout, Action | None]:
    """The state after ``verdict`` and the action it needs (None: keep going)."""
    if r.phase not in ACTIVE:
        return r, None
    v = verdict.to_dict()
    if verdict.decision is RolloutDecision.ROLLBACK:
        nr, act = r.then("rollback", reason=f"rolled back: {_why(verdict)}", verdict=v)
        return replace(nr, phase=ROLLED_BACK), act
    if verdict.decision is RolloutDecision.HALT:
        nr, act = r.then(
            "halt", weights={r.champion: 1.0}, reason=f"halted: {_why(verdict)}", verdict=v
        )
        return replace(nr, phase=HALTED), act
    if now - r.step_started_at < step_min_s:
        return r, None
    last = r.step + 1 >= len(r.steps)
    if verdict.decision is not RolloutDecision.PROMOTE and (last or not verdict.ready):
        return r, None
    if not last:
        nxt = r.step + 1
        nr, act = r.then(
            "traffic",
            weights=r.weights(nxt),
            reason=f"canary at {r.steps[nxt]:.0%}: SLOs held at {r.steps[r.step]:.0%}",
            verdict=v,
        )
        return replace(nr, step=nxt, step_started_at=now), act
    nr, act = r.then(
        "promote", weights={r.canary: 1.0}, reason="promoted: every SLO held", verdict=v
    )
    return replace(nr, phase=AWAITING_APPROVAL), act


def promoted(r: Rollout) -> Rollout:
    """The rollout after its promotion went through (gates satisfied)."""
    return replace(r, phase=PROMOTED)
