"""driftd's own health: scrapes, leadership, checkpoints, consumer lag, dead letters, the
registry outbox, retrain jobs, drift alarms and canaries. Selectors carry the configured
Prometheus job; decision series are read through the ``driftd:leader:*`` rules and registry
series (the same on every instance) with ``max``, never ``sum``."""

from __future__ import annotations

from driftd.alerts.promql import any_of, cohorts, duration, label, per_cohort, selector
from driftd.alerts.rule import CANARY, LINEAGE, MODEL, Alert
from driftd.config import Settings
from driftd.config.retrain import ModelRetrainSettings

# A model without [models.NAME.retrain] (a job submitted by hand) has the default timeout.
DEFAULT_TIMEOUT_S = int(ModelRetrainSettings.model_fields["timeout_s"].default)


def _retrain(settings: Settings) -> list[Alert]:
    a = settings.alerts
    job = label("job", a.job)
    default = DEFAULT_TIMEOUT_S + a.retrain_overdue_s
    limits = {
        n: int(m.retrain.timeout_s) + a.retrain_overdue_s if m.retrain else default
        for n, m in settings.models.items()
    }
    cs = cohorts(limits, default)
    parts = [
        "max by (model) (driftd_retrain_job_oldest_age_seconds"
        f"{selector(job, label('state', 'running'), c.matcher)}) > {c.value}"
        for c in cs
    ]
    running = Alert(
        "DriftdRetrainJobRunningTooLong",
        any_of(parts),
        "ticket",
        "a retrain job of {{ $labels.model }} has run for {{ $value | humanizeDuration }}",
        "The oldest running retrain job of {{ $labels.model }} started "
        "{{ $value | humanizeDuration }} ago, more than its timeout plus "
        f"{duration(a.retrain_overdue_s)} (limit {per_cohort(cs, duration)}): its worker may "
        "be hung or dead with the job still marked running.",
        LINEAGE,
        per_model=True,
    )
    return [
        Alert(
            "DriftdRetrainJobStuckQueued",
            f'max by (model) (driftd_retrain_job_oldest_age_seconds{{{job}, state="queued"}}) '
            f"> {a.retrain_queued_s}",
            "ticket",
            "a retrain job of {{ $labels.model }} has waited {{ $value | humanizeDuration }}",
            "The oldest queued retrain job of {{ $labels.model }} has waited "
            f"{{{{ $value | humanizeDuration }}}} (limit {duration(a.retrain_queued_s)}): no "
            "worker claims jobs (retrain.worker is off and no `driftd retrain worker` runs, "
            "or the workers are busy).",
            LINEAGE,
            per_model=True,
        ),
        running,
        Alert(
            "DriftdRetrainJobFailed",
            "max by (model) (\n"
            f'  increase(driftd_retrain_job_duration_seconds_count{{{job}, outcome="failed"}}[1h])'
            "\n) > 0",
            "warning",
            "a retrain job of {{ $labels.model }} failed in the last hour",
            "A retrain job of {{ $labels.model }} failed (trainer error, timeout or evaluation "
            "error); the model keeps its current version until a retrain succeeds.",
            LINEAGE,
            per_model=True,
        ),
    ]


