"""The reference model server: routing, weights, regressions, labels, sinks and the registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import binom

from driftd.contracts.events import (
    Deployment,
    Label,
    Prediction,
    decode_label,
    decode_prediction,
    encode,
)
from driftd.sim.server import LabelEmitter, ModelServer, Regression
from driftd.sim.sinks import JsonlSink, KafkaSink, parse_control
from driftd.sim.world import World

T0 = 1_767_225_600.0


def within(count: int, n: int, p: float) -> bool:
    """Whether ``count`` successes of ``n`` are plausible at rate ``p`` (1e-6 two-sided)."""
    lo, hi = binom.interval(1 - 1e-6, n, p)
    return bool(lo <= count <= hi)


def make_server(seed: int = 0, emitter: LabelEmitter | None = None, **kw: Any) -> ModelServer:
    world = World(6, seed, T0 + 1e6)
    server = ModelServer(world, None, "fraud", seed=seed, emitter=emitter, **kw)
    server.add(1, world.concept_scorer())
    server.add("2", world.concept_scorer())
    return server


def rows_of(server: ModelServer, preds: list[Prediction]) -> np.ndarray[Any, Any]:
    """Rebuild the feature matrix from the predictions' feature mappings."""
    w = server.world
    cats = [{c: i for i, c in enumerate(v)} for v in w.categories.values()]
    return np.array(
        [
            [float(p.features[n]) for n in w.numeric_names]  # type: ignore[arg-type]
            + [cats[j][str(p.features[c])] for j, c in enumerate(w.categories)]
            for p in preds
        ]
    )


def test_routing_follows_the_live_weights_and_changes_with_them() -> None:
    server = make_server()
    server.apply({"1": 0.8, "2": 0.2})
    preds = server.serve(20_000, T0)
    n2 = sum(p.version == "2" for p in preds)
    assert within(n2, 20_000, 0.2)
    server.apply(
        Deployment(
            model="fraud", ts=T0, weights={"1": 0.0, "2": 1.0}, reason="promote", decision_id="d1"
        )
    )
    assert {p.version for p in server.serve(1000, T0 + 1)} == {"2"}
    assert server.served == {"1": n2 and 20_000 - n2, "2": n2 + 1000}


def test_weights_must_name_loaded_versions_and_sum_to_one() -> None:
    server = make_server()
    with pytest.raises(RuntimeError, match="apply"):
        server.serve(1, T0)
    with pytest.raises(ValueError, match="not loaded: 3"):
        server.apply({"1": 0.5, "3": 0.5})
    with pytest.raises(ValueError, match="sum to 1"):
        server.apply({"1": 0.5, "2": 0.4})
    with pytest.raises(ValueError, match="sum to 1"):
        server.apply({})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        server.apply({"1": 1.5, "2": -0.5})
    other = Deployment(model="other", ts=T0, weights={"1": 1.0}, reason="", decision_id="x")
    with pytest.raises(ValueError, match="not 'fraud'"):
        server.apply(other)
    with pytest.raises(ValueError, match="no registry"):
        server.load(9)


def test_ids_are_unique_and_the_run_is_deterministic() -> None:
    def once() -> list[bytes]:
        server = make_server(seed=5, emitter=LabelEmitter(3.0, 0.5, seed=5))
        server.apply({"1": 0.5, "2": 0.5})
        out = []
        for _, preds, labels in server.run(20, 50, T0):
            out += [encode(p) for p in preds] + [encode(lab) for lab in labels]
        return out

    a, b = once(), once()
    assert a == b
    ids = [msgspec.json.decode(r)["id"] for r in a if b'"prediction"' in r[:30]]
    assert len(ids) == 1000 == len(set(ids))


def test_a_regression_changes_exactly_the_chosen_version() -> None:
    server = make_server()
    server.apply({"1": 0.5, "2": 0.5})
    server.regress(2, Regression(latency_factor=3.0, error_rate=0.2, flip_rate=0.25))
    preds = server.serve(20_000, T0)
    truth = server.world.prob(rows_of(server, preds), T0)
    by = {v: [i for i, p in enumerate(preds) if p.version == v] for v in ("1", "2")}
    for v, idx in by.items():
        lat = np.median([preds[i].latency_ms for i in idx])
        errs = sum(preds[i].error is not None for i in idx)
        flips = sum(abs(float(preds[i].score) - truth[i]) > 1e-5 for i in idx)  # type: ignore[arg-type]
        if v == "1":
            assert lat == pytest.approx(20.0, rel=0.05) and errs == 0 and flips == 0
        else:
            assert lat == pytest.approx(60.0, rel=0.05)
            assert within(errs, len(idx), 0.2) and within(flips, len(idx), 0.25)
    flipped = [p for p in preds if p.version == "2" and p.prediction != int(p.score > 0.5)]  # type: ignore[operator]
    assert flipped == []  # the answer follows the (flipped) score
    server.regress(2, None)
    assert all(p.error is None for p in server.serve(2000, T0))


