"""Rollout settings, per model: ``[models.<name>.rollout]`` (canary steps and SLOs).

Example::

    [models.fraud.rollout]
    steps = [0.05, 0.25, 0.5]      # canary traffic share at each step, then production
    step_min_s = 60                # least time at each step
    [models.fraud.rollout.slo]
    alpha = 0.05                   # false-rollback probability over the whole canary
    margins = "relative"           # margins as fractions of the champion's rate
    error_margin = 0.0             # roll back once the canary is shown to err more
    error_ni = 1.0                 # promote once its error rate is shown below 2x the champion's
    latency_margin = 0.10          # roll back once slower than the champion by more than 10 %
    latency_quantiles = [0.5, 0.9, 0.99, 0.999]   # … at any of these quantiles
    quality_margin = 0.0           # … or less accurate
    quality_ni = 0.25              # promote once its wrong-prediction rate is shown below 1.25x
    min_duration_s = 360           # never promote sooner: failures that start late get time
    max_duration_s = 3600
    checks = ["error_rate", "latency", "quality", "drift"]   # the comparisons that apply
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from driftd.config.sections import Section

Check = Literal["error_rate", "latency", "quality", "drift"]


class SLOSettings(Section):
    """The canary's SLOs (``driftd.rollout.evidence.SLO``). ``checks`` names the comparisons
    with the champion that apply; the ceilings apply when they are set."""

    checks: list[Check] = ["error_rate", "latency", "quality", "drift"]
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    margins: Literal["relative", "absolute"] = "relative"
    error_margin: Annotated[float, Field(ge=0, le=100)] = 0.0
    error_ni: Annotated[float, Field(gt=0, le=100)] = 1.0
    error_ceiling: Annotated[float, Field(gt=0, le=1)] | None = None
    latency_margin: Annotated[float, Field(ge=0)] = 0.10
    latency_quantiles: Annotated[list[Annotated[float, Field(gt=0, lt=1)]], Field(min_length=1)] = [
        0.5,
        0.9,
        0.99,
        0.999,
    ]
    latency_ni_quantile: Annotated[float, Field(gt=0, lt=1)] = 0.99
    latency_ceiling_ms: Annotated[float, Field(gt=0)] | None = None
    latency_quantile: Annotated[float, Field(gt=0, lt=1)] = 0.99
    quality_margin: Annotated[float, Field(ge=0, le=100)] = 0.0
    quality_ni: Annotated[float, Field(gt=0, le=100)] = 0.25
    drift_alpha: Annotated[float, Field(gt=0, lt=1)] = 0.001
    min_samples: Annotated[int, Field(ge=1)] = 1_000
    min_labeled: Annotated[int, Field(ge=0)] = 200
    step_min_requests: Annotated[int, Field(ge=0)] = 100
    min_duration_s: Annotated[float, Field(ge=0)] = 360.0
    max_duration_s: Annotated[float, Field(gt=0)] = 1_800.0
    stall_s: Annotated[float, Field(gt=0)] = 120.0

    @field_validator("latency_quantiles")
    @classmethod
    def _quantiles_increase(cls, v: list[float]) -> list[float]:
        if v != sorted(set(v)):
            raise ValueError(f"latency_quantiles must increase without repeats, got {v}")
        return v

    @model_validator(mode="after")
    def _margins_fit_their_kind(self) -> SLOSettings:
        if self.min_duration_s >= self.max_duration_s:
            raise ValueError(
                f"min_duration_s = {self.min_duration_s} (the least time before a promotion) "
                f"must be below max_duration_s = {self.max_duration_s}; lower min_duration_s "
                f"or raise max_duration_s"
            )
        if self.margins == "absolute":
            for key in ("error_margin", "error_ni", "quality_margin", "quality_ni"):
                if getattr(self, key) > 1:
                    raise ValueError(
                        f"{key} = {getattr(self, key)} is a difference of rates with "
                        'margins = "absolute"; expected at most 1'
                    )
        elif self.error_ni < 0.05 or self.quality_ni < 0.05:
            key = "error_ni" if self.error_ni < 0.05 else "quality_ni"
            raise ValueError(
                f'{key} = {getattr(self, key)} is relative with margins = "relative" (1.0 '
                f"means the canary's rate may be up to 2x the champion's); a non-inferiority "
                f"margin below 0.05 cannot be shown in any practical time. Expected >= 0.05, "
                f'or set margins = "absolute" for a difference of rates'
            )
        return self


class RolloutSettings(Section):
    """How a challenger becomes champion: traffic steps, dwell time, the decision rule."""

    enabled: bool = True
    auto_start: bool = True  # start a canary as soon as a challenger is in staging
    steps: Annotated[list[float], Field(min_length=1)] = [0.05, 0.25, 0.5]
    step_min_s: Annotated[float, Field(ge=0)] = 60.0
    rule: Literal["sequential", "flagger", "argo"] = "sequential"
    slo: SLOSettings = SLOSettings()

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(not 0 < w < 1 for w in v) or any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError(f"steps are increasing traffic shares in (0, 1), got {v}")
        return v
