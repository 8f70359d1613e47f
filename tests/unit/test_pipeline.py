"""Pipeline.process: decode, validate, join and monitor chunks; snapshot and restore state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import pytest

from driftd.config import IngestSettings, JoinSettings, ModelSettings
from driftd.contracts.events import DEAD_LETTER_REASONS
from driftd.contracts.monitor import MonitorBatch
from driftd.daemon import state_codec
from driftd.daemon.abc import Lag, RawChunk, Stream
from driftd.daemon.columns import ModelSchema
from driftd.daemon.pipeline import ChunkOutcome, Pipeline
from driftd.daemon.summary import JOIN_KEYS
from driftd.errors import StateVersionError
from driftd.sim import synth

MakePipeline = Callable[..., Pipeline]
_COUNTERS = JOIN_KEYS


def feed(
    pipeline: Pipeline,
    lines: Sequence[bytes],
    size: int,
    source: str = "events.jsonl",
    stream: Stream = "mixed",
    partition: int = 0,
    first_line: int = 1,
) -> list[ChunkOutcome]:
    """Process lines in chunks of ``size``; positions are line numbers from ``first_line``."""
    outs = []
    for i in range(0, len(lines), size):
        raws = list(lines[i : i + size])
        pos = list(range(first_line + i, first_line + i + len(raws)))
        resume = {source: pos[-1]}
        chunk = RawChunk(partition, stream, source, raws, pos, resume)
        outs.append(pipeline.process(chunk))
    return outs


def _expected(stream: synth.Stream) -> dict[str, Any]:
    return {k: stream.truth[k] for k in ("models", "dead_lettered")}


def _observed(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in ("models", "dead_lettered")}


# -- the generated stream ------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 500])
def test_any_chunk_size_gives_the_generator_truth(
    make_pipeline: MakePipeline, synth_stream: synth.Stream, size: int
) -> None:
    # The stream exercises every counter the join can move without overflowing.
    truth = synth_stream.truth["models"][synth.MODEL]
    assert all(v for k, v in truth.items() if k not in ("evicted", "dropped")), truth
    # A future timestamp is judged against the stream, not alone (see the tests below).
    stateless = set(DEAD_LETTER_REASONS) - {"future_timestamp"}
    assert set(synth_stream.truth["dead_lettered"]["by_reason"]) == stateless
    assert not any(b"\n" in line for line in synth_stream.lines)
    p = make_pipeline()
    feed(p, synth_stream.lines, size)
    summary = p.summary()
    assert _observed(summary) == _expected(synth_stream)
    assert summary["consumed"] == len(synth_stream.lines)
    assert summary["ignored"] == {"total": 0, "by_reason": {}}


def test_every_bad_line_is_dead_lettered_once_with_its_reason(
    make_pipeline: MakePipeline, synth_stream: synth.Stream
) -> None:
    p = make_pipeline()
    outs = feed(p, synth_stream.lines, 64, source="in.jsonl", partition=0)
    letters = [d for o in outs for d in o.dead_letters]
    assert Counter((d.raw, d.reason) for d in letters) == Counter(synth_stream.bad)
    for d in letters:
        assert d.position.source == "in.jsonl"
        assert d.position.partition == 0
        assert synth_stream.lines[d.position.offset - 1] == d.raw
        assert d.reason in DEAD_LETTER_REASONS
        assert d.detail


def test_outcome_deltas_add_up_to_the_summary(
    make_pipeline: MakePipeline, synth_stream: synth.Stream
) -> None:
    p = make_pipeline()
    outs = feed(p, synth_stream.lines, 100)
    total: Counter[str] = Counter()
    for o in outs:
        total.update(o.join_deltas.get(synth.MODEL, Counter()))
    counts = p.summary()["models"][synth.MODEL]
    for key, value in total.items():
        assert counts[key] == value
    assert sum(o.consumed for o in outs) == len(synth_stream.lines)


def test_monitors_see_each_new_prediction_join_and_expiry_once(
    synth_spec: synth.StreamSpec, synth_stream: synth.Stream
) -> None:
    seen: Counter[str] = Counter()
    ids: list[str] = []

    class Recording:
        def update(self, batch: MonitorBatch) -> Sequence[Any]:
            ids.extend(batch.predictions.ids)
            seen["joined"] += 0 if batch.joined is None else len(batch.joined)
            seen["expired"] += len(batch.expired_versions)
            return ()

        def state_dict(self) -> dict[str, Any]:
            return {}

        def load_state_dict(self, state: Mapping[str, Any]) -> None:
            pass

    def extra(name: str, schema: ModelSchema) -> list[Recording]:
        return [Recording()]

    features = {f"f{j}": "numeric" for j in range(synth_spec.n_features)}
    features |= dict.fromkeys(synth.CATEGORIES, "categorical")
    p = Pipeline(
        {
            synth.MODEL: ModelSettings(
                features=features, max_label_delay_s=synth_spec.max_label_delay_s
            )
        },
        IngestSettings(max_event_bytes=synth.MAX_EVENT_BYTES),
        JoinSettings(allowed_lateness_s=synth_spec.allowed_lateness_s),
        extra_monitors=extra,
    )
    feed(p, synth_stream.lines, 50)
    truth = synth_stream.truth["models"][synth.MODEL]
    assert len(ids) == len(set(ids)) == truth["predictions"]
    assert seen["joined"] == truth["joined"]
    assert seen["expired"] == truth["expired"]


# -- snapshots -----------------------------------------------------------------------------


def test_snapshot_restore_gives_identical_subsequent_behaviour(
    make_pipeline: MakePipeline, synth_stream: synth.Stream
) -> None:
    lines = synth_stream.lines
    half = len(lines) // 2
    original = make_pipeline()
    feed(original, lines[:half], 100)
    restored = make_pipeline()
    st = restored.restore(0, original.snapshot(0))
    assert st.offsets == original.partition(0).offsets
    assert st.consumed == half
    assert restored.summary() == original.summary()

    feed(original, lines[half:], 100, first_line=half + 1)
    feed(restored, lines[half:], 100, first_line=half + 1)
    assert restored.summary() == original.summary()
    assert restored.snapshot(0) == original.snapshot(0)
    assert _observed(restored.summary()) == _expected(synth_stream)


def test_restore_refuses_a_blob_of_another_kind(make_pipeline: MakePipeline) -> None:
    p = make_pipeline()
    with pytest.raises(StateVersionError):
        p.restore(0, state_codec.dumps("something.else", 1, {}))
    with pytest.raises(StateVersionError):
        p.restore(0, state_codec.dumps("driftd.partition", 999, {}))


def test_restore_drops_unknown_models_and_starts_new_ones_empty(
    make_pipeline: MakePipeline, synth_spec: synth.StreamSpec, synth_stream: synth.Stream
) -> None:
    p = make_pipeline()
    feed(p, synth_stream.lines[:300], 100)
    blob = p.snapshot(0)
    other = Pipeline(
        {"other": ModelSettings(features={"x": "numeric"})},
        IngestSettings(),
        JoinSettings(),
    )
    other.restore(0, blob)
    assert other.summary()["models"] == {"other": dict.fromkeys(_COUNTERS, 0)}
    assert other.summary()["consumed"] == 300


# -- hand-written events -------------------------------------------------------------------

MODELS = {"m": ModelSettings(features={"x": "numeric", "c": "categorical"}, max_label_delay_s=60)}
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def pred(i: int, model: str = "m", **extra: Any) -> bytes:
    obj = {
        "kind": "prediction",
        "id": f"p{i}",
        "model": model,
        "version": "1",
        "ts": T0 + i,
        "features": {"x": float(i), "c": "a"},
        "prediction": 1,
    } | extra
    return msgspec.json.encode({k: v for k, v in obj.items() if v is not ...})


def label(i: int, model: str = "m", **extra: Any) -> bytes:
    obj = {"kind": "label", "id": f"p{i}", "model": model, "ts": T0 + 1 + i, "label": 1} | extra
    return msgspec.json.encode({k: v for k, v in obj.items() if v is not ...})


def pipeline(**ingest: Any) -> Pipeline:
    return Pipeline(MODELS, IngestSettings(**ingest), JoinSettings())


def process(
    p: Pipeline, raws: list[bytes], stream: Stream = "mixed", part: int = 0
) -> ChunkOutcome:
    return p.process(RawChunk(part, stream, "t", raws, list(range(10, 10 + len(raws))), {"t": 9}))


def test_predictions_and_labels_join_within_one_chunk() -> None:
    p = pipeline()
    out = process(p, [label(1), pred(1), pred(2), label(2)])
    assert out.dead_letters == []
    assert out.consumed == 4
    assert out.join_deltas["m"] == Counter(predictions=2, labels=2, joined=2)


def test_kind_is_inferred_on_a_mixed_stream() -> None:
    p = pipeline()
    out = process(p, [pred(1, kind=...), label(1, kind=...)])
    assert out.dead_letters == []
    assert out.join_deltas["m"] == Counter(predictions=1, labels=1, joined=1)


def test_typed_streams_reject_the_other_kind() -> None:
    p = pipeline()
    out = process(p, [pred(1), label(1)], stream="predictions")
    assert [d.position.offset for d in out.dead_letters] == [11]
    out = process(p, [pred(2), label(2), label(1)], stream="labels")
    assert [d.position.offset for d in out.dead_letters] == [10]
    assert p.summary()["models"]["m"]["joined"] == 1


def test_unknown_model_dead_lettered_or_ignored_by_policy() -> None:
    out = process(pipeline(), [pred(1, model="nope"), label(2, model="nope"), pred(3)])
    assert [(d.reason, d.position.offset) for d in out.dead_letters] == [
        ("unknown_model", 10),
        ("unknown_model", 11),
    ]
    assert "'nope'" in out.dead_letters[0].detail
    p = pipeline(unknown_model="ignore")
    out = process(p, [pred(1, model="nope"), label(2, model="nope"), pred(3)])
    assert out.dead_letters == []
    assert out.ignored == Counter(unknown_model=2)
    assert p.summary()["ignored"] == {"total": 2, "by_reason": {"unknown_model": 2}}
    assert p.summary()["models"]["m"]["predictions"] == 1


def test_oversized_dead_lettered_or_ignored_by_policy() -> None:
    big = pred(1, error="x" * 200)
    ok = pred(2)
    limit = len(ok) + 1
    assert len(big) > limit
    out = process(pipeline(max_event_bytes=max(64, limit)), [big, ok])
    assert [(d.reason, d.raw) for d in out.dead_letters] == [("oversized", big)]
    assert out.join_deltas["m"]["predictions"] == 1
    p = pipeline(max_event_bytes=max(64, limit), oversized="ignore")
    out = process(p, [big, ok])
    assert out.dead_letters == []
    assert out.ignored == Counter(oversized=1)


def test_unknown_feature_dead_lettered_or_decoded_leniently() -> None:
    raw = pred(1, features={"x": 1.0, "c": "a", "extra": 3})
    out = process(pipeline(), [raw, pred(2)])
    assert [(d.reason, d.position.offset) for d in out.dead_letters] == [("unknown_feature", 10)]
    assert "extra" in out.dead_letters[0].detail
    assert out.join_deltas["m"]["predictions"] == 1
    p = pipeline(unknown_feature="ignore")
    out = process(p, [raw, pred(2)])
    assert out.dead_letters == []
    assert out.ignored == Counter(unknown_feature=1)
    assert out.join_deltas["m"]["predictions"] == 2


def test_bad_feature_values_are_dead_lettered_with_their_path() -> None:
    out = process(pipeline(), [pred(1, features={"x": "high", "c": "a"}), pred(2)])
    assert [d.reason for d in out.dead_letters] == ["schema"]
    assert "$.features.x" in out.dead_letters[0].detail


def test_a_chunk_records_its_resume_offsets() -> None:
    p = pipeline()
    p.process(RawChunk(0, "mixed", "t", [pred(1)], [1], {"t": 100, "t#line": 1}))
    p.process(RawChunk(0, "mixed", "t", [pred(2)], [2], {"t": 200, "t#line": 2}))
    assert p.partition(0).offsets == {"t": 200, "t#line": 2}


def test_partitions_keep_separate_state_and_the_summary_adds_them() -> None:
    p = pipeline()
    process(p, [pred(1), pred(2)], part=0)
    out = process(p, [label(1), pred(2)], part=1)
    # p1 is held in partition 0; partition 1 never saw it, and p2 is new there.
    assert out.join_deltas["m"] == Counter(predictions=1, labels=1)
    assert p.summary()["models"]["m"]["predictions"] == 3
    assert p.summary()["consumed"] == 4
    p.drop(1)
    assert p.summary()["consumed"] == 2


def test_empty_chunk() -> None:
    p = pipeline()
    out = p.process(RawChunk(0, "mixed", "t", [], [], {"t": 0}))
    assert (out.consumed, out.dead_letters) == (0, [])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (pred(1, kind=...).replace(b'"id":"p1"', b'"id":"p\xff1"'), "not_utf8"),
        (label(1, kind=...).replace(b'"model"', b'"mo\xc3del"'), "not_utf8"),
        (label(1, kind=...).replace(b'"ts":1767225602.0', b'"ts":1e400'), "invalid_value"),
        (pred(1, kind=...).replace(b'"prediction":1', b'"prediction":-1e400'), "invalid_value"),
        (label(1, kind=...) + b"trailing", "malformed_json"),
    ],
    ids=["bad-utf8-value", "bad-utf8-key", "huge-ts", "huge-prediction", "trailing-bytes"],
)
def test_events_without_kind_that_fail_to_decode_are_dead_lettered(raw: bytes, reason: str) -> None:
    # The mixed stream infers the kind of such events on a slower path; it must not raise.
    p = pipeline()
    out = process(p, [pred(2), raw, label(2)])
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [(11, reason)]
    assert out.join_deltas["m"] == Counter(predictions=1, labels=1, joined=1)


@pytest.mark.parametrize("blank", [b"", b" ", b"\r"], ids=["empty", "space", "cr"])
def test_two_events_on_one_line_beside_a_blank_line_are_both_dead_lettered(blank: bytes) -> None:
    # A producer that forgot a newline, next to an empty message.
    p = pipeline()
    out = process(p, [pred(1) + b" " + pred(2), blank])
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [
        (10, "malformed_json"),
        (11, "malformed_json"),
    ]
    assert p.summary()["models"]["m"]["predictions"] == 0


class ListSource:
    """A Source over prepared chunks, one per poll."""

    def __init__(self, chunks: list[RawChunk]) -> None:
        self.chunks = chunks

    def poll(self, timeout_s: float, max_records: int) -> list[RawChunk]:
        return [self.chunks.pop(0)] if self.chunks else []

    def seek(self, partition: int, offsets: dict[str, int]) -> None: ...
    def commit(self, partition: int, offsets: dict[str, int]) -> None: ...
    def lag(self) -> Lag:
        return Lag()

    def close(self) -> None: ...


def test_overflow_is_counted_and_logged(
    synth_stream: synth.Stream, caplog: pytest.LogCaptureFixture
) -> None:
    from driftd.config import PipelineSettings
    from driftd.daemon.checkpoint import MemoryCheckpointStore
    from driftd.daemon.runner import Runner
    from driftd.daemon.sinks import NullDeadLetterSink
    from tests.conftest import synth_models

    p = Pipeline(
        synth_models(synth.StreamSpec(n_features=4)), IngestSettings(), JoinSettings(max_pending=50)
    )
    runner = Runner(
        p,
        ListSource(
            [
                RawChunk(0, "mixed", "s", lines, list(range(i, i + 100)), {"s": i})
                for i in range(0, len(synth_stream.lines), 100)
                for lines in [synth_stream.lines[i : i + 100]]
            ]
        ),
        NullDeadLetterSink(),
        MemoryCheckpointStore(),
        PipelineSettings(),
    )
    runner.assign([0])
    with caplog.at_level("WARNING", logger="driftd.runner"):
        while runner.step():
            pass
    assert p.summary()["models"][synth.MODEL]["evicted"] > 0
    warnings = [r for r in caplog.records if "join store full" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited, not one per batch
    assert warnings[0].model == synth.MODEL  # type: ignore[attr-defined]


# -- event time: outliers never move the watermark -------------------------------------------


def _pending_stream() -> list[bytes]:
    """100 predictions over 30 s; the even ones get their label a second later."""
    lines = []
    for i in range(100):
        lines.append(pred(i, ts=T0 + 0.3 * i))
        if i % 2 == 0:
            lines.append(label(i, ts=T0 + 0.3 * i + 1))
    return lines


def test_a_far_future_label_expires_no_pending_join_and_is_dead_lettered() -> None:
    lines = _pending_stream()
    outlier = label(1, ts=T0 + 1e7)  # a valid label for a pending prediction, 115 days ahead
    p = pipeline()
    outs = feed(p, [*lines[:80], outlier, *lines[80:]], 25)
    letters = [d for o in outs for d in o.dead_letters]
    assert [(d.raw, d.reason) for d in letters] == [(outlier, "future_timestamp")]
    assert "ahead of the stream's time" in letters[0].detail
    assert "join.max_future_s = 3600" in letters[0].detail
    counts = p.summary()["models"]["m"]
    assert (counts["expired"], counts["joined"], counts["pending"]) == (0, 50, 50)
    assert counts["labels"] == 50 and counts["pending_labels"] == 0


def test_a_timestamp_before_min_ts_is_an_invalid_value() -> None:
    p = pipeline()
    out = process(p, [pred(1), pred(2, ts=0), label(3, ts=946684799.0), label(1)])
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [
        (11, "invalid_value"),
        (12, "invalid_value"),
    ]
    assert "before join.min_ts = 9.46685e+08" in out.dead_letters[0].detail
    assert out.join_deltas["m"] == Counter(predictions=1, labels=1, joined=1)


def test_following_live_the_wall_clock_bounds_even_the_first_event() -> None:
    now = T0 + 100.0
    p = Pipeline(MODELS, IngestSettings(), JoinSettings(), clock=lambda: now)
    out = process(p, [pred(1, ts=now + 3601), pred(2, ts=now + 3599), pred(3, ts=now)])
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [(10, "future_timestamp")]
    assert "ahead of the wall clock" in out.dead_letters[0].detail
    assert out.join_deltas["m"]["predictions"] == 2


def test_following_live_a_current_event_is_accepted_after_a_backlog() -> None:
    # The stream's time is a day behind the clock (a backlog read): current events pass.
    now = T0 + 86_400.0
    p = Pipeline(MODELS, IngestSettings(), JoinSettings(), clock=lambda: now)
    out = process(p, [pred(1), pred(2, ts=T0 + 43_200), pred(3, ts=now - 10)])
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [(11, "future_timestamp")]
    assert out.join_deltas["m"]["predictions"] == 2


@pytest.mark.parametrize("restart", [False, True])
def test_a_gap_in_the_stream_is_accepted_after_three_events_in_a_row(restart: bool) -> None:
    gap = T0 + 7200.0
    p = pipeline()
    process(p, [pred(i) for i in range(5)])
    out = process(p, [pred(10, ts=gap), pred(10, ts=gap), pred(11, ts=gap + 1)])
    assert [d.reason for d in out.dead_letters] == ["future_timestamp"] * 3
    if restart:  # the run of events ahead of the stream is part of the checkpoint
        blob = p.snapshot(0)
        p = pipeline()
        p.restore(0, blob)
    out = process(p, [pred(12, ts=gap + 2), pred(13, ts=gap + 3), label(12, ts=gap + 4)])
    assert out.dead_letters == []  # p10 twice is one id: p12 is the third event in a row
    assert out.join_deltas["m"]["predictions"] == 2
    assert p.summary()["models"]["m"]["joined"] == 1


def test_an_isolated_outlier_between_good_events_never_resyncs() -> None:
    p = pipeline()
    raws = []
    for i in range(6):
        raws += [pred(i), pred(100 + i, ts=T0 + 1e6 + i)]
    out = process(p, raws)
    assert [d.reason for d in out.dead_letters] == ["future_timestamp"] * 6
    assert out.join_deltas["m"]["predictions"] == 6


# -- events that contradict the model's task -------------------------------------------------


def _task_pipeline(task: str) -> Pipeline:
    models = {"m": ModelSettings(task=task, features={"x": "numeric", "c": "categorical"})}
    return Pipeline(models, IngestSettings(), JoinSettings())


def test_a_binary_score_outside_0_1_is_an_invalid_value_naming_field_value_and_range() -> None:
    p = pipeline()
    out = process(p, [pred(1, score=7.5), pred(2, score=-1), pred(3, score=0.3), pred(4)])
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [
        (10, "invalid_value"),
        (11, "invalid_value"),
    ]
    detail = out.dead_letters[0].detail
    assert "score 7.5" in detail and "'m'" in detail and "binary" in detail and "[0, 1]" in detail
    assert out.join_deltas["m"]["predictions"] == 2


@pytest.mark.parametrize(
    ("task", "bad", "good"),
    [
        ("binary", ["yes", 2, 0.5, "1"], [0, 1, 1.0]),
        ("multiclass", [2.5], ["cat", 2, 0]),
        ("regression", ["yes", "1.5"], [2.5, -3, 0]),
    ],
)
def test_a_prediction_of_the_wrong_kind_for_the_task_is_an_invalid_value(
    task: str, bad: list[Any], good: list[Any]
) -> None:
    p = _task_pipeline(task)
    raws = [pred(i, prediction=v, score=...) for i, v in enumerate(bad + good)]
    out = process(p, raws)
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [
        (10 + i, "invalid_value") for i in range(len(bad))
    ]
    assert f"prediction {bad[0]!r}" in out.dead_letters[0].detail
    assert f"a {task} model's prediction is" in out.dead_letters[0].detail
    assert out.join_deltas["m"]["predictions"] == len(good)


def test_a_label_of_the_wrong_kind_for_the_task_is_an_invalid_value() -> None:
    p = pipeline()
    out = process(p, [pred(1), pred(2), label(1, label="yes"), label(2, label=0)])
    assert [(d.position.offset, d.reason) for d in out.dead_letters] == [(12, "invalid_value")]
    assert "label 'yes'" in out.dead_letters[0].detail
    assert out.join_deltas["m"] == Counter(predictions=2, labels=1, joined=1)


def test_a_missing_declared_feature_is_counted_as_missing_not_rejected() -> None:
    p = pipeline()
    raws = [
        pred(1, features={"x": 1.0}),
        pred(2, features={"c": "a"}),
        pred(3, features={"x": None, "c": None}),
        pred(4),
        pred(4, features={}),  # a duplicate: not counted again
    ]
    out = process(p, raws)
    assert out.dead_letters == []
    assert out.join_deltas["m"]["predictions"] == 4
    assert p.partition(0).models["m"].missing == Counter(x=2, c=2)
    restored = pipeline()
    restored.restore(0, p.snapshot(0))
    assert restored.partition(0).models["m"].missing == Counter(x=2, c=2)