def test_regression_specs_parse_with_clear_errors() -> None:
    assert Regression.parse("3:latency=2.0,errors=0.05,flip=0.1") == (
        "3",
        Regression(2.0, 0.05, 0.1),
    )
    assert Regression.parse("2:flip=1") == ("2", Regression(flip_rate=1.0))
    for bad, msg in [
        ("3", "VERSION:"),
        ("3:speed=2", "unknown"),
        ("3:errors=x", "number"),
        ("3:errors=2", r"\[0, 1\]"),
        ("3:latency=0", "> 0"),
    ]:
        with pytest.raises(ValueError, match=msg):
            Regression.parse(bad)


def test_labels_come_after_the_delay_for_the_fraction_each_once() -> None:
    emitter = LabelEmitter(delay_s=7.5, fraction=0.6, seed=1)
    server = make_server(emitter=emitter)
    server.apply({"1": 1.0})
    preds: dict[str, Prediction] = {}
    labels: list[tuple[float, Label]] = []
    prev_end = T0
    for end, ps, ls in server.run(120, 40, T0, step_s=2.0):
        preds.update((p.id, p) for p in ps)
        for lab in ls:
            assert prev_end < lab.ts <= end  # released at the first step it is due, not before
        labels += [(end, lab) for lab in ls]
        prev_end = end
    assert len(preds) == 4800
    ids = [lab.id for _, lab in labels]
    assert len(ids) == len(set(ids))
    for _, lab in labels:
        assert lab.ts == pytest.approx(preds[lab.id].ts + 7.5) and lab.label in (0, 1)
    late = sum(p.ts + 7.5 > prev_end for p in preds.values())
    assert within(len(labels) + emitter.pending, len(preds), 0.6) and emitter.pending <= late
    assert emitter.due(prev_end + 100) and emitter.pending == 0 and emitter.due(1e10) == []
    with pytest.raises(ValueError):
        LabelEmitter(1.0, 1.5)


def test_emitted_events_decode_with_driftds_decoders(tmp_path: Path) -> None:
    server = make_server(emitter=LabelEmitter(1.0, 1.0))
    server.apply({"1": 0.5, "2": 0.5})
    server.regress(1, Regression(error_rate=0.5))
    sink = JsonlSink(tmp_path / "sub" / "events.jsonl")
    for _, preds, labels in server.run(10, 20, T0):
        sink.write(preds, labels)
    sink.close()
    kinds: Counter[str] = Counter()
    for line in (tmp_path / "sub" / "events.jsonl").read_bytes().splitlines():
        kind = msgspec.json.decode(line)["kind"]
        kinds[kind] += 1
        if kind == "prediction":
            p = decode_prediction(line)
            assert p == msgspec.json.decode(line, type=Prediction) and p.model == "fraud"
        else:
            assert isinstance(decode_label(line), Label)
    assert kinds["prediction"] == 200 and kinds["label"] >= 180


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append((topic, key, value))


def test_kafka_sink_keys_predictions_and_labels_by_id() -> None:
    server = make_server(emitter=LabelEmitter(0.0, 1.0))
    server.apply({"1": 1.0})
    producer = FakeProducer()
    sink = KafkaSink("unused:9092", "preds", "labels", producer=producer)
    for _, preds, labels in server.run(2, 10, T0):
        sink.write(preds, labels)
    by_topic = Counter(t for t, _, _ in producer.sent)
    assert by_topic == {"preds": 20, "labels": 20}
    for _, key, value in producer.sent:
        assert msgspec.json.decode(value)["id"] == key.decode()


def test_control_messages_as_deployments_or_outbox_events() -> None:
    d = Deployment(
        model="fraud", ts=T0, weights={"1": 0.9, "2": 0.1}, reason="canary", decision_id="c1"
    )
    assert parse_control(encode(d), "fraud") == d
    assert parse_control(encode(d), "other") is None
    outbox = {
        "event": "deployment",
        "model": "fraud",
        "ts": T0,
        "actor": "driftd",
        "weights": {"2": 1.0},
        "decision_id": "c2",
    }
    got = parse_control(msgspec.json.encode(outbox), "fraud")
    assert got is not None and got.weights == {"2": 1.0} and got.decision_id == "c2"
    assert parse_control(msgspec.json.encode({**outbox, "event": "alias_moved"}), "fraud") is None
    assert parse_control(msgspec.json.encode({**outbox, "weights": {"2": 0.5}}), "fraud") is None
    assert parse_control(b"not json", "fraud") is None
    assert parse_control(None, "fraud") is None


