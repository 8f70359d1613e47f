"""The rollout's registry side: which challenger waits for a canary, and carrying out actions.

Every registry call carries the action's decision id as its idempotency key, so carrying out
the same action twice (a crash after acting, before the store cleared it) changes nothing.
"""

from __future__ import annotations

import logging

from driftd.registry import GateNotSatisfied, NotFound, Registry
from driftd.rollout.machine import Action, Rollout, promoted

log = logging.getLogger("driftd.rollout")
ACTOR = "driftd-rollout"


class RegistryActions:
    """Reads the challenger and champion, and writes traffic and stages, for the controller."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def waiting_challenger(self, model: str) -> tuple[int, int] | None:
        """(challenger, champion) when a challenger other than the champion waits in staging."""
        try:
            challenger = self.registry.resolve(f"{model}@challenger")
            champion = self.registry.resolve(f"{model}@champion")
        except NotFound:
            return None
        if challenger.stage != "staging" or challenger.version == champion.version:
            return None
        return int(challenger.version), int(champion.version)

    def champion(self, model: str) -> int | None:
        """The champion's version (None: none yet)."""
        try:
            return int(self.registry.resolve(f"{model}@champion").version)
        except NotFound:
            return None

    def apply(self, r: Rollout, action: Action) -> Rollout | None:
        """Carry out ``action``: the rollout after it, or None while its promotion waits for an
        approval gate (the action then stays pending and is tried again)."""
        reg, did, model = self.registry, action.decision_id, r.model
        if action.kind == "start":
            reg.promote(model, r.canary, "canary", ACTOR, action.reason, request_id=f"{did}:stage")
            reg.set_traffic(model, action.weights, ACTOR, action.reason, did)
        elif action.kind in ("traffic", "halt"):
            reg.set_traffic(model, action.weights, ACTOR, action.reason, did)
        elif action.kind == "rollback":
            reg.rollback(model, ACTOR, action.reason, r.canary, action.verdict, request_id=did)
        elif action.kind == "promote":
            try:
                reg.promote(model, r.canary, "production", ACTOR, action.reason, request_id=did)
            except GateNotSatisfied as exc:
                log.debug("promotion waits for approval", extra={"model": model, "why": str(exc)})
                return None
            reg.set_traffic(model, action.weights, ACTOR, action.reason, f"{did}:traffic")
            return promoted(r)
        return r
