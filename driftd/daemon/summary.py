"""What the pipeline's state says, summed over partitions: counts, dead letters, windows and
drift alarms.

Used by ``driftd replay`` and ``driftd status``; pure reading, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from driftd.daemon.alarm_log import Alarms, merged
from driftd.daemon.monitors import LATENCY_BUCKETS_MS
from driftd.daemon.state import PartitionState

JOIN_KEYS = (
    "predictions",
    "labels",
    "joined",
    "expired",
    "pending",
    "duplicates",
    "pending_labels",
    "unmatched_labels",
    "evicted",
    "dropped",
)


def summarize(
    models: Iterable[str], partitions: Iterable[PartitionState], alarms: Alarms | None = None
) -> dict[str, Any]:
    """Counts per model, dead letters and ignored events by reason, recent windows, and the
    drift alarms kept (the most recent per model, stream and kind) with their totals."""
    partitions = list(partitions)
    counts: dict[str, Counter[str]] = {name: Counter() for name in models}
    windows: dict[str, dict[tuple[int, str], np.ndarray[Any, Any]]] = {n: {} for n in counts}
    window_s: dict[str, float] = {}
    dead: Counter[str] = Counter()
    ignored: Counter[str] = Counter()
    consumed = 0
    for st in partitions:
        consumed += st.consumed
        dead.update(st.dead_lettered)
        ignored.update(st.ignored)
        for name, m in st.models.items():
            c = counts[name]
            c.update(m.store.counts)
            c["pending"] += m.store.pending
            c["pending_labels"] += m.store.pending_labels
            window_s[name] = m.operational.window_s
            _add_windows(windows[name], m.operational.snapshot(), m.versions.values)
    return {
        "consumed": consumed,
        "models": {name: {k: int(c[k]) for k in JOIN_KEYS} for name, c in counts.items()},
        "dead_lettered": {"total": sum(dead.values()), "by_reason": dict(sorted(dead.items()))},
        "ignored": {"total": sum(ignored.values()), "by_reason": dict(sorted(ignored.items()))},
        "windows": {name: _rows(w, window_s.get(name, 0.0)) for name, w in windows.items()},
        **_alarms(partitions, alarms),
    }


def _alarms(partitions: list[PartitionState], extra: Alarms | None) -> dict[str, Any]:
    alarms = merged(m.alarms for st in partitions for m in st.models.values())
    if extra is not None:
        alarms.recent = sorted([*alarms.recent, *extra.recent], key=lambda a: a.ts)
        alarms.totals.update(extra.totals)
    by_kind: Counter[str] = Counter()
    for (*_, kind), n in alarms.totals.items():
        by_kind[kind] += n
    return {
        "alarms": [dataclasses.asdict(a) for a in alarms.recent],
        "alarm_totals": {"total": sum(by_kind.values()), "by_kind": dict(sorted(by_kind.items()))},
    }


def _add_windows(
    acc: dict[tuple[int, str], np.ndarray[Any, Any]],
    snapshot: dict[int, dict[str, np.ndarray[Any, Any]]],
    versions: list[str],
) -> None:
    # Version codes are local to a partition: merge by version name.
    for w, cols in snapshot.items():
        for code, version in enumerate(versions):
            if code >= len(cols["predictions"]):
                continue
            vec = np.concatenate(
                [
                    [
                        cols[f][code]
                        for f in (
                            "predictions",
                            "errors",
                            "latency_count",
                            "latency_sum",
                            "joined",
                            "expired",
                        )
                    ],
                    cols["latency_hist"][code],
                ]
            )
            key = (w, version)
            acc[key] = acc[key] + vec if key in acc else vec


def _quantile(hist: np.ndarray[Any, Any], q: float) -> float | None:
    total = hist.sum()
    if not total:
        return None
    idx = int(np.searchsorted(np.cumsum(hist), q * total))
    bound = LATENCY_BUCKETS_MS[min(idx, len(LATENCY_BUCKETS_MS) - 1)]
    return None if np.isinf(bound) else float(bound)


def _rows(
    acc: dict[tuple[int, str], np.ndarray[Any, Any]], window_s: float
) -> list[dict[str, Any]]:
    rows = []
    for (w, version), v in sorted(acc.items()):
        n, errors, lat_n, lat_sum, joined, expired = v[:6].tolist()
        rows.append(
            {
                "start": w * window_s,
                "version": version,
                "predictions": int(n),
                "error_rate": errors / n if n else None,
                "latency_mean_ms": lat_sum / lat_n if lat_n else None,
                "latency_p95_ms_at_most": _quantile(v[6:], 0.95),
                "joined": int(joined),
                "expired": int(expired),
            }
        )
    return rows
