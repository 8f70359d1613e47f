"""Multiclass performance estimation through the whole partition path: predictions carry a
``scores`` dict, the model declares its ``classes``, and the leader's MulticlassCBPE gives the
same alarms whatever the partitioning and whatever order each partition met the classes in."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftd.config import (
    IngestSettings,
    JoinSettings,
    LeaderSettings,
    ModelSettings,
    load_settings,
)
from driftd.contracts.monitor import DriftDetected
from driftd.daemon.abc import RawChunk, Report
from driftd.daemon.brain import Brain
from driftd.daemon.performance import realised_multiclass
from driftd.daemon.pipeline import Pipeline
from driftd.daemon.streams import category_keys, class_index
from driftd.daemon.summaries import encode
from driftd.errors import ConfigError

Event = dict[str, Any]
LS = LeaderSettings(bucket_s=10.0, idle_s=30.0)
CLASSES = ["cat", "dog", "eel"]
T0 = 1_700_000_000.0
MODEL = ModelSettings(
    task="multiclass",
    features={"x": "numeric"},
    classes=CLASSES,
    performance=[{"metric": "accuracy", "window_s": 200.0, "reference_s": 300.0}],
)


PERF = '[[models.m.performance]]\nmetric = "accuracy"\n'


def _phase(n: int, seed: int, t0: float, concentration: float, labeled: bool) -> list[Event]:
    """Predictions (and their labels) of a calibrated 3-class model: scores ~ Dirichlet,
    label ~ Categorical(scores), prediction = the top class. A small ``concentration`` gives
    confident scores (high accuracy); a large one, near-uniform scores (low accuracy)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(3, concentration), n)
    label = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    events: list[Event] = []
    for i in range(n):
        ts = t0 + i / 10.0
        pid = f"{seed}-{i}"
        scores = {c: float(p[i, k]) for k, c in enumerate(CLASSES)}
        top = CLASSES[int(np.argmax(p[i]))]
        events.append({"kind": "prediction", "id": pid, "model": "m", "version": "1",
                       "ts": ts, "features": {"x": float(p[i, 0])}, "prediction": top,
                       "scores": scores, "score": float(p[i].max())})  # fmt: skip
        if labeled:
            events.append({"kind": "label", "id": pid, "model": "m", "ts": ts + 1.0,
                           "label": CLASSES[int(label[i])]})  # fmt: skip
    return events


def _run(events: list[Event], partitions: int) -> tuple[list[DriftDetected], Brain]:
    """Events dealt to ``partitions`` pipelines by id (a label follows its prediction), each
    pipeline fed in chunks of 400 and reporting to one leader after every chunk."""
    pipes = [
        Pipeline({"m": MODEL}, IngestSettings(), JoinSettings(), leader=LS)
        for _ in range(partitions)
    ]
    dealt: list[list[Event]] = [[] for _ in range(partitions)]
    for e in events:
        dealt[int(e["id"].split("-")[1]) // 7 % partitions].append(e)
    if partitions > 1:  # the second partition meets the classes in another order first
        dealt[1][:40] = sorted(dealt[1][:40], key=lambda e: e.get("prediction") != "eel")
    brain = Brain({"m": MODEL}, LS)
    fired: list[DriftDetected] = []
    longest = max(map(len, dealt))
    for seq, lo in enumerate(range(0, longest, 400), start=1):
        reports = []
        for p, pipe in enumerate(pipes):
            part = dealt[p][lo : lo + 400]
            lines = [json.dumps(e).encode() for e in part]
            pipe.process(
                RawChunk(p, "mixed", "f", lines, list(range(lo + 1, lo + 1 + len(lines))), {})
            )
            summary = pipe.partition(p).models["m"].summary
            wm = max((e["ts"] for e in dealt[p][: lo + 400]), default=T0)
            reports.append(Report(p, seq, wm, 0.0, encode({"m": summary})))
            summary.clear()
        brain.absorb(reports)
        fired += brain.advance(min(r.watermark for r in reports))
    fired += brain.advance(math.inf)
    return fired, brain


def test_multiclass_cbpe_sees_accuracy_fall_without_labels_whatever_the_partitioning() -> None:
    events = [
        *_phase(3_000, 1, T0, 0.4, labeled=True),  # [0, 300): labeled reference, confident
        *_phase(3_000, 2, T0 + 300, 0.4, labeled=False),  # [300, 600): the same: quiet
        *_phase(2_000, 3, T0 + 600, 3.0, labeled=False),  # [600, 800): near-uniform scores
    ]
    one, brain = _run(events, 1)
    two, _ = _run(events, 2)
    assert [(a.stream, a.detector, a.ts) for a in one] == [
        ("performance:accuracy", "CBPE", T0 + 800.0)
    ]
    assert [(a.ts, a.statistic, a.threshold) for a in one] == [
        (a.ts, a.statistic, a.threshold) for a in two
    ]
    # near-uniform Dirichlet(3) scores: the top class is right about half the time; the
    # confident reference about 0.8 of the time
    assert 0.4 < one[0].statistic < 0.6 and one[0].threshold > 0.7
    entry = brain.performance["m"].entries[0]
    _, ref = entry.references["1"]
    assert len(ref) == 3_000 and ref.values.shape == (3_000, 6)  # score, pred, label, 3 scores
    # the reference's labels are the declared classes' stable keys, whichever partition
    assert set(class_index(ref.values[:, 2], CLASSES).tolist()) == {0, 1, 2}


def test_realised_multiclass_metrics_are_scikit_learns() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(3), 600)
    label = (rng.random(600)[:, None] > p.cumsum(axis=1)).sum(axis=1).clip(0, 2)
    pred = p.argmax(axis=1)
    assert realised_multiclass("accuracy", p, pred, label) == pytest.approx(
        sk.accuracy_score(label, pred)
    )
    assert realised_multiclass("f1", p, pred, label) == pytest.approx(
        sk.f1_score(label, pred, average="macro")
    )
    assert realised_multiclass("roc_auc", p, pred, label) == pytest.approx(
        sk.roc_auc_score(label, p, multi_class="ovr", average="macro")
    )


def test_class_keys_map_back_to_the_declared_order() -> None:
    keys = category_keys(["eel", "cat", "fox"])
    assert class_index(np.append(keys, np.nan), CLASSES).tolist() == [2, 0, -1, -1]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('task = "multiclass"\n' + PERF, "models.m.classes: got []; expected the model's class"),
        ('task = "multiclass"\nclasses = ["a", "a"]\n', "got ['a', 'a']; expected distinct"),
        ('classes = ["a", "b"]\n', "got ['a', 'b']; expected no classes for a binary model"),
    ],
)
def test_classes_are_validated_naming_key_value_and_expectation(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = tmp_path / "driftd.toml"
    path.write_text('[models.m]\nfeatures = { x = "numeric" }\n' + toml)
    with pytest.raises(ConfigError) as err:
        load_settings(path, {})
    assert expected in str(err.value)
