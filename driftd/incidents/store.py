"""Incidents in the registry's database: the leader folds each merge's alarms into them, people
acknowledge and resolve them, the CLI and the API read them.

Every change is one registry write transaction (``RegistryCore.write``): the incident rows,
an audit record and an outbox event (``incident.opened``, ``.reopened``, ``.acknowledged``,
``.resolved``: what webhooks deliver, each carrying the incident's URL) commit together or not
at all. A merge's alarms are written under a request id derived from the alarms themselves,
so the replay of a merge after a crash is answered from the first write and counts nothing
twice; the lifecycle's own guard (an alarm at or before an incident's last) backs it up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from driftd.config import IncidentSettings
from driftd.contracts.monitor import DriftDetected
from driftd.incidents import schema as t
from driftd.incidents.lifecycle import (
    STATES,
    Change,
    Incident,
    Key,
    Policy,
    TransitionError,
    acknowledge,
    alarm_order,
    apply_alarms,
    quiet,
    resolve,
)
from driftd.registry.core import RegistryCore
from driftd.registry.errors import Conflict, InvalidRequest, NotFound
from driftd.registry.writer import Writer

ACTOR = "driftd"  # who the leader's changes are recorded as
EVENTS: Mapping[Change, str] = {
    "opened": "incident.opened",
    "reopened": "incident.reopened",
    "acknowledged": "incident.acknowledged",
    "resolved": "incident.resolved",
}
API_PATH = "/api/v1/incidents/"


def to_row(inc: Incident) -> dict[str, Any]:
    """The incident as plain JSON data (a non-finite statistic or threshold as null: strict
    JSON, and PostgreSQL's json type, have no NaN or infinity)."""
    data = dataclasses.asdict(inc)
    data["detectors"] = list(inc.detectors)
    for k in ("statistic", "threshold"):
        data[k] = float(data[k]) if math.isfinite(data[k]) else None
    return data


def from_row(data: Mapping[str, Any]) -> Incident:
    nums = {k: math.nan if data[k] is None else data[k] for k in ("statistic", "threshold")}
    return Incident(**{**data, **nums, "detectors": tuple(data["detectors"])})


def incident_url(base_url: str, incident_id: str) -> str:
    """The incident's stable API address (``/api/v1/incidents/ID`` under ``base_url``)."""
    return f"{base_url.rstrip('/')}{API_PATH}{incident_id}"


def report_signature(secret: bytes, incident_id: str) -> str:
    """What lets a link open one incident's report without a token: HMAC-SHA256 of the id
    under the registry's secret (the report is read-only, and only that incident's)."""
    return hmac.new(secret, f"incident-report:{incident_id}".encode(), hashlib.sha256).hexdigest()


def report_url(base_url: str, incident_id: str, secret: bytes | None) -> str:
    """The report's address; signed (``?sig=``) when the registry has a secret, so that a click
    in Grafana, a webhook or a log line opens it in a browser (else it needs a viewer token)."""
    url = f"{incident_url(base_url, incident_id)}/report"
    return f"{url}?sig={report_signature(secret, incident_id)}" if secret else url


def batch_request_id(alarms: Sequence[DriftDetected]) -> str:
    """The same id for the same alarms: a merge replayed after a crash writes nothing new."""
    h = hashlib.sha256()
    for a in sorted(alarms, key=alarm_order):
        h.update(repr((a.model, a.version, a.stream, a.detector, a.ts)).encode())
    return f"alarms:{h.hexdigest()[:32]}"


class IncidentStore:
    """Incidents read and written through a registry's engine and audited transactions."""

    def __init__(self, registry: RegistryCore, policy: Policy, base_url: str = "") -> None:
        self.registry = registry
        self.policy = policy
        self.base_url = base_url

    @classmethod
    def configured(cls, registry: RegistryCore, s: IncidentSettings) -> IncidentStore:
        """The store with the ``[incidents]`` policy and links."""
        return cls(registry, Policy(s.cooldown_s, s.group_window_s, s.resolve_after_s), s.base_url)

    # -- the leader ------------------------------------------------------------------------
    def record(
        self,
        alarms: Sequence[DriftDetected],
        evidence: Mapping[Key, Mapping[str, Any]] | None = None,
    ) -> list[tuple[Incident, Change]]:
        """Fold alarms into incidents in one transaction; ``evidence`` (the explanation, per
        stream) is stored with the incident it belongs to. Returns the changes."""
        if not alarms:
            return []
        keys = sorted({(a.model, a.version, a.stream) for a in alarms})
        models = sorted({a.model for a in alarms})
        changes: list[tuple[Incident, Change]] = []

        def change(w: Writer) -> dict[str, Any]:
            latest = self._latest(w.conn, keys, models)
            changes.extend(apply_alarms(latest, list(alarms), self.policy))
            final = {inc.id: inc for inc, _ in changes}
            for inc in final.values():
                self._put(w, inc, (evidence or {}).get(inc.key))
            for inc, what in changes:
                self._announce(w, inc, what)
            return {"changes": [[to_row(i), what] for i, what in changes]}

        answer = self.registry.write(
            ACTOR, "incident.alarms", {"alarms": len(alarms)}, batch_request_id(alarms), change
        )
        if not changes:  # a replay: the first write's answer
            changes = [(from_row(d), what) for d, what in answer["changes"]]
        return changes

    def resolve_quiet(self, clock: float) -> list[Incident]:
        """Resolve every unresolved incident whose last alarm is ``resolve_after_s`` of event
        time behind ``clock``."""
        cut = clock - self.policy.resolve_after_s
        c = t.incidents.c
        with self.registry.engine.connect() as conn:
            stale = conn.execute(
                sa.select(c.id, c.revision).where(
                    (c.state != "resolved") & (c.last_alarm_ts <= cut)
                )
            ).all()
        done = []
        for incident_id, revision in stale:

            def change(w: Writer, incident_id: str = incident_id) -> dict[str, Any]:
                inc = self._get(w.conn, incident_id)
                after = quiet(inc, clock, self.policy)
                if after is not None:
                    self._put(w, after)
                    self._announce(w, after, "resolved")
                return to_row(after or inc)

            # one request per revision: a reopened incident can go quiet again
            row = self.registry.write(
                ACTOR,
                "incident.quiet",
                {"id": incident_id, "revision": revision},
                f"quiet:{incident_id}:{revision}",
                change,
            )
            done.append(from_row(row))
        return [i for i in done if i.state == "resolved"]

    # -- people ----------------------------------------------------------------------------
    def acknowledge(
        self, incident_id: str, actor: str, note: str = "", request_id: str | None = None
    ) -> Incident:
        """open -> acknowledged (again: no change); a resolved incident is a Conflict."""
        return self._person(incident_id, actor, note, request_id, "acknowledged")

    def resolve(
        self, incident_id: str, actor: str, note: str = "", request_id: str | None = None
    ) -> Incident:
        """open or acknowledged -> resolved (again: no change)."""
        return self._person(incident_id, actor, note, request_id, "resolved")

    def _person(
        self, incident_id: str, actor: str, note: str, request_id: str | None, what: Change
    ) -> Incident:
        if len(note) > 2000:
            raise InvalidRequest(f"a note is at most 2000 characters, got {len(note)}")

        def change(w: Writer) -> dict[str, Any]:
            inc = self._get(w.conn, incident_id)
            step = acknowledge if what == "acknowledged" else resolve
            try:
                after = step(inc, actor, w.now, note)
            except TransitionError as e:
                raise Conflict(str(e)) from None
            if after is not inc:
                self._put(w, after)
                self._announce(w, after, what)
                w.audit(EVENTS[what], after.id, inc.state, after.state, note)
            return to_row(after)

        payload = {"id": incident_id, "note": note}
        return from_row(self.registry.write(actor, EVENTS[what], payload, request_id, change))

    # -- reading ---------------------------------------------------------------------------
    def get(self, incident_id: str) -> Incident:
        with self.registry.engine.connect() as conn:
            return self._get(conn, incident_id)

    def evidence(self, incident_id: str) -> dict[str, Any] | None:
        """The explanation stored with the incident (None when its alarm had none)."""
        c = t.incidents.c
        with self.registry.engine.connect() as conn:
            row = conn.execute(sa.select(c.evidence).where(c.id == incident_id)).first()
        if row is None:
            raise NotFound(f"no incident {incident_id!r}")
        return dict(row.evidence) if row.evidence else None

    def list(
        self, model: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Incident]:
        """Incidents, the latest alarm first; ``state`` one of open, acknowledged, resolved."""
        if state is not None and state not in STATES:
            raise InvalidRequest(f"state must be one of {', '.join(STATES)}; got {state!r}")
        if not 1 <= limit <= 10_000:
            raise InvalidRequest(f"limit must be within 1..10000; got {limit}")
        c = t.incidents.c
        q = sa.select(c.data).order_by(c.last_alarm_ts.desc(), c.id).limit(limit)
        if model is not None:
            q = q.where(c.model == model)
        if state is not None:
            q = q.where(c.state == state)
        with self.registry.engine.connect() as conn:
            return [from_row(r.data) for r in conn.execute(q)]

    def url(self, incident_id: str) -> str:
        return incident_url(self.base_url, incident_id)

    def report_url(self, incident_id: str) -> str:
        return report_url(self.base_url, incident_id, self.registry.secret)

    def signed(self, incident_id: str, sig: str) -> bool:
        """Whether ``sig`` is the incident's report signature (never without a secret)."""
        secret = self.registry.secret
        return bool(secret) and hmac.compare_digest(
            report_signature(secret or b"", incident_id), sig
        )

    # -- rows ------------------------------------------------------------------------------
    def _get(self, conn: sa.Connection, incident_id: str) -> Incident:
        c = t.incidents.c
        row = conn.execute(sa.select(c.data).where(c.id == incident_id)).first()
        if row is None:
            raise NotFound(f"no incident {incident_id!r}")
        return from_row(row.data)

    def _latest(
        self, conn: sa.Connection, keys: Sequence[Key], models: Sequence[str]
    ) -> dict[Key, Incident]:
        """Each key's latest incident, and the unresolved incidents of the models (grouping)."""
        c = t.incidents.c
        out: dict[Key, Incident] = {}
        for model, version, stream in keys:
            row = conn.execute(
                sa.select(c.data)
                .where((c.model == model) & (c.version == version) & (c.stream == stream))
                .order_by(c.opened_ts.desc())
                .limit(1)
            ).first()
            if row is not None:
                out[(model, version, stream)] = from_row(row.data)
        rows = conn.execute(sa.select(c.data).where(c.model.in_(models) & (c.state != "resolved")))
        for r in rows:
            inc = from_row(r.data)
            out.setdefault(inc.key, inc)
        return out

    def _put(self, w: Writer, inc: Incident, evidence: Mapping[str, Any] | None = None) -> None:
        c = t.incidents.c
        values = {
            "model": inc.model,
            "version": inc.version,
            "stream": inc.stream,
            "group_id": inc.group,
            "state": inc.state,
            "opened_ts": inc.opened_ts,
            "last_alarm_ts": inc.last_alarm_ts,
            "revision": inc.revision,
            "data": to_row(inc),
            "updated_at": w.now,
        }
        if evidence is not None:
            values["evidence"] = dict(evidence)
        done = w.conn.execute(t.incidents.update().where(c.id == inc.id).values(**values))
        if done.rowcount == 0:
            w.conn.execute(t.incidents.insert().values(id=inc.id, **values))

    def _announce(self, w: Writer, inc: Incident, what: Change) -> None:
        event = EVENTS.get(what)
        if event is not None:
            links = {"url": self.url(inc.id), "report_url": self.report_url(inc.id)}
            w.event(event, inc.model, {"incident": to_row(inc), **links})
            if what in ("opened", "reopened"):
                w.audit(event, inc.id, None, inc.state, inc.stream)