def _pipeline(settings: Settings) -> list[Alert]:
    a = settings.alerts
    job = label("job", a.job)
    return [
        Alert(
            "DriftdDown",
            f"up{{{job}}} == 0",
            "page",
            "driftd at {{ $labels.instance }} cannot be scraped",
            "Prometheus has not scraped driftd at {{ $labels.instance }} for 2 minutes: the "
            "process is down, restarting or unreachable. Its partitions move to the other "
            "instances after the consumer group's session timeout.",
            for_="2m",
        ),
        Alert(
            "DriftdNoLeader",
            f"max by (job, pipeline) (driftd_leader{{{job}}}) < 1",
            "page",
            "no driftd instance leads pipeline {{ $labels.pipeline }} ({{ $labels.job }})",
            "Instances are scraped but none holds the lease of pipeline "
            "{{ $labels.pipeline }}: no drift, retrain or canary decision is taken and the "
            "outbox is not delivered.",
            for_="1m",
        ),
        Alert(
            "DriftdSplitBrain",
            f"sum by (job, pipeline) (driftd_leader{{{job}}}) > 1",
            "page",
            "{{ $value }} driftd instances lead pipeline {{ $labels.pipeline }} "
            "({{ $labels.job }})",
            "Several instances believe they lead pipeline {{ $labels.pipeline }} for longer "
            "than a lease renewal: fencing refuses the stale leader's writes, but the lease "
            "(or the clocks it relies on) is broken.",
            for_="1m",
        ),
        Alert(
            "DriftdCheckpointStale",
            f"driftd_checkpoint_age_seconds{{{job}}} > {a.checkpoint_stale_s}",
            "page",
            "driftd at {{ $labels.instance }} has not checkpointed for "
            f"{duration(a.checkpoint_stale_s)}",
            "The last checkpoint of {{ $labels.instance }} is {{ $value | humanizeDuration }} "
            "old: a restart would replay that much and the leader merges stale summaries.",
            for_="5m",
        ),
        Alert(
            "DriftdCheckpointFailing",
            "sum without (instance) "
            f"(increase(driftd_checkpoint_failures_total{{{job}}}[15m])) > 0",
            "warning",
            "driftd ({{ $labels.job }}) checkpoints are failing",
            "At least one checkpoint failed in the last 15 minutes (database unreachable, "
            "full or refusing writes); driftd retries, but state is not being saved.",
        ),
        Alert(
            "DriftdConsumerLagGrowing",
            f"max by (topic, partition) (driftd_consumer_lag{{{job}}}) > {a.consumer_lag}\n"
            "and\n"
            f"max by (topic, partition) (deriv(driftd_consumer_lag{{{job}}}[30m])) > 0",
            "ticket",
            "driftd falls further behind on {{ $labels.topic }}[{{ $labels.partition }}]",
            "driftd is {{ $value | humanize }} messages behind on {{ $labels.topic }} partition "
            f"{{{{ $labels.partition }}}} (limit {a.consumer_lag}) and the lag has grown over "
            "30 minutes: what driftd reports and decides is increasingly late.",
            for_="10m",
        ),
        Alert(
            "DriftdDeadLetterRateHigh",
            f"sum by (job) (rate(driftd_events_dead_lettered_total{{{job}}}[15m]))\n/\n"
            f"sum by (job) (rate(driftd_events_consumed_total{{{job}}}[15m]))\n"
            f"> {a.dead_letter_ratio}",
            "ticket",
            "driftd dead-letters {{ $value | humanizePercentage }} of the events it reads",
            "Over 15 minutes, {{ $value | humanizePercentage }} of consumed events went to the "
            f"dead-letter sink (limit {a.dead_letter_ratio * 100:g}%): a producer sends "
            "events driftd cannot decode or does not know; they are not monitored.",
            for_="10m",
        ),
    ]


def _registry(settings: Settings) -> list[Alert]:
    a = settings.alerts
    job = label("job", a.job)
    return [
        Alert(
            "DriftdOutboxBacklog",
            f"max by (job) (driftd_outbox_oldest_pending_age_seconds{{{job}}}) "
            f"> {a.outbox_pending_s}",
            "ticket",
            "registry events wait {{ $value | humanizeDuration }} for delivery",
            "The oldest undelivered outbox event is {{ $value | humanizeDuration }} old (limit "
            f"{duration(a.outbox_pending_s)}): webhooks and the control topic (canary "
            "weights, promotions, rollbacks) are not being told.",
        ),
        Alert(
            "DriftdOutboxDeadLetters",
            f'max by (job) (delta(driftd_outbox_events{{{job}, state="dead"}}[1h])) > 0',
            "ticket",
            "registry events were given up on in the last hour",
            "Outbox events ran out of delivery attempts in the last hour: a webhook or the "
            "control topic never received them.",
        ),
        Alert(
            "DriftdDriftDetected",
            "sum by (model, version, stream, detector) (\n"
            f'  increase(driftd:leader:drift_alarms_total{{{job}, kind="drift"}}[15m])\n'
            ") > 0",
            "warning",
            "{{ $labels.detector }} detected drift on {{ $labels.stream }} of "
            "{{ $labels.model }} {{ $labels.version }}",
            "A drift alarm was raised in the last 15 minutes; its incident groups the alarms "
            "and links the report.",
            MODEL,
            per_model=True,
        ),
        Alert(
            "DriftdCanaryRolledBack",
            f"max by (model) (increase(driftd_rollbacks_total{{{job}}}[15m])) > 0",
            "warning",
            "the canary of {{ $labels.model }} was rolled back",
            "A canary of {{ $labels.model }} failed its SLO comparison (or was rolled back by "
            "hand); production serves the previous version.",
            CANARY,
            per_model=True,
        ),
        Alert(
            "DriftdCanaryHalted",
            "max by (model) (driftd:leader:canary_verdict"
            f'{{{job}, driftd_canary_verdict="halt"}}) == 1',
            "ticket",
            "the canary of {{ $labels.model }} is halted and needs a decision",
            "The canary of {{ $labels.model }} has been halted for 15 minutes (no data, a "
            "stalled step or its longest duration reached): it neither promotes nor rolls "
            "back by itself.",
            CANARY,
            per_model=True,
            for_="15m",
        ),
    ]


def operational_alerts(settings: Settings) -> list[Alert]:
    """Every operational alert, pipeline first."""
    return _pipeline(settings) + _registry(settings) + _retrain(settings)
