"""One brain: the decisions are a function of the events, not of how they were partitioned.

The same generated stream (a drift halfway, two detectors, two model versions, malformed lines
and duplicates) goes through 1, 2, 4 and random numbers of partitions, split by id as Kafka
keys them, processed in random chunk sizes, with the partitions' reports reaching the leader
at random moments. The leader's alarms (detector, version, stream, kind, event time,
statistic), its per-version counts and what the rollout controller reads at each of its ticks
(the event clock and each version's counts) are the same every time.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftd.config import load_settings
from driftd.daemon.abc import RawChunk, Report
from driftd.daemon.app import build_pipeline
from driftd.daemon.brain import Brain
from driftd.daemon.pipeline import Pipeline
from driftd.sim.synth import Stream, StreamSpec, config_toml, generate

SPEC = StreamSpec(
    events=6000,
    seed=3,
    n_features=3,
    categorical=False,
    rate_per_s=20.0,
    versions=("1", "2"),
    duplicate_rate=0.01,
    malformed_rate=0.002,
)


@dataclass(frozen=True)
class Outcome:
    alarms: list[tuple[Any, ...]]
    counts: dict[str, list[float]]
    late: int
    # What the rollout controller reads at each of its ticks (one per emitted bucket): the
    # event clock and each version's counts. Equal inputs, equal verdicts.
    ticks: list[tuple[float, list[float], list[float]]]


@cache
def _stream() -> Stream:
    return generate(SPEC)


@cache
def _settings() -> Any:
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp())
    text = config_toml(SPEC, d / "events.jsonl", d / "state")
    # A detector that alarms often (false alarms included) makes the comparison sharp.
    text += '\n[[models.fraud.detectors]]\ndetector = "PageHinkley"\nstream = "score"\n'
    text += "params = { threshold = 5.0, delta = 0.001 }\n"
    text += "\n[leader]\nbucket_s = 30\nlateness_s = 60\n"
    (d / "driftd.toml").write_text(text)
    return load_settings(d / "driftd.toml", env={})


def _key(raw: bytes) -> str:
    try:
        obj = msgspec.json.decode(raw)
        return str(obj["id"]) if isinstance(obj, dict) and "id" in obj else ""
    except (msgspec.DecodeError, TypeError):
        return ""


def _partitions(lines: list[bytes], n: int) -> list[list[bytes]]:
    """Each partition's events in stream order, split by id (crc32, as a keyed producer)."""
    out: list[list[bytes]] = [[] for _ in range(n)]
    for raw in lines:
        out[zlib.crc32(_key(raw).encode()) % n].append(raw)
    return out


def _report(pipeline: Pipeline, p: int, seq: int) -> Report:
    st_ = pipeline.partition(p)
    rep = Report(p, seq, st_.watermark(pipeline.leader.lateness_s), 0.0, st_.report_data())
    st_.clear_report()
    return rep


def run(n: int, draws: list[int]) -> Outcome:
    """The stream through ``n`` partitions; ``draws`` pick chunk sizes and report moments."""
    settings_ = _settings()
    pipeline = build_pipeline(settings_)
    brain = Brain(settings_.models, settings_.leader)
    parts = _partitions(_stream().lines, n)
    pos = [0] * n
    seq = [0] * n
    k = 0
    alarms: list[Any] = []
    ticks: list[tuple[float, list[float], list[float]]] = []

    def tick(clock: float) -> None:
        ticks.append(
            (
                clock,
                brain.version_total("fraud", "1").counts.tolist(),
                brain.version_total("fraud", "2").counts.tolist(),
            )
        )

    def draw(hi: int) -> int:
        nonlocal k
        v = draws[k % len(draws)] if draws else 0
        k += 1
        return v % hi

    while any(pos[p] < len(parts[p]) for p in range(n)):
        p = draw(n)
        if pos[p] >= len(parts[p]):
            p = next(q for q in range(n) if pos[q] < len(parts[q]))
        size = 1 + draw(700)
        raws = parts[p][pos[p] : pos[p] + size]
        pipeline.process(
            RawChunk(p, "mixed", "s", raws, range(pos[p], pos[p] + len(raws)), {"s": pos[p]})
        )
        pos[p] += len(raws)
        if draw(4) == 0:  # a checkpoint of this partition reaches the leader
            seq[p] += 1
            brain.absorb([_report(pipeline, p, seq[p])])
            alarms += brain.advance(brain.watermark(0.0, range(n), waited=False), tick)
    reports = []
    for p in range(n):
        seq[p] += 1
        reports.append(_report(pipeline, p, seq[p]))
    brain.absorb(reports)
    alarms += brain.advance(math.inf, tick)
    counts = {v: brain.version_total("fraud", v).counts.tolist() for v in ("1", "2")}
    return Outcome(
        [(a.detector, a.version, a.stream, a.kind, a.ts, round(a.statistic, 9)) for a in alarms],
        counts,
        brain.late_values,
        ticks,
    )


@cache
def _single() -> Outcome:
    return run(1, [0])


def test_the_single_partition_run_raises_drift_alarms_after_the_drift() -> None:
    one = _single()
    drift_ts = _stream().truth["drift_ts"]
    drifts = [a for a in one.alarms if a[3] == "drift"]
    assert drifts, "the stream drifts: the detectors must alarm"
    # CUSUM on feature f0 (its mean shifts at the drift); PageHinkley on the score alarms
    # often, false alarms included, which makes the comparisons below sharp.
    assert any(a[0] == "CUSUM" and a[4] >= drift_ts for a in drifts)
    assert sum(a[0] == "PageHinkley" for a in drifts) >= 10
    assert one.late == 0
    assert (
        one.counts["1"][0] + one.counts["2"][0] == _stream().truth["models"]["fraud"]["predictions"]
    )


def test_two_and_four_partitions_give_the_single_partitions_decisions() -> None:
    one = _single()
    for n in (2, 4):
        got = run(n, [3, 1, 4, 1, 5, 9, 2, 6])
        assert got.late == 0
        assert got.alarms == one.alarms, f"{n} partitions"
        np.testing.assert_allclose(got.counts["1"], one.counts["1"], rtol=1e-12)
        np.testing.assert_allclose(got.counts["2"], one.counts["2"], rtol=1e-12)
        assert [t[0] for t in got.ticks] == [t[0] for t in one.ticks]
        for a, b in zip(got.ticks, one.ticks, strict=True):
            np.testing.assert_allclose(a[1], b[1], rtol=1e-12)  # sums: equal to rounding
            np.testing.assert_allclose(a[2], b[2], rtol=1e-12)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 12),
    draws=st.lists(st.integers(0, 10_000), min_size=1, max_size=40),
)
def test_any_partitioning_gives_the_same_alarms(n: int, draws: list[int]) -> None:
    got = run(n, draws)
    assert got.late == 0
    assert got.alarms == _single().alarms
