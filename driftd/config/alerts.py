"""Where the Prometheus alerts point and the thresholds of the operational ones, ``[alerts]``
(``driftd rules`` writes the rules; each model's SLOs are under ``[models.<name>.slo]``).

Example::

    [alerts]
    job = "driftd"                               # Prometheus' job label of the driftd targets
    grafana_url = "https://grafana.example.com"  # the dashboard links in the annotations
    runbook_url = "https://git.example.com/driftd/blob/main/docs/runbooks"
    dead_letter_ratio = 0.01
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from driftd.config.sections import Section

Seconds = Annotated[int, Field(ge=60, le=30 * 86_400)]


class AlertSettings(Section):
    """The job, the links and the operational thresholds of driftd's alerts."""

    job: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s\"\\]+$")] = "driftd"
    grafana_url: Annotated[str, Field(pattern=r"^(https?://\S+|/\S*)$")] = "http://localhost:3000"
    # <runbook_url>/<AlertName>.md; the default is the repository's docs/runbooks.
    runbook_url: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] = "docs/runbooks"
    checkpoint_stale_s: Seconds = 300
    dead_letter_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.01
    outbox_pending_s: Seconds = 600
    retrain_queued_s: Seconds = 1800
    # A running job is overdue this long after its timeout (retrain.timeout_s): the timeout
    # should have ended it.
    retrain_overdue_s: Seconds = 600
    consumer_lag: Annotated[int, Field(ge=1)] = 100_000
