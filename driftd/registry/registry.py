"""``Registry``: the Python API of driftd's model registry, used by the daemon, retraining,
rollout, the CLI and the HTTP API.

Every write is one transaction (see ``writer.transaction``) that changes the tables, appends
the audit records that describe the change, and writes the outbox events that announce it.
Stage-bound aliases (``champion`` follows production, ``canary`` follows canary) move only
with their stage, so approval gates cannot be bypassed by setting an alias.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.errors import Conflict, Forbidden, GateNotSatisfied, InvalidRequest, NotFound
from driftd.registry.names import (
    STAGE_ALIAS,
    Stage,
    allowed_from,
    check_alias,
    check_model_name,
    is_allowed,
    parse_stage,
)
from driftd.registry.queries import Reads
from driftd.registry.records import VersionInfo
from driftd.registry.roles import Approval, Gate, Role, parse_role, unmet
from driftd.registry.writer import Writer, transaction

_STAGE_ALIASES = frozenset(STAGE_ALIAS.values())
RUN_STATUSES = ("running", "finished", "failed", "killed")


class Registry(Reads):
    """Models, versions, runs, datasets, stages, aliases, approvals and the audit chain."""

    def __init__(
        self,
        engine: sa.Engine,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(engine)
        self.secret = secret
        self.clock = clock

    @classmethod
    def open(cls, url: str, secret: str | bytes | None = None) -> Registry:
        """Connect to ``url``; refuse a database whose schema is not up to date."""
        from driftd.db import make_engine, require_current

        engine = make_engine(url)
        require_current(engine)
        key = secret.encode() if isinstance(secret, str) else secret
        return cls(engine, key or None)

    def write(
        self,
        actor: str,
        action: str,
        payload: Mapping[str, Any],
        request_id: str | None,
        change: Callable[[Writer], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run ``change`` in one audited, idempotent write transaction (see ``writer``)."""
        answer, _ = transaction(
            self.engine, self.secret, self.clock, actor, action, payload, request_id, change
        )
        return answer

    # -- gates ---------------------------------------------------------------------------

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

    # -- datasets and runs -------------------------------------------------------------

    def register_dataset(
        self,
        sha256: str,
        row_count: int,
        uri: str,
        actor: str,
        window: tuple[float | None, float | None] = (None, None),
        source_offsets: Mapping[str, Any] | None = None,
        schema: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> int:
        """Record a dataset snapshot; the same content at the same URI is recorded once."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InvalidRequest(f"dataset sha256 must be 64 lowercase hex digits, got {sha256!r}")
        if row_count < 0:
            raise InvalidRequest(f"dataset row_count must be ≥ 0, got {row_count}")
        payload = {
            "sha256": sha256,
            "row_count": row_count,
            "uri": uri,
            "window_start": window[0],
            "window_end": window[1],
            "source_offsets": dict(source_offsets or {}),
            "schema": dict(schema or {}),
        }

        def change(w: Writer) -> dict[str, Any]:
            found = w.conn.execute(
                sa.select(t.datasets.c.id).where(
                    (t.datasets.c.sha256 == sha256) & (t.datasets.c.uri == uri)
                )
            ).scalar()
            if found is not None:
                return {"id": int(found)}
            new_id = w.conn.execute(
                t.datasets.insert().values(created_at=w.now, created_by=w.actor, **payload)
            ).inserted_primary_key[0]  # type: ignore[index]
            w.audit("dataset.register", f"dataset:{new_id}", None, payload)
            return {"id": int(new_id)}

        return int(self.write(actor, "dataset.register", payload, request_id, change)["id"])

    def start_run(
        self,
        model: str,
        actor: str,
        params: Mapping[str, Any] | None = None,
        seeds: Mapping[str, Any] | None = None,
        code: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        dataset_id: int | None = None,
        trigger: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> str:
        """Open a run for ``model`` (created when new); returns the run id."""
        check_model_name(model)
        payload = {
            "model": model,
            "params": dict(params or {}),
            "seeds": dict(seeds or {}),
            "code": dict(code or {}),
            "environment": dict(environment or {}),
            "tags": dict(tags or {}),
            "dataset_id": dataset_id,
            "trigger": dict(trigger) if trigger is not None else None,
        }

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._ensure_model(w, model)
            if dataset_id is not None and not self._exists(w.conn, t.datasets, dataset_id):
                raise NotFound(f"dataset {dataset_id} does not exist")
            run_id = uuid.uuid4().hex
            fields = {k: v for k, v in payload.items() if k != "model"}
            w.conn.execute(
                t.runs.insert().values(
                    id=run_id,
                    model_id=model_id,
                    status="running",
                    metrics={},
                    started_at=w.now,
                    created_by=w.actor,
                    **fields,
                )
            )
            w.audit("run.start", f"run:{run_id}", None, payload)
            return {"id": run_id}

        return str(self.write(actor, "run.start", payload, request_id, change)["id"])

    def finish_run(
        self,
        run_id: str,
        actor: str,
        status: str = "finished",
        metrics: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Close a run with its final status and metrics; ``params`` replace the recorded ones
        (tuning settles them only at the end), ``tags`` are merged into them."""
        if status not in RUN_STATUSES[1:]:
            raise InvalidRequest(
                f"run status {status!r} cannot end a run; expected one of "
                f"{', '.join(RUN_STATUSES[1:])}"
            )
        new_metrics = dict(metrics or {})
        new_tags = dict(tags or {})
        payload = {
            "run_id": run_id,
            "status": status,
            "metrics": new_metrics,
            "params": dict(params) if params is not None else None,
            "tags": new_tags,
        }

        def change(w: Writer) -> dict[str, Any]:
            row = w.conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).first()
            if row is None:
                raise NotFound(f"run {run_id!r} does not exist")
            if row.status != "running":
                raise Conflict(f"run {run_id} already ended with status {row.status}")
            values: dict[str, Any] = {
                "status": status,
                "metrics": {**row.metrics, **new_metrics},
                "tags": {**row.tags, **new_tags},
                "ended_at": w.now,
            }
            if params is not None:
                values["params"] = dict(params)
            w.conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))
            w.audit("run.finish", f"run:{run_id}", {"status": row.status}, payload)
            return {}

        self.write(actor, "run.finish", payload, request_id, change)

    # -- versions --------------------------------------------------------------------------

    def register_version(
        self,
        model: str,
        artifact_uri: str,
        artifact_sha256: str,
        artifact_size: int,
        actor: str,
        framework: str = "torch",
        signature: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        parent_version: int | None = None,
        evaluation: Mapping[str, Any] | None = None,
        description: str = "",
        stage: Stage | str = Stage.DEVELOPMENT,
        aliases: Sequence[str] = (),
        reason: str = "",
        request_id: str | None = None,
    ) -> VersionInfo:
        """Register a new version (the model is created when new); optionally move it to
        ``stage`` (gates apply) and point ``aliases`` at it, all in one transaction."""
        check_model_name(model)
        target = parse_stage(stage) if isinstance(stage, str) else stage
        for a in aliases:
            self._check_free_alias(a)
        if len(artifact_sha256) != 64:
            raise InvalidRequest(
                f"artifact_sha256 must be 64 hex digits, got {len(artifact_sha256)} characters"
            )
        if artifact_size < 0:
            raise InvalidRequest(f"artifact_size must be ≥ 0, got {artifact_size}")
        payload = {
            "model": model,
            "artifact_uri": artifact_uri,
            "artifact_sha256": artifact_sha256,
            "artifact_size": artifact_size,
            "framework": framework,
            "signature": dict(signature or {}),
            "run_id": run_id,
            "parent_version": parent_version,
            "evaluation": dict(evaluation) if evaluation is not None else None,
            "description": description,
            "stage": target.value,
            "aliases": list(aliases),
        }

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._ensure_model(w, model, lock=True)
            if run_id is not None and not self._exists(w.conn, t.runs, run_id):
                raise NotFound(f"run {run_id!r} does not exist")
            if parent_version is not None:
                self._version_row(w.conn, model_id, model, parent_version)
            number = int(
                w.conn.execute(
                    sa.select(t.models.c.next_version).where(t.models.c.id == model_id)
                ).scalar_one()
            )
            w.conn.execute(
                t.models.update().where(t.models.c.id == model_id).values(next_version=number + 1)
            )
            fields = {k: v for k, v in payload.items() if k not in ("model", "stage", "aliases")}
            vid = w.conn.execute(
                t.versions.insert().values(
                    model_id=model_id,
                    version=number,
                    stage=Stage.DEVELOPMENT.value,
                    created_at=w.now,
                    created_by=w.actor,
                    row_version=1,
                    **fields,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            w.conn.execute(
                t.stage_history.insert().values(
                    version_id=vid,
                    stage=Stage.DEVELOPMENT.value,
                    valid_from=w.now,
                    actor=w.actor,
                    reason=reason,
                )
            )
            subject = f"{model}/{number}"
            w.audit("version.register", subject, None, payload, reason)
            w.event("version_created", model, {"version": number, "artifact_uri": artifact_uri})
            if target is not Stage.DEVELOPMENT:
                self._transition(w, model_id, model, number, target, reason)
            for a in aliases:
                self._move_alias(w, model_id, model, a, number, reason)
            return {"model": model, "version": number}

        answer = self.write(actor, "version.register", payload, request_id, change)
        return self.get_version(answer["model"], int(answer["version"]))

    def promote(
        self,
        model: str,
        version: int,
        stage: Stage | str,
        actor: str,
        reason: str = "",
        expected_stage: Stage | str | None = None,
        request_id: str | None = None,
    ) -> VersionInfo:
        """Move a version to ``stage`` if the transition is legal and its gate is satisfied.

        Entering production archives the previous production version and moves ``champion``;
        entering canary moves ``canary``. ``expected_stage`` guards against a stale view: the
        request fails with Conflict when the version has moved since the caller looked.
        """
        target = parse_stage(stage) if isinstance(stage, str) else stage
        expected = (
            parse_stage(expected_stage) if isinstance(expected_stage, str) else expected_stage
        )
        payload = {
            "model": model,
            "version": version,
            "stage": target.value,
            "expected_stage": expected.value if expected else None,
            "reason": reason,
        }

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            row = self._version_row(w.conn, model_id, model, version)
            if expected is not None and row.stage != expected.value:
                raise Conflict(
                    f"{model}/{version} is in stage {row.stage}, not {expected.value} as expected; "
                    "reload and retry"
                )
            self._transition(w, model_id, model, version, target, reason)
            return {"model": model, "version": version}

        self.write(actor, "version.promote", payload, request_id, change)
        return self.get_version(model, version)

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

    def set_alias(
        self,
        model: str,
        alias: str,
        version: int,
        actor: str,
        reason: str = "",
        request_id: str | None = None,
    ) -> None:
        """Point a free alias (e.g. ``challenger``) at ``version``."""
        self._check_free_alias(alias)
        payload = {"model": model, "alias": alias, "version": version}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            self._version_row(w.conn, model_id, model, version)
            self._move_alias(w, model_id, model, alias, version, reason)
            return {}

        self.write(actor, "alias.set", payload, request_id, change)

    def delete_alias(
        self, model: str, alias: str, actor: str, reason: str = "", request_id: str | None = None
    ) -> None:
        """Remove a free alias."""
        self._check_free_alias(alias)
        payload = {"model": model, "alias": alias}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            if not self._drop_alias(w, model_id, model, alias, reason):
                raise NotFound(f"{model} has no alias {alias!r}")
            return {}

        self.write(actor, "alias.delete", payload, request_id, change)

    def rollback(
        self,
        model: str,
        actor: str,
        reason: str,
        version: int | None = None,
        evidence: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> VersionInfo:
        """Take a canary or champion out of service; returns the version now serving.

        Without ``version``: the canary when there is one, else the champion. A champion goes
        back to the previous champion (which returns to production). No gate applies: a
        rollback must never wait for approvals.
        """
        if not reason:
            raise InvalidRequest("a rollback needs a reason")
        payload = {"model": model, "version": version, "reason": reason}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            current = self._alias_map(w.conn, model_id)
            target = version
            if target is None:
                target = current.get("canary", current.get("champion"))
                if target is None:
                    raise Conflict(f"{model} has neither a canary nor a champion to roll back")
            row = self._version_row(w.conn, model_id, model, target)
            serving: int
            if row.stage == Stage.CANARY.value:
                self._set_stage(w, model_id, model, target, Stage.ROLLED_BACK, reason)
                serving = current.get("champion", target)
            elif row.stage == Stage.PRODUCTION.value:
                previous = self._previous_holder(w.conn, model_id, "champion", target)
                if previous is None:
                    raise Conflict(
                        f"{model}/{target} has no earlier champion that was not rolled back; "
                        "there is nothing to roll back to"
                    )
                self._set_stage(w, model_id, model, previous, Stage.PRODUCTION, reason)
                self._set_stage(w, model_id, model, target, Stage.ROLLED_BACK, reason)
                serving = previous
            else:
                raise Conflict(
                    f"{model}/{target} is in stage {row.stage}; only a canary or production "
                    "version can be rolled back"
                )
            d = t.deployments
            split = w.conn.execute(
                sa.select(d.c.weights).where((d.c.model_id == model_id) & d.c.valid_to.is_(None))
            ).scalar()
            if split and str(target) in split:
                # The rolled-back version takes no more traffic: all of it goes to the champion.
                self._set_traffic(
                    w, model_id, model, {str(serving): 1.0}, reason, f"rollback-{w.request_id}"
                )
            w.event(
                "rollback",
                model,
                {
                    "version": target,
                    "serving": serving,
                    "reason": reason,
                    "evidence": dict(evidence or {}),
                },
            )
            return {"model": model, "version": serving}

        answer = self.write(actor, "version.rollback", payload, request_id, change)
        return self.get_version(model, int(answer["version"]))

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

    def record_evaluation(
        self,
        model: str,
        version: int,
        evaluation: Mapping[str, Any],
        actor: str,
        request_id: str | None = None,
    ) -> None:
        """Store a champion/challenger evaluation with the version (``promote`` key: bool)."""
        if not isinstance(evaluation.get("promote"), bool):
            raise InvalidRequest("an evaluation needs a boolean 'promote' decision")
        payload = {"model": model, "version": version, "evaluation": dict(evaluation)}

        def change(w: Writer) -> dict[str, Any]:
            model_id = self._model_id(w.conn, model, lock=True)
            row = self._version_row(w.conn, model_id, model, version)
            w.conn.execute(
                t.versions.update()
                .where(t.versions.c.id == row.id)
                .values(evaluation=dict(evaluation), row_version=row.row_version + 1)
            )
            w.audit("version.evaluate", f"{model}/{version}", row.evaluation, dict(evaluation))
            return {}

        self.write(actor, "version.evaluate", payload, request_id, change)

    # -- helpers inside a transaction -------------------------------------------------------

    @staticmethod
    def _check_free_alias(alias: str) -> None:
        check_alias(alias)
        if alias in _STAGE_ALIASES:
            stage = next(s for s, a in STAGE_ALIAS.items() if a == alias)
            raise InvalidRequest(
                f"alias {alias!r} follows the {stage.value} stage; promote the version to "
                f"{stage.value} instead (its approval gate applies)"
            )

    @staticmethod
    def _exists(conn: sa.Connection, table: sa.Table, key: Any) -> bool:
        pk = next(iter(table.primary_key.columns))
        return conn.execute(sa.select(pk).where(pk == key)).first() is not None

    def _ensure_model(self, w: Writer, model: str, lock: bool = False) -> int:
        found = w.conn.execute(
            self._lock(sa.select(t.models.c.id).where(t.models.c.name == model), lock)
        ).scalar()
        if found is not None:
            return int(found)
        new_id = w.conn.execute(
            t.models.insert().values(
                name=model, description="", created_at=w.now, created_by=w.actor, next_version=1
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        w.audit("model.create", model, None, {"name": model})
        return int(new_id)

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

    def _transition(
        self,
        w: Writer,
        model_id: int,
        model: str,
        version: int,
        target: Stage,
        reason: str,
    ) -> None:
        row = self._version_row(w.conn, model_id, model, version)
        src = Stage(row.stage)
        if not is_allowed(src, target):
            raise Conflict(
                f"{model}/{version} cannot move from {src.value} to {target.value}; from "
                f"{src.value} it may move to {', '.join(allowed_from(src))}"
            )
        missing = self._unmet(w.conn, model, version, target)
        if missing:
            raise GateNotSatisfied(
                f"moving {model}/{version} to {target.value} needs " + "; ".join(missing)
            )
        if target is Stage.CANARY:
            holder = self._alias_map(w.conn, model_id).get("canary")
            if holder is not None and holder != version:
                raise Conflict(
                    f"{model}/{holder} is already in canary; promote or roll it back first"
                )
        replaced = self._versions_in(w.conn, model_id, Stage.PRODUCTION)
        # The new stage first: champion then moves straight from the old version to this one.
        self._set_stage(w, model_id, model, version, target, reason)
        if target is Stage.PRODUCTION:
            for other in replaced:
                if other != version:
                    self._set_stage(w, model_id, model, other, Stage.ARCHIVED, "replaced")
            aliases = self._alias_map(w.conn, model_id)
            if aliases.get("challenger") == version:
                self._drop_alias(w, model_id, model, "challenger", "promoted to production")

    def _set_stage(
        self, w: Writer, model_id: int, model: str, version: int, stage: Stage, reason: str
    ) -> None:
        """Change the stage, close and open its history interval, move stage-bound aliases."""
        row = self._version_row(w.conn, model_id, model, version)
        w.conn.execute(
            t.versions.update()
            .where(t.versions.c.id == row.id)
            .values(stage=stage.value, row_version=row.row_version + 1)
        )
        w.conn.execute(
            t.stage_history.update()
            .where((t.stage_history.c.version_id == row.id) & t.stage_history.c.valid_to.is_(None))
            .values(valid_to=w.now)
        )
        w.conn.execute(
            t.stage_history.insert().values(
                version_id=row.id, stage=stage.value, valid_from=w.now, actor=w.actor, reason=reason
            )
        )
        subject = f"{model}/{version}"
        w.audit("version.stage", subject, {"stage": row.stage}, {"stage": stage.value}, reason)
        w.event(
            "stage_changed",
            model,
            {"version": version, "from": row.stage, "to": stage.value, "reason": reason},
        )
        old_alias = STAGE_ALIAS.get(Stage(row.stage))
        if old_alias is not None and self._alias_map(w.conn, model_id).get(old_alias) == version:
            self._drop_alias(w, model_id, model, old_alias, reason)
        new_alias = STAGE_ALIAS.get(stage)
        if new_alias is not None:
            self._move_alias(w, model_id, model, new_alias, version, reason)

    def _move_alias(
        self, w: Writer, model_id: int, model: str, alias: str, version: int, reason: str
    ) -> None:
        old = self._alias_map(w.conn, model_id).get(alias)
        if old == version:
            return
        self._close_alias(w, model_id, alias)
        if old is None:
            w.conn.execute(
                t.aliases.insert().values(
                    model_id=model_id, alias=alias, version=version, updated_at=w.now
                )
            )
        else:
            w.conn.execute(
                t.aliases.update()
                .where((t.aliases.c.model_id == model_id) & (t.aliases.c.alias == alias))
                .values(version=version, updated_at=w.now)
            )
        w.conn.execute(
            t.alias_history.insert().values(
                model_id=model_id,
                alias=alias,
                version=version,
                valid_from=w.now,
                actor=w.actor,
                reason=reason,
            )
        )
        w.audit("alias.move", f"{model}@{alias}", {"version": old}, {"version": version}, reason)
        w.event("alias_moved", model, {"alias": alias, "from": old, "to": version})

    def _drop_alias(self, w: Writer, model_id: int, model: str, alias: str, reason: str) -> bool:
        old = self._alias_map(w.conn, model_id).get(alias)
        if old is None:
            return False
        self._close_alias(w, model_id, alias)
        w.conn.execute(
            t.aliases.delete().where(
                (t.aliases.c.model_id == model_id) & (t.aliases.c.alias == alias)
            )
        )
        w.audit("alias.delete", f"{model}@{alias}", {"version": old}, {"version": None}, reason)
        w.event("alias_moved", model, {"alias": alias, "from": old, "to": None})
        return True

    @staticmethod
    def _close_alias(w: Writer, model_id: int, alias: str) -> None:
        w.conn.execute(
            t.alias_history.update()
            .where(
                (t.alias_history.c.model_id == model_id)
                & (t.alias_history.c.alias == alias)
                & t.alias_history.c.valid_to.is_(None)
            )
            .values(valid_to=w.now)
        )