# -- a real registered tabular model -------------------------------------------------------


def train_and_register(tmp_path: Path, world: World, db_url: str) -> Any:
    """Train a tiny tabular model on the world's data and register it (version 1)."""
    from driftd.db import make_engine, upgrade
    from driftd.registry import Registry
    from driftd.retrain import tabular
    from driftd.retrain.repro import file_sha256
    from driftd.retrain.snapshot import SnapshotSpec, TimeRange, make_snapshot
    from driftd.retrain.store import LabeledRows, LabeledStore
    from driftd.retrain.trainer import TrainRequest

    n, k = 3000, world.n_features
    ts = T0 + np.arange(n, dtype=np.float64)
    x = world.features(n, ts)
    rows = LabeledRows(
        ids=[f"r{i}" for i in range(n)],
        ts=ts,
        label_ts=ts + 1,
        version=np.zeros(n, np.int32),
        version_names=["0"],
        numeric=x[:, :k],
        numeric_names=world.numeric_names,
        categorical=x[:, k:].astype(np.int32),
        categorical_names=list(world.categories),
        categorical_vocabs=[list(v) for v in world.categories.values()],
        prediction=np.zeros(n),
        score=np.full(n, np.nan),
        label=world.labels(x, ts).astype(np.float64),
    )
    store = LabeledStore(tmp_path / "store")
    store.append("fraud", rows)
    store.flush()
    snap = make_snapshot(store, SnapshotSpec("fraud", TimeRange(0, 2e9)), tmp_path / "snap")
    params = {"hidden": [32], "batch_size": 256, "lr": 3e-3, "epochs": 4}
    result = tabular.train(
        TrainRequest(snap.path, snap.sha256, "binary", params, 7, "cpu", True, tmp_path / "out")
    )
    engine = make_engine(db_url)
    upgrade(engine)
    registry = Registry(engine)
    registry.register_version(
        "fraud",
        result.artifact.resolve().as_uri(),
        file_sha256(result.artifact),
        result.artifact.stat().st_size,
        "test",
    )
    return registry


def test_serves_a_registered_tabular_model_and_the_cli_runs(tmp_path: Path) -> None:
    from driftd.sim.cli import initial_version, serve_sim

    world = World(4, 2, None)
    db = tmp_path / "reg.db"
    registry = train_and_register(tmp_path, world, f"sqlite:///{db}")
    assert initial_version(registry, "fraud") == "1"  # the only version
    registry.promote("fraud", 1, "staging", "test")
    registry.promote("fraud", 1, "production", "test")
    assert initial_version(registry, "fraud") == "1"  # the champion
    server = ModelServer(world, registry, "fraud", emitter=LabelEmitter(0.0, 1.0))
    assert server.load(1) == "1" and server.load("1") == "1"  # cached
    server.apply({"1": 1.0})
    preds = server.serve(2000, T0)
    labels = server.emitter.due(T0) if server.emitter else []
    y = {lab.id: lab.label for lab in labels}
    acc = np.mean([p.prediction == y[p.id] for p in preds])
    assert acc > 0.65 and {p.version for p in preds} == {"1"}

    config = tmp_path / "driftd.toml"
    out = tmp_path / "events.jsonl"
    feats = ", ".join(
        [f'f{j} = "numeric"' for j in range(4)]
        + ['country = "categorical"', 'device = "categorical"']
    )
    config.write_text(
        f'[source]\nkind = "file"\npaths = ["{out}"]\n[checkpoint]\nurl = "sqlite:///{db}"\n'
        f"[models.fraud]\nfeatures = {{ {feats} }}\n"
        f'[registry]\nartifact_roots = ["{tmp_path}"]\n'  # where the model was trained
    )
    res = CliRunner().invoke(
        serve_sim,
        [
            "--config",
            str(config),
            "--rate",
            "200",
            "--duration",
            "1.0",
            "--label-delay",
            "0",
            "--regress",
            "1:latency=2",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = out.read_bytes().splitlines()
    kinds = Counter(msgspec.json.decode(line)["kind"] for line in lines)
    assert 100 <= kinds["prediction"] <= 200 and kinds["label"] >= 100
    assert "--regress" in CliRunner().invoke(serve_sim, ["--help"]).output
