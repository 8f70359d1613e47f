"""The wire contract: strict Structs, one decode function per type, classified failures."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from driftd.contracts.events import (
    DEAD_LETTER_REASONS,
    DeadLetter,
    DecodeFailed,
    Deployment,
    Label,
    LabelHead,
    Position,
    Prediction,
    PredictionHead,
    classify,
    decode_deployment,
    decode_label,
    decode_prediction,
    encode,
)

PRED = Prediction(
    id="p1",
    model="fraud",
    version="3",
    ts=1_700_000_000.5,
    features={"amount": 12.5, "country": "de", "missing": None},
    prediction="fraud",
    scores={"fraud": 0.75, "ok": 0.25},
    score=0.75,
    latency_ms=3.25,
    error=None,
    segment={"region": "eu"},
)
LABEL = Label(id="p1", model="fraud", ts=1_700_000_010.0, label="ok")


def _obj(event: Prediction | Label) -> dict[str, object]:
    return msgspec.json.decode(encode(event))


def _raw(obj: dict[str, object]) -> bytes:
    return msgspec.json.encode(obj)


def test_encode_carries_the_kind_tag() -> None:
    assert _obj(PRED)["kind"] == "prediction"
    assert _obj(LABEL)["kind"] == "label"


@pytest.mark.parametrize(
    ("event", "decode"), [(PRED, decode_prediction), (LABEL, decode_label)], ids=["pred", "label"]
)
def test_round_trip(event: Prediction | Label, decode: Callable[[bytes], object]) -> None:
    assert decode(encode(event)) == event


def test_kind_is_optional_on_a_typed_topic() -> None:
    obj = _obj(PRED)
    del obj["kind"]
    assert decode_prediction(_raw(obj)) == PRED


def test_deployment_round_trip_and_weights_must_sum_to_one() -> None:
    dep = Deployment(
        model="fraud", ts=1.0, weights={"3": 0.9, "4": 0.1}, reason="canary", decision_id="d1"
    )
    assert decode_deployment(encode(dep)) == dep
    bad = msgspec.json.decode(encode(dep))
    bad["weights"] = {"3": 0.5, "4": 0.4}
    with pytest.raises(DecodeFailed) as info:
        decode_deployment(_raw(bad))
    assert info.value.reason == "invalid_value"
    assert "sum" in info.value.detail
    bad["weights"] = {}
    with pytest.raises(DecodeFailed) as info:
        decode_deployment(_raw(bad))
    assert info.value.reason == "invalid_value"


def test_heads_decode_the_same_fields_with_raw_features() -> None:
    head = msgspec.json.decode(encode(PRED), type=PredictionHead)
    assert msgspec.json.decode(head.features) == PRED.features
    for name in PredictionHead.__struct_fields__:
        if name != "features":
            assert getattr(head, name) == getattr(PRED, name)
    lhead = msgspec.json.decode(encode(LABEL), type=LabelHead)
    assert {f: getattr(lhead, f) for f in LabelHead.__struct_fields__} == {
        f: getattr(LABEL, f) for f in Label.__struct_fields__
    }


def _mutate(obj: dict[str, object], **changes: object) -> bytes:
    out = dict(obj)
    for key, value in changes.items():
        if value is ...:
            del out[key]
        else:
            out[key] = value
    return _raw(out)


@pytest.mark.parametrize(
    ("raw", "reason", "names"),
    [
        (_mutate(_obj(PRED), extra=1), "schema", "extra"),
        (_mutate(_obj(PRED), ts="yesterday"), "schema", "$.ts"),
        (_mutate(_obj(PRED), id=7), "schema", "$.id"),
        (_mutate(_obj(PRED), model=...), "schema", "model"),
        (_mutate(_obj(PRED), ts=-1), "invalid_value", "$.ts"),
        # Milliseconds instead of seconds: beyond the bound on epoch seconds.
        (_mutate(_obj(PRED), ts=1_700_000_000_000), "invalid_value", "$.ts"),
        (_mutate(_obj(PRED), id=""), "invalid_value", "$.id"),
        (_mutate(_obj(PRED), scores={"fraud": 1.5}), "invalid_value", "$.scores"),
        (_mutate(_obj(PRED), latency_ms=-0.1), "invalid_value", "$.latency_ms"),
        (_mutate(_obj(PRED), kind="label"), "invalid_value", "$.kind"),
        (encode(PRED)[:-3], "malformed_json", "truncated"),
        (b"not json", "malformed_json", "malformed"),
        (encode(PRED).replace(b'"p1"', b'"p\xff1"'), "not_utf8", "UTF-8"),
    ],
    ids=[
        "unknown-field",
        "wrong-type-ts",
        "wrong-type-id",
        "missing-field",
        "negative-ts",
        "millisecond-ts",
        "empty-id",
        "probability-above-1",
        "negative-latency",
        "wrong-kind",
        "truncated",
        "garbage",
        "invalid-utf8",
    ],
)
def test_decode_failures_are_classified(raw: bytes, reason: str, names: str) -> None:
    with pytest.raises(DecodeFailed) as info:
        decode_prediction(raw)
    assert info.value.reason == reason
    assert info.value.reason in DEAD_LETTER_REASONS
    assert names in info.value.detail


def test_label_decode_failures_are_classified() -> None:
    with pytest.raises(DecodeFailed) as info:
        decode_label(_mutate(_obj(LABEL), label=[1]))
    assert info.value.reason == "schema"
    with pytest.raises(DecodeFailed) as info:
        decode_label(_mutate(_obj(LABEL), label=...))
    assert info.value.reason == "schema"


def test_classify_maps_unicode_errors_to_not_utf8() -> None:
    try:
        b"\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        failed = classify(exc)
    assert failed.reason == "not_utf8"
    assert "UTF-8" in failed.detail


def test_dead_letter_round_trips_through_json() -> None:
    letter = DeadLetter(
        raw=b"\x00\xffbad", position=Position("preds", 3, 42), reason="schema", detail="d"
    )
    data = msgspec.json.encode(letter)
    assert msgspec.json.decode(data, type=DeadLetter) == letter
    # A position is compact on the wire: [source, partition, offset].
    assert msgspec.json.decode(data)["position"] == ["preds", 3, 42]


def test_dead_letter_rejects_an_unknown_reason() -> None:
    data = msgspec.json.encode(
        {"raw": "", "position": ["s", 0, 1], "reason": "because", "detail": ""}
    )
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(data, type=DeadLetter)
