"""The rollout loop: gather evidence, ask the rule, act through the registry.

Each ``tick`` (from the daemon loop, after every poll) looks at every model with a
``[models.<name>.rollout]`` section: it starts a canary when a challenger waits in staging,
finishes an action left pending by a crash, or turns the counts since the canary started into
evidence, gets the rule's verdict and applies the state machine's action. An action is recorded
as pending before it is executed and cleared after, and every registry call carries the
decision id as its idempotency key, so a crash at any point neither loses nor repeats a
traffic decision. The clock is event time (the newest prediction seen), so a replay decides
exactly as the live run did. The store, the registry side and the inputs are given to it.
An operator's manual commands (``driftd.rollout.manual``) live in the same row: a paused
rollout gathers evidence and verdicts but takes no step, and every save names the sequence it
read, so a decision made on a row a manual command has since changed is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from driftd.config import ModelSettings
from driftd.config.rollout import RolloutSettings
from driftd.registry.errors import RegistryError
from driftd.rollout.actions import RegistryActions
from driftd.rollout.counts import Totals
from driftd.rollout.evidence import SLO, Batch, Evidence, RolloutDecision, Verdict
from driftd.rollout.inputs import drift_pvalue
from driftd.rollout.machine import ACTIVE, PROMOTED, Action, Rollout, decide, start
from driftd.rollout.plan import Plan, Rates, make_plan, nulls_of
from driftd.rollout.rules import ArgoRule, FlaggerRule, Rule, SequentialRule
from driftd.rollout.store import RolloutStore, to_rollout

log = logging.getLogger("driftd.rollout")
VERDICT_SAVE_S = 5.0  # an unchanged verdict is stored at most this often (wall seconds)


def rollout_sections(models: Mapping[str, ModelSettings]) -> dict[str, RolloutSettings]:
    """Each model's enabled ``[models.<name>.rollout]`` section: what the controller drives."""
    return {
        name: ms.rollout
        for name, ms in models.items()
        if ms.rollout is not None and ms.rollout.enabled
    }


def slo_of(rs: RolloutSettings) -> SLO:
    """The SLO dataclass from the settings; a comparison not in ``checks`` is switched off."""
    s = rs.slo.model_dump()
    checks = set(s.pop("checks"))
    off = {
        "error_rate": "error_margin",
        "latency": "latency_margin",
        "quality": "quality_margin",
        "drift": "drift_alpha",
    }
    for check, key in off.items():
        if check not in checks:
            s[key] = None
    s["latency_quantiles"] = tuple(s["latency_quantiles"])
    return SLO(**s)


def rule_of(rs: RolloutSettings) -> Rule:
    """The configured decision rule."""
    if rs.rule == "flagger":
        return FlaggerRule()
    if rs.rule == "argo":
        return ArgoRule()
    return SequentialRule()


@dataclass
class _Live:
    """In-memory evidence of one rollout (rebuilt from the counts after a restart)."""

    evidence: Evidence
    canary: Totals
    champion: Totals
    taus: tuple[float | None, ...] = ()
    planned: bool = False


