"""A model's service SLOs, ``[models.<name>.slo]``: the targets its Prometheus alerts burn
against (``driftd rules``) and the silences that count as broken.

Example::

    [models.fraud.slo]
    availability = 0.995        # 99.5 % of predictions are not errors
    latency_s = 0.5             # … and 99 % answer within 0.5 s (a latency histogram bucket)
    latency_target = 0.99
    quality_drop = 0.05         # accuracy over 1 h may fall 0.05 below its 6 h value
    rmse_rise = 0.25            # (regression) rmse over 1 h may rise 25 % above its 6 h value
    labels_stalled_s = 3600     # predictions arrive but no label for this long (0: never alert)
    predictions_stalled_s = 1800  # a model with traffic in the last day gets none for this long
    incident_open_s = 14400     # an incident stays unresolved this long
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from driftd.config.sections import Section

# The bucket bounds (seconds) of driftd_prediction_latency_seconds: a latency SLO can only be
# read at one of them. driftd.rollout.counts.PROMETHEUS_BUCKETS_S must equal this (a test
# compares); the config layer cannot import the rollout layer.
LATENCY_BUCKETS_S: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# "Had traffic" for the predictions-stalled alert means: some in this many seconds.
TRAFFIC_LOOKBACK_S = 86_400

Target = Annotated[float, Field(gt=0.5, lt=1)]
Stall = Annotated[int, Field(ge=0, le=30 * 86_400)]


class ServiceSLOSettings(Section):
    """One model's SLO targets and stall limits (whole seconds; 0 turns that alert off)."""

    availability: Target = 0.995
    latency_s: float = 0.5
    latency_target: Target = 0.99
    quality_drop: Annotated[float, Field(gt=0, lt=1)] = 0.05
    rmse_rise: Annotated[float, Field(gt=0, le=100)] = 0.25
    labels_stalled_s: Stall = 3600
    predictions_stalled_s: Annotated[int, Field(ge=0, lt=TRAFFIC_LOOKBACK_S)] = 1800
    incident_open_s: Stall = 4 * 3600

    @field_validator("latency_s")
    @classmethod
    def _a_bucket(cls, v: float) -> float:
        if v not in LATENCY_BUCKETS_S:
            buckets = ", ".join(f"{b:g}" for b in LATENCY_BUCKETS_S)
            raise ValueError(
                f"latency_s = {v:g} is not a bucket of driftd_prediction_latency_seconds; "
                f"expected one of {buckets}"
            )
        return v

    @field_validator("labels_stalled_s", "predictions_stalled_s", "incident_open_s")
    @classmethod
    def _long_enough(cls, v: int) -> int:
        if 0 < v < 300:
            raise ValueError(
                f"got {v} s; expected 0 (no alert) or at least 300 s: shorter silences are "
                "scrape and batching noise"
            )
        return v
