"""The per-version counts monitors of one model across partitions, for the rollout's evidence.

Collectors read ``Pipeline.version_totals`` instead; this stays until ``closed_loop`` does too.
"""

from __future__ import annotations

from driftd.daemon.pipeline import Pipeline
from driftd.rollout.counts import VersionCounts


def version_counts(pipeline: Pipeline, model: str) -> list[VersionCounts]:
    """The model's ``VersionCounts`` monitor in every partition."""
    out: list[VersionCounts] = []
    for st in list(pipeline.partitions.values()):
        ms = st.models.get(model)
        if ms is not None:
            out.extend(m for m in ms.monitors if isinstance(m, VersionCounts))
    return out
