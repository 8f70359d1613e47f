"""Governance: the approval gates in force, requests for approval, and approvals — what a
version needs before it may enter a stage (the rules themselves are in ``roles``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.core import RegistryCore
from driftd.registry.errors import Conflict, Forbidden
from driftd.registry.names import Stage, parse_stage
from driftd.registry.records import ApprovalInfo
from driftd.registry.roles import Approval, Gate, Role, parse_role, unmet
from driftd.registry.rows import find_model, find_version
from driftd.registry.writer import Writer


def _gate_rows(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    """The stored gates by stage, as plain data (what ``set_gates`` compares and audits)."""
    return {
        r.stage: {
            "approvals": r.approvals,
            "role": r.role,
            "require_evaluation": bool(r.require_evaluation),
        }
        for r in conn.execute(sa.select(t.gates).order_by(t.gates.c.stage))
    }


def _gate(conn: sa.Connection, stage: Stage) -> Gate | None:
    g = conn.execute(sa.select(t.gates).where(t.gates.c.stage == stage.value)).first()
    if g is None:
        return None
    return Gate(int(g.approvals), Role(g.role), bool(g.require_evaluation))


def unmet_for(conn: sa.Connection, row: sa.Row[Any], stage: Stage) -> list[str]:
    """What the version ``row`` still lacks to enter ``stage`` under its gate (empty: nothing)."""
    gate = _gate(conn, stage)
    if gate is None:
        return []
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


def _authors(conn: sa.Connection, row: sa.Row[Any]) -> set[str]:
    """Who made the version: its registrant and the creator of its run (neither may approve)."""
    authors = {row.created_by}
    if row.run_id is not None:
        authors.add(
            conn.execute(
                sa.select(t.runs.c.created_by).where(t.runs.c.id == row.run_id)
            ).scalar_one()
        )
    return authors


def _approved_before(conn: sa.Connection, version_id: int, stage: Stage, actor: str) -> bool:
    found = conn.execute(
        sa.select(t.approvals.c.id).where(
            (t.approvals.c.version_id == version_id)
            & (t.approvals.c.stage == stage.value)
            & (t.approvals.c.approver == actor)
        )
    ).first()
    return found is not None


class Governance(RegistryCore):
    """Gates, approval requests and approvals."""

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
            old = _gate_rows(w.conn)
            if old == wanted:
                return {"changed": False}
            w.conn.execute(t.gates.delete())
            for stage, g in wanted.items():
                w.conn.execute(t.gates.insert().values(stage=stage, **g))
            w.audit("gates.set", "gates", old, wanted)
            return {"changed": True}

        self.write(actor, "gates.set", wanted, request_id, change)

    def gates(self) -> dict[Stage, Gate]:
        """The gates in force."""
        with self.engine.connect() as conn:
            rows = _gate_rows(conn)
        return {
            Stage(s): Gate(g["approvals"], Role(g["role"]), g["require_evaluation"])
            for s, g in rows.items()
        }

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
            row = find_version(w.conn, find_model(w.conn, model), model, version)
            missing = unmet_for(w.conn, row, target)
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
            model_id = find_model(w.conn, model, lock=True)
            row = find_version(w.conn, model_id, model, version)
            if actor in _authors(w.conn, row):
                raise Forbidden(f"{actor} created {model}/{version} and cannot approve it")
            if _approved_before(w.conn, row.id, target, actor):
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

    def approvals(self, model: str, version: int) -> list[ApprovalInfo]:
        """The approvals recorded for one version."""
        with self.engine.connect() as conn:
            model_id = find_model(conn, model)
            row = find_version(conn, model_id, model, version)
            rows = conn.execute(
                sa.select(t.approvals)
                .where(t.approvals.c.version_id == row.id)
                .order_by(t.approvals.c.created_at, t.approvals.c.id)
            )
            return [
                ApprovalInfo(version, a.stage, a.approver, a.role, a.comment, a.created_at)
                for a in rows
            ]
