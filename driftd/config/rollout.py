"""Rollout settings, per model: ``[models.<name>.rollout]`` (canary steps and SLOs).

Example::

    [models.fraud.rollout]
    steps = [0.05, 0.25, 0.5]      # canary traffic share at each step, then production
    step_min_s = 300               # least time at each step
    [models.fraud.rollout.slo]
    alpha = 0.05                   # false-rollback probability over the whole canary
    error_margin = 0.0             # roll back once the canary is shown to err more
    latency_margin = 0.10          # … or to be slower than the champion by more than 10 %
    quality_margin = 0.0           # … or less accurate
    max_duration_s = 3600
    checks = ["error_rate", "latency", "quality", "drift"]   # the comparisons that apply
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, field_validator

from driftd.config.sections import Section

Check = Literal["error_rate", "latency", "quality", "drift"]


class SLOSettings(Section):
    """The canary's SLOs (``driftd.rollout.evidence.SLO``). ``checks`` names the comparisons
    with the champion that apply; the ceilings apply when they are set."""

    checks: list[Check] = ["error_rate", "latency", "quality", "drift"]
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    error_margin: Annotated[float, Field(ge=0, le=1)] = 0.0
    error_ni: Annotated[float, Field(gt=0, le=1)] = 0.005
    error_ceiling: Annotated[float, Field(gt=0, le=1)] | None = None
    latency_margin: Annotated[float, Field(ge=0)] = 0.10
    latency_ceiling_ms: Annotated[float, Field(gt=0)] | None = None
    latency_quantile: Annotated[float, Field(gt=0, lt=1)] = 0.99
    quality_margin: Annotated[float, Field(ge=0, le=1)] = 0.0
    quality_ni: Annotated[float, Field(gt=0, le=1)] = 0.02
    drift_alpha: Annotated[float, Field(gt=0, lt=1)] = 0.001
    min_samples: Annotated[int, Field(ge=1)] = 1_000
    min_labeled: Annotated[int, Field(ge=0)] = 200
    max_duration_s: Annotated[float, Field(gt=0)] = 1_800.0
    stall_s: Annotated[float, Field(gt=0)] = 120.0


class RolloutSettings(Section):
    """How a challenger becomes champion: traffic steps, dwell time, the decision rule."""

    enabled: bool = True
    auto_start: bool = True  # start a canary as soon as a challenger is in staging
    steps: Annotated[list[float], Field(min_length=1)] = [0.05, 0.25, 0.5]
    step_min_s: Annotated[float, Field(ge=0)] = 300.0
    rule: Literal["sequential", "flagger", "argo"] = "sequential"
    slo: SLOSettings = SLOSettings()

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(not 0 < w < 1 for w in v) or any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError(f"steps are increasing traffic shares in (0, 1), got {v}")
        return v
