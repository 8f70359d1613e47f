"""A synthetic prediction + label stream with a known drift point, for demos, tests, benchmarks.

The stream is in event-time order. Predictions come from a fixed logistic model; after the
drift point the inputs shift (f0 mean +0.5 sd, f1 scale x1.5, categorical mix) and the true
concept changes, so both data drift and a loss of accuracy follow. Labels arrive after a random
delay; some never arrive, some arrive after the model's maximum label delay. Duplicates and
malformed lines of every dead-letter reason are mixed in. ``truth()`` gives the exact counts
that driftd must report for the stream, computed here independently of the join code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from driftd.contracts.events import Label, Prediction

MODEL = "fraud"
CATEGORIES = {"country": ["us", "de", "fr", "br", "in"], "device": ["ios", "android", "web"]}
MAX_EVENT_BYTES = 16_384


@dataclass(frozen=True)
class StreamSpec:
    """Parameters of a generated stream."""

    events: int = 100_000  # predictions (labels, duplicates and bad lines come on top)
    seed: int = 0
    n_features: int = 20
    categorical: bool = True
    rate_per_s: float = 50.0  # predictions per second of event time
    start_ts: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    drift_at: float = 0.5  # fraction of the stream after which the drift starts
    label_rate: float = 0.9
    label_delay_mean_s: float = 20.0
    max_label_delay_s: float = 60.0
    allowed_lateness_s: float = 30.0
    max_stream_skew_s: float = 3600.0
    duplicate_rate: float = 0.01
    malformed_rate: float = 0.002
    versions: tuple[str, ...] = ("1",)
    model: str = MODEL


@dataclass
class Stream:
    """Encoded lines plus their ground truth."""

    lines: list[bytes]
    predictions: list[bytes] = field(default_factory=list)  # valid prediction events, in order
    labels: list[bytes] = field(default_factory=list)
    bad: list[tuple[bytes, str]] = field(default_factory=list)  # (raw, reason)
    bad_kinds: list[str] = field(default_factory=list)  # "prediction" or "label", per bad line
    arrays: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)  # ts, has_label, delay
    spec: StreamSpec = field(default_factory=StreamSpec)

    def truth_by(self, partition_of: Callable[[str], int]) -> dict[str, Any]:
        """The truth when predictions and labels are split into partitions by their id."""
        ids = [f"p-{self.spec.seed}-{i}" for i in range(self.spec.events)]
        part = np.array([partition_of(i) for i in ids], dtype=np.int64)
        a = self.arrays
        return truth(self.spec, a["ts"], a["has_label"], a["delay"], self, part)

    truth: dict[str, Any] = field(default_factory=dict)


def _features(
    rng: np.random.Generator, n: int, k: int, drifted: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    x = rng.standard_normal((n, k))
    x[drifted, 0] += 0.5
    if k > 1:
        x[drifted, 1] *= 1.5
    return np.round(x, 6)


def generate(spec: StreamSpec) -> Stream:
    """Build the stream described by ``spec``."""
    rng = np.random.default_rng(spec.seed)
    n, k = spec.events, spec.n_features
    ts = spec.start_ts + np.cumsum(rng.exponential(1.0 / spec.rate_per_s, n))
    drift_ts = spec.start_ts + spec.drift_at * n / spec.rate_per_s
    drifted = ts >= drift_ts
    x = _features(rng, n, k, drifted)
    w = rng.normal(0, 1, k) / math.sqrt(k) * 2
    w_true_after = w.copy()
    w_true_after[: k // 2] *= -1  # the concept flips for half the features
    logit = x @ w
    score = 1 / (1 + np.exp(-logit))
    true_logit = np.where(drifted, x @ w_true_after, logit)
    y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    latency = np.round(rng.lognormal(math.log(20), 0.5, n), 3)
    errors = rng.random(n) < 0.002
    versions = rng.choice(len(spec.versions), n)
    cats = {c: rng.choice(len(v), n, p=None) for c, v in CATEGORIES.items()}
    has_label = rng.random(n) < spec.label_rate
    delay = rng.exponential(spec.label_delay_mean_s, n)
    enc = msgspec.json.Encoder()

    events: list[tuple[float, int, bytes, str]] = []  # (ts, order, raw, kind)
    for i in range(n):
        feats: dict[str, float | str | None] = {f"f{j}": float(x[i, j]) for j in range(k)}
        if spec.categorical:
            for c, vals in CATEGORIES.items():
                idx = cats[c][i]
                if drifted[i] and c == "country" and rng.random() < 0.3:
                    idx = 0
                feats[c] = vals[idx]
        p = Prediction(
            id=f"p-{spec.seed}-{i}",
            model=spec.model,
            version=spec.versions[versions[i]],
            ts=float(ts[i]),
            features=feats,
            prediction=int(score[i] > 0.5),
            score=float(round(score[i], 6)),
            latency_ms=float(latency[i]),
            error="timeout" if errors[i] else None,
        )
        events.append((float(ts[i]), 2 * i, enc.encode(p), "prediction"))
        if has_label[i]:
            lab = Label(id=p.id, model=spec.model, ts=float(ts[i] + delay[i]), label=int(y[i]))
            events.append((lab.ts, 2 * i + 1, enc.encode(lab), "label"))
    events.sort(key=lambda e: (e[0], e[1]))

    stream = Stream(lines=[])
    for t, _, raw, kind in events:
        stream.lines.append(raw)
        (stream.predictions if kind == "prediction" else stream.labels).append(raw)
        if rng.random() < spec.duplicate_rate:
            stream.lines.append(raw)  # resent at once, as a retrying producer would
        if rng.random() < spec.malformed_rate:
            bad, reason = _malformed(rng, raw, t, spec)
            stream.lines.append(bad)
            stream.bad.append((bad, reason))
            # The line's own "kind" decides its topic; the not-UTF-8 line claims a prediction.
            stream.bad_kinds.append("prediction" if reason == "not_utf8" else kind)
    stream.arrays = {"ts": ts, "has_label": has_label, "delay": delay}
    stream.spec = spec
    stream.truth = truth(spec, ts, has_label, delay, stream)
    return stream


def _malformed(
    rng: np.random.Generator, raw: bytes, t: float, spec: StreamSpec
) -> tuple[bytes, str]:
    obj = msgspec.json.decode(raw)
    obj["id"] = f"bad-{rng.integers(1 << 62)}"
    kind = int(rng.integers(7))
    if kind == 0:
        return raw[: len(raw) // 2], "malformed_json"
    if kind == 1:
        obj["ts"] = "yesterday"
        return msgspec.json.encode(obj), "schema"
    if kind == 2:
        obj["ts"] = -5
        return msgspec.json.encode(obj), "invalid_value"
    if kind == 3:
        obj["model"] = "no-such-model"
        return msgspec.json.encode(obj), "unknown_model"
    if kind == 4 and "features" in obj:
        obj["features"]["not_in_schema"] = 1.0
        return msgspec.json.encode(obj), "unknown_feature"
    if kind == 5:
        return b'{"kind": "prediction", "id": "\xff\xfe"}', "not_utf8"
    obj["pad"] = "x" * (MAX_EVENT_BYTES + 100)
    return msgspec.json.encode(obj), "oversized"


def truth(
    spec: StreamSpec,
    ts: np.ndarray[Any, Any],
    has_label: np.ndarray[Any, Any],
    delay: np.ndarray[Any, Any],
    stream: Stream,
    partition: np.ndarray[Any, Any] | None = None,
) -> dict[str, Any]:
    """The counts driftd must report once the whole stream is consumed.

    ``partition[i]`` is the partition of prediction i and its label (all 0 for a file); each
    partition has its own watermark, as in driftd.
    """
    n = spec.events
    part = np.zeros(n, dtype=np.int64) if partition is None else np.asarray(partition)
    label_ts = ts + delay
    w = np.empty(n)
    for p in np.unique(part).tolist():
        sel = part == p
        wp = float(ts[sel].max())
        lab = sel & has_label
        wl = float(label_ts[lab].max()) if lab.any() else -np.inf
        # The final watermark: the slower stream's progress, unless it lags beyond the skew.
        w[sel] = max(min(wp, wl), max(wp, wl) - spec.max_stream_skew_s) - spec.allowed_lateness_s
    joined = has_label & (delay <= spec.max_label_delay_s)
    # Held predictions leave in arrival (= time) order once W > ts + max delay.
    released = ts + spec.max_label_delay_s < w
    expired = int((released & ~joined).sum())
    pending = int((~released & ~joined).sum())
    late = has_label & ~joined
    unmatched = int((late & (label_ts < w)).sum())
    pending_labels = int((late & (label_ts >= w)).sum())
    dup = len(stream.lines) - len(stream.predictions) - len(stream.labels) - len(stream.bad)
    by_reason: dict[str, int] = {}
    for _, reason in stream.bad:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return {
        "models": {
            spec.model: {
                "predictions": n,
                "labels": int(has_label.sum()),
                "joined": int(joined.sum()),
                "expired": expired,
                "pending": pending,
                "duplicates": dup,
                "pending_labels": pending_labels,
                "unmatched_labels": unmatched,
                "evicted": 0,
                "dropped": 0,
            }
        },
        "dead_lettered": {"total": len(stream.bad), "by_reason": dict(sorted(by_reason.items()))},
        "drift_ts": spec.start_ts + spec.drift_at * n / spec.rate_per_s,
    }


def config_toml(spec: StreamSpec, events_path: Path, data_dir: Path) -> str:
    """A driftd.toml that replays ``events_path`` with the stream's model schema."""
    feats = [f'f{j} = "numeric"' for j in range(spec.n_features)]
    if spec.categorical:
        feats += [f'{c} = "categorical"' for c in CATEGORIES]
    return f"""# Generated by `driftd generate` (seed {spec.seed}).
[pipeline]
name = "demo"
data_dir = "{data_dir}"

[source]
kind = "file"
paths = ["{events_path}"]

[ingest]
max_event_bytes = {MAX_EVENT_BYTES}

[join]
allowed_lateness_s = {spec.allowed_lateness_s}
max_stream_skew_s = {spec.max_stream_skew_s}

[checkpoint]
url = "sqlite:///{data_dir}/state.db"

[metrics]
enabled = false

[models.{spec.model}]
task = "binary"
max_label_delay_s = {spec.max_label_delay_s}
window_s = 300
features = {{ {", ".join(feats)} }}

# Streaming detectors, per model version: the error rate as labels join (the concept
# drifts), and feature f0 as predictions arrive (its mean shifts by 0.5 sd): a CUSUM tuned
# for that shift (k = 0.25 sd; the daemon's default k = 0.5 sd would not see it).
[[models.{spec.model}.detectors]]
detector = "HDDM_A"
stream = "error"

[[models.{spec.model}.detectors]]
detector = "CUSUM"
stream = "feature:f0"
params = {{ warm_start = 500, k = 0.25, threshold = 21.0 }}
"""


def write(spec: StreamSpec, out: Path) -> dict[str, Path]:
    """Write events.jsonl, driftd.toml and truth.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stream = generate(spec)
    events = out / "events.jsonl"
    events.write_bytes(b"\n".join(stream.lines) + b"\n")
    config = out / "driftd.toml"
    config.write_text(config_toml(spec, events.resolve(), (out / "state").resolve()))
    truth_path = out / "truth.json"
    truth_path.write_bytes(msgspec.json.format(msgspec.json.encode(stream.truth)))
    return {"events": events, "config": config, "truth": truth_path}
