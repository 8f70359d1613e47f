"""The rollouts table: each canary's state, the evidence counts it started from, the action
decided but not yet confirmed (so a restart finishes it instead of losing it), and the manual
controls an operator set (``paused``, the last manual command in ``control``).

A save names the sequence number it read (``expect_seq``): a manual command bumps the sequence
in its own transaction, so a controller that decided on a stale row writes nothing and acts on
nothing (``driftd.rollout.manual``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from driftd.db import metadata, write_transaction
from driftd.rollout.machine import ACTIVE, Action, Rollout

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("model", sa.String(255), nullable=False, index=True),
    sa.Column("canary", sa.Integer, nullable=False),
    sa.Column("champion", sa.Integer, nullable=False),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("phase", sa.String(32), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("step_started_at", sa.Float, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("baseline", sa.JSON, nullable=False),  # per-version counts when it started
    sa.Column("tau_ms", sa.Float),  # the latency threshold fixed at the start
    sa.Column("pending", sa.JSON),  # an action decided, not yet confirmed done
    sa.Column("verdict", sa.JSON),  # the last verdict, with its reasons
    sa.Column("updated_at", sa.Float, nullable=False),
    # An operator's pause: no automatic step or verdict action until resumed (evidence accrues).
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("control", sa.JSON),  # the last manual command: kind, actor, reason, at
)


def _row(r: Rollout) -> dict[str, Any]:
    d = asdict(r)
    d["steps"] = list(r.steps)
    return d


def to_rollout(row: Any) -> Rollout:
    """A ``Rollout`` from a table row."""
    return Rollout(
        row.id, row.model, row.canary, row.champion, tuple(row.steps), row.step, row.phase,
        row.started_at, row.step_started_at, row.seq,
    )  # fmt: skip


class RolloutStore:
    """Reads and writes rollouts; each save is one transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def active(self, model: str) -> Any | None:
        """The model's running (or awaiting-approval) rollout row, if any."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(rollouts)
                .where((rollouts.c.model == model) & rollouts.c.phase.in_(ACTIVE))
                .order_by(rollouts.c.started_at.desc())
                .limit(1)
            ).first()

    def latest(self, model: str) -> Any | None:
        """The model's most recent rollout row, in any phase."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(rollouts)
                .where(rollouts.c.model == model)
                .order_by(rollouts.c.started_at.desc())
                .limit(1)
            ).first()

    def get(self, rollout_id: str) -> Any | None:
        """One rollout row by id."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(rollouts).where(rollouts.c.id == rollout_id)).first()

    def create(
        self,
        r: Rollout,
        baseline: dict[str, Any],
        tau_ms: float | None,
        pending: Action,
        now: float,
    ) -> None:
        """Record a new rollout with its first action pending."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                rollouts.insert().values(
                    **_row(r),
                    baseline=baseline,
                    tau_ms=tau_ms,
                    pending=pending.to_dict(),
                    verdict=None,
                    updated_at=now,
                )
            )

    def save(
        self,
        r: Rollout,
        now: float,
        pending: Action | None,
        verdict: dict[str, Any] | None = None,
        expect_seq: int | None = None,
        unless_paused: bool = False,
    ) -> bool:
        """Store the new state and its pending action (or clear it: None); with ``expect_seq``
        only while the stored sequence is still that one, and with ``unless_paused`` only while
        the rollout is not paused. True when the row was written."""
        values = {**_row(r), "pending": pending.to_dict() if pending else None, "updated_at": now}
        if verdict is not None:
            values["verdict"] = verdict
        where = rollouts.c.id == r.id
        if expect_seq is not None:
            where = where & (rollouts.c.seq == expect_seq)
        if unless_paused:
            where = where & rollouts.c.paused.is_(False)
        with write_transaction(self.engine) as conn:
            done = conn.execute(rollouts.update().where(where).values(**values))
        return done.rowcount == 1