class Controller:
    """Drives each given model's rollout from the pipeline's counts."""

    def __init__(
        self,
        models: Mapping[str, RolloutSettings],
        store: RolloutStore,
        actions: RegistryActions,
        counts: Callable[[str, str], Totals],
        clock: Callable[[], float],
    ) -> None:
        self.models = dict(models)
        self.store = store
        self.actions = actions
        self.counts = counts
        self.clock = clock
        self._live: dict[str, _Live] = {}
        self._saved: dict[str, tuple[RolloutDecision, float]] = {}  # last verdict stored, when
        self.verdicts: dict[str, Verdict] = {}
        self.timeline: list[dict[str, Any]] = []  # what happened, in order (each also logged)
        self.plans: dict[str, Plan] = {}  # rollout id -> its plan
        # model -> (champion, its (clock, requests) samples)
        self._traffic: dict[str, tuple[int, deque[tuple[float, float]]]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop what this instance held in memory (its verdicts and live evidence): another
        instance leads now, and this one rebuilds from the stored rollouts if it leads again."""
        with self._lock:
            self.verdicts = {}
        self._live = {}
        self._saved = {}
        self.plans = {}
        self._traffic = {}

    def last_verdicts(self) -> dict[str, Verdict]:
        """The last verdict per model (a copy, safe to read from the scrape thread)."""
        with self._lock:
            return dict(self.verdicts)

    def tick(self) -> None:
        """One pass over the models (called after every poll of the daemon loop)."""
        for model, rs in self.models.items():
            row = self.store.active(model)
            if row is None:
                self._sample_traffic(model)
                if rs.auto_start:
                    self._maybe_start(model, rs)
                continue
            r = to_rollout(row)
            if row.pending:
                pending = Action.from_dict(row.pending)
                if row.paused and pending.kind == "promote":
                    continue  # a paused rollout is not promoted by itself, approved or not
                self._execute(r, pending)
                continue
            self._analyse(r, row, rs)

    # -- starting ----------------------------------------------------------------------------

    def _maybe_start(self, model: str, rs: RolloutSettings) -> None:
        waiting = self.actions.waiting_challenger(model)
        if waiting is None:
            return
        challenger, champion = waiting
        now = self.clock()
        rid = f"{model}-{challenger}-{int(now)}"
        r, action = start(rid, model, challenger, champion, tuple(rs.steps), now)
        base_ch = self.counts(model, str(champion))
        base = {
            str(champion): base_ch.to_dict(),
            str(challenger): self.counts(model, str(challenger)).to_dict(),
        }
        tau = base_ch.quantile_ms(rs.slo.latency_quantile)
        self.store.create(r, base, tau, action, now)
        self._note(r, "canary started", f"v{r.canary} vs champion v{r.champion}")
        rate = self._rate(model)
        if rate is not None:
            self._plan(r, rs, rate, base_ch)
        self._execute(r, action)

    # -- planning ----------------------------------------------------------------------------

    def _sample_traffic(self, model: str) -> None:
        """Remember the champion's request count at this clock (the rate a plan needs)."""
        champion = self.actions.champion(model)
        if champion is None:
            return
        held = self._traffic.get(model)
        if held is None or held[0] != champion:  # a new champion: its own counts from now
            held = self._traffic[model] = (champion, deque())
        q = held[1]
        now = self.clock()
        q.append((now, float(self.counts(model, str(champion)).counts[0])))
        while q and now - q[0][0] > 600.0:
            q.popleft()

    def _rate(self, model: str) -> float | None:
        """Requests per second over the last ten minutes of event time (None: too little)."""
        held = self._traffic.get(model)
        q = held[1] if held is not None else None
        if not q or q[-1][0] - q[0][0] < 10.0:
            return None
        return max(0.0, (q[-1][1] - q[0][1]) / (q[-1][0] - q[0][0]))

    def _plan(self, r: Rollout, rs: RolloutSettings, rate: float, base: Totals) -> Plan:
        """Whether a good canary can be promoted within max_duration_s at this traffic: logged,
        put on the timeline, kept in ``plans``."""
        slo = slo_of(rs)
        rates = rates_of(base, slo, rate)
        plan = make_plan(rates, rs.steps, rs.step_min_s, slo, nulls_of(slo, rates))
        self.plans[r.id] = plan
        self._note(r, "canary plan", plan.summary())
        if not plan.reachable:
            log.warning("canary cannot decide in time", extra={"model": r.model, **plan.to_dict()})
        return plan

    # -- analysis ----------------------------------------------------------------------------

    def _evidence(self, r: Rollout, row: Any, rs: RolloutSettings) -> Evidence:
        base = {v: Totals.from_dict(d) for v, d in row.baseline.items()}
        can = self.counts(r.model, str(r.canary)) - base[str(r.canary)]
        cham = self.counts(r.model, str(r.champion)) - base[str(r.champion)]
        live = self._live.get(r.id)
        if live is None:
            # the thresholds: the champion's quantiles before the canary started
            taus = tuple(base[str(r.champion)].quantile_ms(q) for q in rs.slo.latency_quantiles)
            live = _Live(Evidence(keep_history=rs.rule != "sequential"), Totals(), Totals(), taus)
        x = rs.slo.latency_margin or 0.0
        ceiling = rs.slo.latency_ceiling_ms
        d_can, d_cham = can - live.canary, cham - live.champion
        drift = drift_pvalue(can.moments, cham.moments)
        elapsed = max(self.clock() - r.started_at, live.evidence.elapsed_s)
        batch = Batch(
            elapsed_s=elapsed,
            canary=d_can.arm([t * (1 + x) if t else None for t in live.taus], ceiling),
            champion=d_cham.arm(list(live.taus), ceiling),
            drift_statistic=None if drift is None else drift[0],
            drift_pvalue=None if drift is None else drift[1],
            step=r.step,
        )
        planned = live.planned or r.id in self.plans
        if not planned and elapsed >= 30.0:  # no rate before the start: plan on the canary's
            self._plan(r, rs, (can.counts[0] + cham.counts[0]) / elapsed, base[str(r.champion)])
            planned = True
        live = _Live(live.evidence.add(batch), can, cham, live.taus, planned)
        self._live[r.id] = live
        return live.evidence

    def _analyse(self, r: Rollout, row: Any, rs: RolloutSettings) -> None:
        evidence = self._evidence(r, row, rs)
        verdict = rule_of(rs).verdict(evidence, slo_of(rs))
        with self._lock:
            self.verdicts[r.model] = verdict
        now = self.clock()
        if row.paused:  # an operator paused it: evidence accrues, no step and no verdict action
            nr, action = r, None
        else:
            nr, action = decide(r, verdict, now, rs.step_min_s)
        last = self._saved.get(r.id)
        if action is None and last is not None:
            decision, at = last
            if decision == verdict.decision and time.monotonic() - at < VERDICT_SAVE_S:
                return  # nothing changed that a restart would need; spare the write
        stored = verdict.to_dict()
        plan = self.plans.get(r.id)
        if plan is not None:  # what `driftd rollout status` shows beside the verdict
            stored["plan"] = {**plan.to_dict(), "summary": plan.summary()}
        # Only over the row this decision read: a manual command since (a pause, a promote or
        # an abort by hand) wins, and this decision is dropped unsaved and unexecuted.
        if not self.store.save(
            nr, now, action, stored, expect_seq=r.seq, unless_paused=action is not None
        ):
            log.info("rollout changed by hand; decision dropped", extra={"model": r.model})
            return
        self._saved[r.id] = (verdict.decision, time.monotonic())
        if action is not None:
            self._execute(nr, action)

    # -- acting --------------------------------------------------------------------------------

    def _execute(self, r: Rollout, action: Action) -> None:
        """Carry out ``action`` and record it done (or still pending while it waits)."""
        now = self.clock()
        try:
            done = self.actions.apply(r, action)
        except RegistryError:
            if self._still_ours(r):
                raise
            log.info("rollout changed by hand; action dropped", extra={"model": r.model})
            return
        if done is None:
            self.store.save(r, now, action, expect_seq=r.seq)  # stays pending: retried
            return
        if not self.store.save(done, now, None, expect_seq=r.seq):
            return  # a manual command ended the rollout meanwhile; it says what happened
        self._note(done, action.kind, action.reason)
        if done.phase == PROMOTED or action.kind in ("rollback", "halt"):
            self._live.pop(done.id, None)

    def _still_ours(self, r: Rollout) -> bool:
        """Whether the stored rollout is still the one ``r`` was decided on (no manual
        command has moved it since)."""
        row = self.store.get(r.id)
        return row is not None and row.seq == r.seq and row.phase in ACTIVE

    def _note(self, r: Rollout, what: str, detail: str) -> None:
        entry = {
            "ts": self.clock(),
            "model": r.model,
            "rollout": r.id,
            "event": what,
            "detail": detail,
        }
        self.timeline.append(entry)
        log.info("rollout", extra=entry)


def rates_of(base: Totals, slo: SLO, rate: float) -> Rates:
    """The champion's rates of bad events per request, from its counts before the canary."""
    arm = base.arm([], None)
    n = max(arm.requests, 1)
    bad: dict[str, tuple[float, float]] = {"error_rate": (arm.errors / n, 1.0)}
    per: dict[str, float] = {}
    if arm.labeled:
        bad["quality"] = (arm.wrong / arm.labeled, 1.0)
        per["quality"] = arm.labeled / n
    x = slo.latency_margin or 0.0
    for q in slo.latency_quantiles:
        tau = base.quantile_ms(q)
        if tau is None:
            continue
        over = base.slower_than(tau)
        same = base.slower_than(tau * (1 + x)) / over if over else 1.0
        bad[f"latency_q{q:g}"] = (over / n, same)
    return Rates(rate, bad, per)
