"""Properties of the decoders: bad events are isolated, and batching changes no answer.

Bad events here are bad by construction (each mutation has one expected dead-letter reason),
so every check is exact: which events are dead-lettered, why, and what the rest counts to.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from driftd.config import IngestSettings, JoinSettings, ModelSettings
from driftd.contracts.events import (
    DEAD_LETTER_REASONS,
    DecodeFailed,
    EventHead,
    LabelHead,
    PredictionHead,
)
from driftd.daemon.abc import RawChunk, Stream
from driftd.daemon.columns import ModelSchema
from driftd.daemon.decode import decode_many, single
from driftd.daemon.pipeline import Pipeline

MAX_BYTES = 1024
MODELS = {
    "m": ModelSettings(features={"x": "numeric", "c": "categorical"}, max_label_delay_s=100.0)
}
PROPS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


T0 = 1_767_225_600.0  # event times are offsets from here: join.min_ts refuses 1970


def event(kind: str, id_: str, ts: float, with_kind: bool = True) -> dict[str, Any]:
    if kind == "prediction":
        obj: dict[str, Any] = {
            "kind": "prediction",
            "id": id_,
            "model": "m",
            "version": "v1",
            "ts": T0 + ts,
            "features": {"x": ts / 7, "c": "a"},
            "prediction": 1,
            "score": 0.25,
        }
    else:
        obj = {"kind": "label", "id": id_, "model": "m", "ts": T0 + ts + 1.0, "label": 0}
    if not with_kind:
        del obj["kind"]
    return obj


def encode(obj: dict[str, Any], literal: tuple[tuple[str, ...], bytes] | None = None) -> bytes:
    """JSON for obj; ``literal`` puts raw bytes (bad UTF-8, 1e400) at a key path."""
    if literal is None:
        return msgspec.json.encode(obj)
    path, raw = literal
    obj = json.loads(json.dumps(obj))
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "@@literal@@"
    return msgspec.json.encode(obj).replace(b'"@@literal@@"', raw)


REQUIRED = {
    "prediction": ["id", "model", "version", "ts", "features", "prediction"],
    "label": ["id", "model", "ts", "label"],
}
WRONG_TYPES: dict[tuple[str, ...], list[Any]] = {
    ("id",): [5, None, [], {}],
    ("model",): [1, [], None],
    ("ts",): ["x", [1], {}, True, None],
    ("version",): [1.5, {}],
    ("features",): [[1], "x", 3, None],
    ("features", "x"): ["high", [1], {}, True],
    ("features", "c"): [[1], {}, 1.5, False],
    ("prediction",): [[1], {}, None, True],
    ("label",): [[1], {}, None, False],
}
_RANGE_COMMON: dict[tuple[str, ...], list[Any]] = {
    ("ts",): [-1.0, 1e12],
    ("id",): ["", "x" * 513],
    ("model",): [""],
}
OUT_OF_RANGE: dict[str, dict[tuple[str, ...], list[Any]]] = {
    "prediction": _RANGE_COMMON
    | {("version",): [""], ("latency_ms",): [-0.5], ("scores",): [{"a": 1.5}, {"a": -0.1}]},
    "label": _RANGE_COMMON,
}
HUGE = [b"1e400", b"-1e400", b"1" + b"0" * 40]
BAD_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"ok\xe2\x82"]
STRINGS = {"prediction": [("id",), ("model",), ("version",), ("features", "c")], "label": [("id",)]}


def _applies(path: tuple[str, ...], kind: str) -> bool:
    return path[0] in event(kind, "x", 0.0)


@st.composite
def bad_event(draw: st.DrawFn, kind: str, id_: str, with_kind: bool) -> tuple[bytes, str]:
    """A mutation of a valid event that must be dead-lettered, and the reason it must get."""
    obj = event(kind, id_, 1000.0 + draw(st.integers(0, 50)), with_kind)
    kinds = [
        "truncate",
        "wrong_type",
        "unknown_field",
        "missing_field",
        "out_of_range",
        "huge_number",
        "not_utf8",
        "newline_in_string",
        "unknown_model",
        "oversized",
        "not_an_object",
        "blank",
    ]
    if kind == "prediction":
        kinds.append("unknown_feature")
    if with_kind:
        kinds.append("wrong_kind")
    mutation = draw(st.sampled_from(kinds))
    if mutation == "truncate":
        raw = encode(obj)
        return raw[: draw(st.integers(0, len(raw) - 1))], "malformed_json"
    if mutation == "wrong_type":
        path = draw(st.sampled_from([p for p in WRONG_TYPES if _applies(p, kind)]))
        value = msgspec.json.encode(draw(st.sampled_from(WRONG_TYPES[path])))
        return encode(obj, (path, value)), "schema"
    if mutation == "unknown_field":
        obj[draw(st.sampled_from(["zz", "Kind", "labels", "feature"]))] = 1
        return encode(obj), "schema"
    if mutation == "missing_field":
        del obj[draw(st.sampled_from(REQUIRED[kind]))]
        return encode(obj), "schema"
    if mutation == "out_of_range":
        ranges = OUT_OF_RANGE[kind]
        path = draw(st.sampled_from(sorted(ranges)))
        value = msgspec.json.encode(draw(st.sampled_from(ranges[path])))
        return encode(obj, (path, value)), "invalid_value"
    if mutation == "huge_number":
        # Beyond float64 anywhere; a 41-digit integer is a fine float, but not a timestamp.
        target = {"prediction": ("prediction",), "label": ("label",)}[kind]
        paths = [target] + ([("features", "x")] if kind == "prediction" else [])
        path = draw(st.sampled_from([("ts",), *paths]))
        number = draw(st.sampled_from(HUGE if path == ("ts",) else HUGE[:2]))
        return encode(obj, (path, number)), "invalid_value"
    if mutation == "not_utf8":
        path = draw(st.sampled_from(STRINGS[kind]))
        return encode(obj, (path, b'"' + draw(st.sampled_from(BAD_UTF8)) + b'"')), "not_utf8"
    if mutation == "newline_in_string":
        return encode(obj, (("id",), b'"a\nb"')), "malformed_json"
    if mutation == "unknown_model":
        obj["model"] = draw(st.sampled_from(["zz", "M", "m ", "other"]))
        return encode(obj), "unknown_model"
    if mutation == "oversized":
        obj["zz"] = "x" * MAX_BYTES
        return encode(obj), "oversized"
    if mutation == "not_an_object":
        return draw(st.sampled_from([msgspec.json.encode([obj]), b"5", b'"t"', b"null"])), "schema"
    if mutation == "blank":
        return draw(st.sampled_from([b"", b" ", b"\t", b"\r", b"  \r"])), "malformed_json"
    if mutation == "unknown_feature":
        obj["features"]["zz"] = 1.0
        return encode(obj), "unknown_feature"
    assert mutation == "wrong_kind"
    obj["kind"] = draw(st.sampled_from(["other", "Label", 5]))
    return encode(obj), "invalid_value"


KINDS: dict[Stream, list[str]] = {
    "mixed": ["prediction", "label"],
    "predictions": ["prediction"],
    "labels": ["label"],
}


@st.composite
def chunk_plan(draw: st.DrawFn, stream: Stream, with_kind: bool | None) -> dict[str, Any]:
    """Good events (unique ids, labels for some predictions) and bad ones, shuffled."""
    n_pred = draw(st.integers(0, 12)) if "prediction" in KINDS[stream] else 0
    n_label = {"mixed": n_pred, "predictions": 0, "labels": 12}[stream]
    n_label = draw(st.integers(0, n_label))
    flag = st.booleans() if with_kind is None else st.just(with_kind)
    good: list[bytes] = []
    for i in range(n_pred):
        raw = encode(event("prediction", f"g{i}", 1000.0 + i, draw(flag)))
        pretty = draw(st.integers(0, 3)) == 0  # embedded newlines; else the chunk may be
        good.append(msgspec.json.format(raw, indent=2) if pretty else raw)  # newline-free
    good += [encode(event("label", f"g{i}", 1000.0 + i, draw(flag))) for i in range(n_label)]
    n_bad = draw(st.integers(0, 10))
    bad = [
        draw(bad_event(draw(st.sampled_from(KINDS[stream])), f"b{j}", draw(flag)))
        for j in range(n_bad)
    ]
    items = [(raw, None) for raw in good] + bad
    order = draw(st.permutations(range(len(items))))
    return {
        "items": [items[k] for k in order],
        "predictions": n_pred,
        "labels": n_label,
        "joined": n_label if stream == "mixed" else 0,
    }


def run(stream: Stream, plan: dict[str, Any]) -> None:
    p = Pipeline(MODELS, IngestSettings(max_event_bytes=MAX_BYTES), JoinSettings())
    raws = [raw for raw, _ in plan["items"]]
    positions = [100 + 3 * k for k in range(len(raws))]
    out = p.process(RawChunk(2, stream, "topic", raws, positions, {"topic": 999}))

    expected = {positions[k]: reason for k, (_, reason) in enumerate(plan["items"]) if reason}
    got = {d.position.offset: d.reason for d in out.dead_letters}
    assert len(out.dead_letters) == len(got) == len(expected)  # exactly one letter per bad event
    assert got == expected
    for d in out.dead_letters:
        k = positions.index(d.position.offset)
        assert d.raw == raws[k]
        assert (d.position.source, d.position.partition) == ("topic", 2)
        assert d.reason in DEAD_LETTER_REASONS
    assert out.join_deltas.get("m", Counter()) == Counter(
        predictions=plan["predictions"], labels=plan["labels"], joined=plan["joined"]
    )
    assert p.summary()["dead_lettered"]["by_reason"] == dict(
        sorted(Counter(expected.values()).items())
    )
    assert p.partition(2).offsets == {"topic": 999}


@PROPS
@given(data=st.data(), stream=st.sampled_from(["mixed", "predictions", "labels"]))
def test_bad_events_are_dead_lettered_and_good_ones_all_processed(
    data: st.DataObject, stream: Stream
) -> None:
    run(stream, data.draw(chunk_plan(stream, True if stream == "mixed" else None)))


@PROPS
@given(plan=chunk_plan("mixed", with_kind=False))
def test_the_same_holds_for_events_without_kind_on_a_mixed_stream(plan: dict[str, Any]) -> None:
    run("mixed", plan)


@PROPS
@given(
    garbage=st.lists(st.binary(max_size=300), max_size=12),
    n_good=st.integers(0, 8),
    rnd=st.randoms(use_true_random=False),
)
def test_arbitrary_bytes_never_escape_process(garbage: list[bytes], n_good: int, rnd: Any) -> None:
    good = [encode(event("prediction", f"g{i}", 1000.0 + i)) for i in range(n_good)]
    good += [encode(event("label", f"g{i}", 1000.0 + i)) for i in range(n_good)]
    raws = good + garbage
    rnd.shuffle(raws)
    p = Pipeline(MODELS, IngestSettings(max_event_bytes=MAX_BYTES), JoinSettings())
    out = p.process(RawChunk(0, "mixed", "t", raws, list(range(len(raws))), {}))
    letters = {d.position.offset: d for d in out.dead_letters}
    assert len(letters) == len(out.dead_letters)
    for pos, d in letters.items():
        assert d.raw == raws[pos]
        assert raws[pos] not in good
        assert d.reason in DEAD_LETTER_REASONS
    # Every event is dead-lettered or counted, once.
    counted = out.join_deltas.get("m", Counter())
    total = counted["predictions"] + counted["labels"] + counted["duplicates"]
    assert len(letters) + total == len(raws)
    for pos, raw in enumerate(raws):
        try:
            is_object = isinstance(json.loads(raw.decode("utf-8")), dict)
        except (UnicodeDecodeError, ValueError):
            is_object = False
        if not is_object:
            assert pos in letters
    assert counted["joined"] >= n_good


# -- decode_many against one-by-one decoding -----------------------------------------------

FEATURES = ModelSchema("m", MODELS["m"]).strict_decoder
DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "mixed": msgspec.json.Decoder(EventHead),
    "predictions": msgspec.json.Decoder(PredictionHead),
    "labels": msgspec.json.Decoder(LabelHead),
    "features": FEATURES,
}
# Bytes that can neither start nor finish a JSON value: garbage that stays one bad event.
INERT = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if chr(c) not in '0123456789-"{}[]:,tfnlrue\n')
)


def reference(decoder: msgspec.json.Decoder[Any], raws: list[bytes]) -> tuple[list[Any], list[Any]]:
    one = single(decoder)
    values, failures = [], []
    for i, raw in enumerate(raws):
        try:
            values.append(one(raw))
        except DecodeFailed as exc:
            values.append(None)
            failures.append((i, exc.reason, exc.detail))
    return values, failures


def batched(
    decoder: msgspec.json.Decoder[Any], raws: list[bytes], chunk: int
) -> tuple[list[Any], list[Any]]:
    values, failures = decode_many(decoder, raws, single(decoder), chunk=chunk)
    return values, [(i, exc.reason, exc.detail) for i, exc in failures]


def _same(a: Any, b: Any) -> bool:
    """Equality where msgspec.Raw compares by content."""
    if isinstance(a, msgspec.Raw) or isinstance(b, msgspec.Raw):
        return bytes(a) == bytes(b)
    if isinstance(a, msgspec.Struct) and type(a) is type(b):
        return all(_same(getattr(a, f), getattr(b, f)) for f in a.__struct_fields__)
    return bool(a == b)


def assert_matches_reference(decoder: msgspec.json.Decoder[Any], raws: list[bytes]) -> None:
    ref_values, ref_failures = reference(decoder, raws)
    for chunk in (1, 3, 128):
        values, failures = batched(decoder, raws, chunk)
        where = f"chunk={chunk}"
        assert failures == ref_failures, where
        assert len(values) == len(ref_values)
        assert all(_same(a, b) for a, b in zip(values, ref_values, strict=True)), where


@st.composite
def one_text_per_raw(draw: st.DrawFn, decoder: str) -> list[bytes]:
    """Good events, events bad by construction, and inert garbage: each at most one value."""
    raws: list[bytes] = []
    for i in range(draw(st.integers(0, 140))):
        what = draw(st.sampled_from(["good", "good", "bad", "garbage"]))
        kind = draw(st.sampled_from(["prediction", "label"]))
        obj = event(kind, f"e{i}", float(i), draw(st.booleans()))
        if decoder == "features":
            obj = obj.get("features", {"x": i})
        if what == "good":
            raw = encode(obj)
            pretty = draw(st.integers(0, 9)) == 0
            raws.append(msgspec.json.format(raw, indent=1) if pretty else raw)
        elif what == "bad":
            raws.append(draw(bad_event(kind, f"b{i}", draw(st.booleans())))[0])
        else:
            raws.append(draw(INERT))
    return raws


@settings(PROPS, max_examples=100)
@given(data=st.data(), decoder=st.sampled_from(sorted(DECODERS)))
def test_decode_many_gives_the_same_values_and_failures_as_one_by_one(
    data: st.DataObject, decoder: str
) -> None:
    assert_matches_reference(DECODERS[decoder], data.draw(one_text_per_raw(decoder)))


@st.composite
def values_across_lines(draw: st.DrawFn) -> list[bytes]:
    """Raws that hold several JSON values, or part of one, next to blank or partial raws."""
    ev = [
        encode(event(draw(st.sampled_from(["prediction", "label"])), f"v{i}", i)) for i in range(3)
    ]
    sep = draw(st.sampled_from([b" ", b"", b"\t", b"  "]))
    pattern = draw(st.sampled_from(["two-and-blank", "three-and-blanks", "split"]))
    if pattern == "two-and-blank":
        group = [ev[0] + sep + ev[1], draw(st.sampled_from([b"", b" ", b"\r"]))]
    elif pattern == "three-and-blanks":
        group = [ev[0] + sep + ev[1] + sep + ev[2], b"", b" "]
    else:
        # Cut an event after a comma; the rest shares its raw with a whole event.
        commas = [k + 1 for k, c in enumerate(ev[0]) if c == ord(",")]
        k = draw(st.sampled_from(commas))
        group = [ev[0][:k], ev[0][k:] + sep + ev[1]]
    good = [encode(event("prediction", f"g{i}", float(i))) for i in range(draw(st.integers(0, 4)))]
    at = draw(st.integers(0, len(good)))
    return good[:at] + group + good[at:]


@settings(PROPS, max_examples=50)
@given(raws=values_across_lines())
@example(
    raws=[encode(event("prediction", "a", 1.0)) + b" " + encode(event("label", "a", 1.0)), b" "]
)
def test_decode_many_does_not_pair_values_with_the_wrong_raw(raws: list[bytes]) -> None:
    assert_matches_reference(DECODERS["mixed"], raws)
