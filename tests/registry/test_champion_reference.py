"""The champion's training snapshot as the window checks' reference: loaded through the
registry's lineage, switched when a new champion is promoted, recorded on every alarm."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from driftd.config import LeaderSettings, ModelSettings
from driftd.daemon.brain import Brain
from driftd.daemon.references import ChampionReferences, snapshot_rows
from driftd.daemon.sample import Sample
from driftd.daemon.streams import category_key
from driftd.registry import Registry
from driftd.retrain.snapshot import Snapshot, SnapshotSpec, TimeRange, make_snapshot
from driftd.retrain.store import LabeledRows, LabeledStore

SHA = "a" * 64
MODEL = ModelSettings(
    features={"a": "numeric", "b": "numeric", "color": "categorical"},
    checks=[{"check": "drift", "window_s": 100.0, "reference": "champion"}],
)


def _rows(n: int, shift: float, seed: int) -> LabeledRows:
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000.0 + np.arange(n, dtype=np.float64)
    return LabeledRows(
        ids=[f"{seed}-{i}" for i in range(n)],
        ts=ts,
        label_ts=ts + 1,
        version=np.zeros(n, np.int32),
        version_names=["v1"],
        numeric=rng.normal(shift, 1.0, (n, 2)),
        numeric_names=["a", "b"],
        categorical=rng.integers(0, 3, (n, 1)).astype(np.int32),
        categorical_names=["color"],
        categorical_vocabs=[["red", "green", "blue"]],
        prediction=rng.random(n),
        score=rng.random(n),
        label=rng.integers(0, 2, n).astype(np.float64),
    )


def _snapshot(tmp: Path, name: str, shift: float, seed: int) -> Snapshot:
    store = LabeledStore(tmp / f"store-{name}")
    store.append("m", _rows(3_000, shift, seed))
    store.flush()
    return make_snapshot(store, SnapshotSpec("m", TimeRange(0.0, 2e9)), tmp / name)


def _champion(reg: Registry, snap: Snapshot, tmp: Path) -> int:
    ds = reg.register_dataset(snap.sha256, 3_000, snap.path.resolve().as_uri(), "trainer")
    run = reg.start_run("m", "trainer", dataset_id=ds)
    art = (tmp / f"{snap.sha256[:8]}.pt").as_uri()
    v = reg.register_version("m", art, SHA, 1, "trainer", run_id=run, stage="staging")
    reg.promote("m", v.version, "production", "ops")
    return v.version


def _window(shift: float, t0: float, seed: int) -> Sample:
    rng = np.random.default_rng(seed)
    n = 1_000
    colors = np.array([category_key(c) for c in ("red", "green", "blue")])
    values = np.column_stack([rng.normal(shift, 1.0, (n, 2)), colors[rng.integers(0, 3, n)]])
    return Sample(
        rng.integers(0, 2**32, n, dtype=np.uint32),
        t0 + np.arange(n, dtype=np.float64) * 0.1,
        values,
    )


def test_snapshot_rows_key_categories_as_the_daemon_does(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path, "s", 0.0, 1)
    rows = snapshot_rows(snap.arrays("train"), ["a", "color", "missing_feature"])
    train = snap.arrays("train")
    assert np.allclose(rows.values[:, 0], train.numeric[:, 0])
    names = np.array(train.vocabularies[0], dtype=object)[train.categorical[:, 0]]
    assert rows.values[:, 1].tolist() == [category_key(c) for c in names]
    assert np.isnan(rows.values[:, 2]).all()
    again = snapshot_rows(train, ["a", "color", "missing_feature"])
    assert again.keys.tolist() == rows.keys.tolist()  # reproducible sampling keys


def test_the_reference_follows_the_champion_and_alarms_name_it(
    registry: Registry, tmp_path: Path
) -> None:
    refs = ChampionReferences(registry, {"m": MODEL}, every_s=0.0)
    assert refs() == {}  # no champion yet: nothing, and windows close untested
    first = _snapshot(tmp_path, "first", 0.0, 1)
    v1 = _champion(registry, first, tmp_path)
    got = refs()
    label = got["m"][0]
    assert label == f"champion:v{v1}:{first.sha256[:8]}"
    assert refs()["m"][1] is got["m"][1]  # the same champion is not reloaded

    brain = Brain({"m": MODEL}, LeaderSettings(bucket_s=10.0))
    checks = brain.checks["m"]
    assert brain.set_champion("m", *got["m"]) == [0]
    assert brain.set_champion("m", *got["m"]) == []  # already the reference
    checks.add(_window(0.0, 0.0, 2))
    assert checks.advance(100.0) == []  # like the training data: quiet
    checks.add(_window(0.6, 100.0, 3))
    (alarm_a, alarm_b) = checks.advance(200.0)
    assert {alarm_a.stream, alarm_b.stream} == {"feature:a", "feature:b"}
    assert alarm_a.reference == label

    # a retrain on the shifted data is promoted: the shifted traffic is the new normal
    second = _snapshot(tmp_path, "second", 0.6, 4)
    v2 = _champion(registry, second, tmp_path)
    new_label, rows = refs()["m"]
    assert new_label == f"champion:v{v2}:{second.sha256[:8]}" != label
    assert brain.set_champion("m", new_label, rows) == [0]
    checks.add(_window(0.6, 200.0, 5))
    assert checks.advance(300.0) == []
    again = Brain({"m": MODEL}, LeaderSettings(bucket_s=10.0))
    again.load_blob(brain.to_blob())  # the reference survives a failover
    assert again.checks["m"].checks[0].reference_label == new_label


def test_a_champion_without_a_dataset_is_reported_not_fatal(
    registry: Registry, tmp_path: Path
) -> None:
    v = registry.register_version("m", (tmp_path / "x.pt").as_uri(), SHA, 1, "t", stage="staging")
    registry.promote("m", v.version, "production", "ops")
    assert ChampionReferences(registry, {"m": MODEL}, every_s=0.0)() == {}


def test_models_without_champion_checks_are_never_looked_up(registry: Registry) -> None:
    plain = ModelSettings(features={"a": "numeric"}, checks=[{"check": "drift"}])
    refs = ChampionReferences(registry, {"m": plain})
    assert refs.columns == {} and refs() == {}
