"""The leader's incidents: each merge's alarms folded into the incident store, quiet incidents
resolved by the event clock, every change logged with its link; and the incidents as
Prometheus metrics, read from the database at scrape time (the same from every process)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftd.contracts.monitor import DriftDetected
from driftd.daemon.leader import Evidence
from driftd.daemon.performance import fill_realised
from driftd.incidents import schema as t
from driftd.incidents.evidence import build
from driftd.incidents.lifecycle import STATES, Change, Incident
from driftd.incidents.report import render
from driftd.incidents.store import IncidentStore
from driftd.retrain.store import LabeledStore

log = logging.getLogger("driftd.incidents")


class IncidentHook:
    """``Leader.on_incidents``: record a merge's alarms, resolve quiet incidents, log changes.

    A database error propagates: the leader's merge fails and is retried from its last saved
    state, and the alarms' request id makes the retry count nothing twice. Any other error (a
    bug) is logged and counted, and the merge goes on: incidents must not stall decisions."""

    def __init__(self, store: IncidentStore, event_clock: Callable[[], float]) -> None:
        self.store = store
        self.event_clock = event_clock
        self.failures = 0  # merges whose incidents could not be recorded (not the database)

    def __call__(self, alarms: Sequence[DriftDetected], evidence: Evidence) -> None:
        drifts = [a for a in alarms if a.kind == "drift"]  # a warning pages nobody
        try:
            for inc, what in self.store.record(drifts, evidence):
                self._log(inc, what)
            for inc in self.store.resolve_quiet(self.event_clock()):
                self._log(inc, "resolved")
        except sa.exc.SQLAlchemyError:
            raise  # the database is away: the merge fails and is retried, nothing is lost
        except Exception:
            # a bug here must not stall every decision behind it: counted, logged, skipped
            self.failures += 1
            log.exception("incidents not recorded", extra={"alarms": len(drifts)})

    def _log(self, inc: Incident, what: Change) -> None:
        if what == "extended":
            return
        level = logging.WARNING if what in ("opened", "reopened") else logging.INFO
        log.log(
            level,
            f"incident {what}",
            extra={
                "incident": inc.id,
                "group": inc.group,
                "model": inc.model,
                "version": inc.version,
                "stream": inc.stream,
                "state": inc.state,
                "alarms": inc.alarms,
                "url": self.store.url(inc.id),
                "report_url": self.store.report_url(inc.id),
            },
        )


MAX_INFO = 500  # unresolved incidents exported one series each (the latest alarms first)


class IncidentCollector(Collector):
    """``driftd_incidents{model,state}``, the oldest unresolved incident's first alarm, and
    one ``driftd_incident_info`` series per unresolved incident, its link as a label (what
    Grafana's incident annotations show)."""

    def __init__(self, store: IncidentStore) -> None:
        self.store = store  # read only: its engine and its links

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "driftd_incidents",
                "Incidents by model and state (open, acknowledged, resolved). Unit: incidents. "
                "Read from the registry database at scrape: survives restarts, same on every "
                "instance.",
                labels=["model", "state"],
            ),
            GaugeMetricFamily(
                "driftd_incident_open_since_timestamp_seconds",
                "Event time of the first alarm of the oldest unresolved incident, per model. "
                "Unit: unix timestamp in seconds. Read from the registry database at scrape: "
                "survives restarts, same on every instance.",
                labels=["model"],
            ),
            GaugeMetricFamily(
                "driftd_incident_info",
                "One series per unresolved incident (value 1), with its state and address. "
                "Unit: 1 or 0. Read from the registry database at scrape: survives restarts, "
                "same on every instance.",
                labels=["model", "version", "stream", "incident", "state", "url", "report_url"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """Read the incidents; a database error is logged and yields nothing."""
        counts, since, info = self._families()
        c = t.incidents.c
        try:
            with self.store.registry.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(c.model, c.state, sa.func.count()).group_by(c.model, c.state)
                ).all()
                oldest = conn.execute(
                    sa.select(c.model, sa.func.min(c.opened_ts))
                    .where(c.state != "resolved")
                    .group_by(c.model)
                ).all()
                unresolved = conn.execute(
                    sa.select(c.model, c.version, c.stream, c.id, c.state)
                    .where(c.state != "resolved")
                    .order_by(c.last_alarm_ts.desc(), c.id)
                    .limit(MAX_INFO)
                ).all()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("incident metrics unavailable", extra={"error": str(exc)})
            return
        found = {(m, s): n for m, s, n in rows}
        for model in sorted({m for m, _ in found}):
            for state in STATES:
                counts.add_metric([model, state], float(found.get((model, state), 0)))
        for model, ts in sorted(oldest):
            since.add_metric([model], float(ts))
        for model, version, stream, iid, state in unresolved:
            links = [self.store.url(iid), self.store.report_url(iid)]
            info.add_metric([model, version, stream, iid, state, *links], 1.0)
        yield counts
        yield since
        yield info


def report_page(store: IncidentStore, incident_id: str, labeled: LabeledStore | None = None) -> str:
    """An incident's HTML report; a performance incident's windows get their realised values
    from ``labeled`` (the labeled event store) where their labels have arrived since."""
    inc = store.get(incident_id)
    stored = store.evidence(incident_id)
    if stored and stored.get("performance") and labeled is not None:
        stored = fill_realised(stored, labeled, inc.model, inc.version)
    links = [("API", store.url(inc.id)), ("report", store.report_url(inc.id))]
    return render(build(inc, stored, links))
