"""Deployments: the traffic split between a model's serving versions, kept with its history
and announced as ``deployment`` outbox events (what model servers follow)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.core import RegistryCore
from driftd.registry.errors import Conflict, InvalidRequest
from driftd.registry.names import Stage
from driftd.registry.rows import find_model, find_version
from driftd.registry.writer import Writer


def current_split(conn: sa.Connection, model_id: int) -> Any:
    """The weights of the split in force (stored JSON: version text → weight); None if unset."""
    d = t.deployments
    return conn.execute(
        sa.select(d.c.weights).where((d.c.model_id == model_id) & d.c.valid_to.is_(None))
    ).scalar()


def replace_split(
    w: Writer,
    model_id: int,
    model: str,
    weights: dict[str, float],
    reason: str,
    decision_id: str,
) -> None:
    """Replace the current split with ``weights`` and announce it (inside a write)."""
    d = t.deployments
    old = current_split(w.conn, model_id)
    w.conn.execute(
        d.update().where((d.c.model_id == model_id) & d.c.valid_to.is_(None)).values(valid_to=w.now)
    )
    w.conn.execute(
        d.insert().values(
            model_id=model_id,
            weights=weights,
            decision_id=decision_id,
            valid_from=w.now,
            actor=w.actor,
            reason=reason,
        )
    )
    w.audit("traffic.set", model, old, weights, reason)
    w.event("deployment", model, {"weights": weights, "reason": reason, "decision_id": decision_id})


def clean_weights(weights: Mapping[int, float]) -> dict[int, float]:
    """The positive weights by version; InvalidRequest unless each is in [0, 1] and they sum
    to 1."""
    clean = {int(v): float(w) for v, w in weights.items() if float(w) > 0}
    if not clean or any(not 0 <= w <= 1 for w in clean.values()):
        raise InvalidRequest(f"traffic weights must be in [0, 1], got {dict(weights)}")
    if abs(sum(clean.values()) - 1.0) > 1e-9:
        raise InvalidRequest(f"traffic weights must sum to 1, got {sum(clean.values())}")
    return clean


class Deployments(RegistryCore):
    """Set and read the traffic split."""

    def set_traffic(
        self,
        model: str,
        weights: Mapping[int, float],
        actor: str,
        reason: str,
        decision_id: str,
    ) -> dict[int, float]:
        """Split ``model``'s traffic between versions in canary or production; announce it as
        a ``deployment`` outbox event (what model servers follow).

        ``decision_id`` is the idempotency key: a controller that repeats a decision after a
        crash does not publish it twice.
        """
        clean = clean_weights(weights)
        split = {str(v): w for v, w in sorted(clean.items())}
        payload = {"model": model, "weights": split}

        def change(w: Writer) -> dict[str, Any]:
            model_id = find_model(w.conn, model, lock=True)
            serving = (Stage.CANARY.value, Stage.PRODUCTION.value)
            for version in clean:
                row = find_version(w.conn, model_id, model, version)
                if row.stage not in serving:
                    raise Conflict(
                        f"{model}/{version} is in stage {row.stage}; only canary and production "
                        "versions take traffic"
                    )
            replace_split(w, model_id, model, split, reason, decision_id)
            return {}

        self.write(actor, "traffic.set", payload, decision_id, change)
        return clean

    def traffic(self, model: str, at: float | None = None) -> dict[int, float]:
        """The traffic split of ``model`` now (or at time ``at``); empty when never set."""
        d = t.deployments
        with self.engine.connect() as conn:
            model_id = find_model(conn, model)
            q = sa.select(d.c.weights).where(d.c.model_id == model_id)
            if at is None:
                q = q.where(d.c.valid_to.is_(None))
            else:
                q = q.where((d.c.valid_from <= at) & (d.c.valid_to.is_(None) | (d.c.valid_to > at)))
            found = conn.execute(q.order_by(d.c.valid_from.desc()).limit(1)).scalar()
        return {} if found is None else {int(v): float(w) for v, w in found.items()}
