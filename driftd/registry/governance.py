"""Registry writes that govern what may serve: approval gates and approvals, and the traffic
split between versions (announced as ``deployment`` events)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.core import RegistryCore
from driftd.registry.errors import Conflict, Forbidden, InvalidRequest
from driftd.registry.names import (
    Stage,
    parse_stage,
)
from driftd.registry.roles import Approval, Gate, Role, parse_role, unmet
from driftd.registry.writer import Writer


class GateWrites(RegistryCore):
    """Gates, approvals and traffic."""

    def set_gates(
        self, gates: Mapping[Stage, Gate], actor: str, request_id: str | None = None
    ) -> None:
        """Replace the approval gates with ``gates`` (audited when they change)."""
        wanted = {
            s.value: {
                "approvals": g.approvals,
                "role": g.role.value,
                "require_evaluation": g.require_evaluation,
            }
            for s, g in gates.items()
        }

        def change(w: Writer) -> dict[str, Any]:
            old = self._gate_rows(w.conn)
            if old == wanted:
                return {"changed": False}
            w.conn.execute(t.gates.delete())
            for stage, g in wanted.items():
                w.conn.execute(t.gates.insert().values(stage=stage, **g))
            w.audit("gates.set", "gates", old, wanted)
            return {"changed": True}

        self.write(actor, "gates.set", wanted, request_id, change)

    @staticmethod
    def _gate_rows(conn: sa.Connection) -> dict[str, dict[str, Any]]:
        return {
            r.stage: {
                "approvals": r.approvals,
                "role": r.role,
                "require_evaluation": bool(r.require_evaluation),
            }
            for r in conn.execute(sa.select(t.gates).order_by(t.gates.c.stage))
        }

    def gates(self) -> dict[Stage, Gate]:
        """The gates in force."""
        with self.engine.connect() as conn:
            rows = self._gate_rows(conn)
        return {
            Stage(s): Gate(g["approvals"], Role(g["role"]), g["require_evaluation"])
            for s, g in rows.items()
        }

    def _unmet(self, conn: sa.Connection, model: str, version: int, stage: Stage) -> list[str]:
        gate = self._gate(conn, stage)
        if gate is None:
            return []
        model_id = self._model_id(conn, model)
        row = self._version_row(conn, model_id, model, version)
        approvals = [
            Approval(a.approver, Role(a.role))
            for a in conn.execute(
                sa.select(t.approvals).where(
                    (t.approvals.c.version_id == row.id) & (t.approvals.c.stage == stage.value)
                )
            )
        ]
        passed = None if row.evaluation is None else bool(row.evaluation.get("promote"))
        return unmet(gate, approvals, row.created_by, passed)

    @staticmethod
    def _gate(conn: sa.Connection, stage: Stage) -> Gate | None:
        g = conn.execute(sa.select(t.gates).where(t.gates.c.stage == stage.value)).first()
        if g is None:
            return None
        return Gate(int(g.approvals), Role(g.role), bool(g.require_evaluation))

    def request_approval(
        self,
        model: str,
        version: int,
        stage: Stage | str,
        actor: str,
        reason: str = "",
        request_id: str | None = None,
    ) -> None:
        """Announce that ``version`` waits for approvals to enter ``stage`` (outbox event)."""
        target = parse_stage(stage) if isinstance(stage, str) else stage
        payload = {"model": model, "version": version, "stage": target.value}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model)
            self._version_row(w.conn, model_id, model, version)
            missing = self._unmet(w.conn, model, version, target)
            w.audit("approval.request", f"{model}/{version}", None, payload, reason)
            w.event(
                "approval_requested",
                model,
                {"version": version, "stage": target.value, "missing": missing},
            )
            return {}

        self.write(actor, "approval.request", payload, request_id, change)

    def approve(
        self,
        model: str,
        version: int,
        stage: Stage | str,
        actor: str,
        role: Role | str,
        comment: str = "",
        request_id: str | None = None,
    ) -> None:
        """Record ``actor``'s approval of ``version`` for ``stage``.

        Refused for a viewer, for the version's author, and for a second approval by one actor.
        """
        target = parse_stage(stage) if isinstance(stage, str) else stage
        r = parse_role(role) if isinstance(role, str) else role
        if not r.includes(Role.APPROVER):
            raise Forbidden(f"role {r.value} may not approve; approver or admin is required")
        payload = {"model": model, "version": version, "stage": target.value, "role": r.value}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            row = self._version_row(w.conn, model_id, model, version)
            authors = {row.created_by}
            if row.run_id is not None:
                authors.add(
                    w.conn.execute(
                        sa.select(t.runs.c.created_by).where(t.runs.c.id == row.run_id)
                    ).scalar_one()
                )
            if actor in authors:
                raise Forbidden(f"{actor} created {model}/{version} and cannot approve it")
            dup = w.conn.execute(
                sa.select(t.approvals.c.id).where(
                    (t.approvals.c.version_id == row.id)
                    & (t.approvals.c.stage == target.value)
                    & (t.approvals.c.approver == actor)
                )
            ).first()
            if dup is not None:
                raise Conflict(f"{actor} already approved {model}/{version} for {target.value}")
            w.conn.execute(
                t.approvals.insert().values(
                    version_id=row.id,
                    stage=target.value,
                    approver=actor,
                    role=r.value,
                    comment=comment,
                    created_at=w.now,
                )
            )
            w.audit("approval.grant", f"{model}/{version}", None, payload, comment)
            w.event("approval_granted", model, {"version": version, "stage": target.value})
            return {}

        self.write(actor, "approval.grant", payload, request_id, change)

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
        clean = {int(v): float(w) for v, w in weights.items() if float(w) > 0}
        split = {str(v): w for v, w in sorted(clean.items())}
        if not clean or any(not 0 <= w <= 1 for w in clean.values()):
            raise InvalidRequest(f"traffic weights must be in [0, 1], got {dict(weights)}")
        if abs(sum(clean.values()) - 1.0) > 1e-9:
            raise InvalidRequest(f"traffic weights must sum to 1, got {sum(clean.values())}")
        payload = {"model": model, "weights": split}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            serving = (Stage.CANARY.value, Stage.PRODUCTION.value)
            for version in clean:
                row = self._version_row(w.conn, model_id, model, version)
                if row.stage not in serving:
                    raise Conflict(
                        f"{model}/{version} is in stage {row.stage}; only canary and production "
                        "versions take traffic"
                    )
            self._set_traffic(w, model_id, model, split, reason, decision_id)
            return {}

        self.write(actor, "traffic.set", payload, decision_id, change)
        return clean

    @staticmethod
    def _set_traffic(
        w: Writer,
        model_id: int,
        model: str,
        weights: dict[str, float],
        reason: str,
        decision_id: str,
    ) -> None:
        """Replace the current split with ``weights`` and announce it (inside a write)."""
        d = t.deployments
        old = w.conn.execute(
            sa.select(d.c.weights).where((d.c.model_id == model_id) & d.c.valid_to.is_(None))
        ).scalar()
        w.conn.execute(
            d.update()
            .where((d.c.model_id == model_id) & d.c.valid_to.is_(None))
            .values(valid_to=w.now)
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
        w.event(
            "deployment", model, {"weights": weights, "reason": reason, "decision_id": decision_id}
        )
