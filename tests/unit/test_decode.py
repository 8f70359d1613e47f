"""decode_many: one msgspec call per chunk, and the same answer as decoding each event alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from driftd.contracts.events import DecodeFailed, EventHead, Label, Prediction, encode
from driftd.daemon.decode import decode_many, single

DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(EventHead)
ONE = single(DECODER)


def _pred(i: int) -> bytes:
    return encode(
        Prediction(
            id=f"p{i}",
            model="m",
            version="1",
            ts=float(i),
            features={"x": i / 7},
            prediction=i % 2,
        )
    )


def _label(i: int) -> bytes:
    return encode(Label(id=f"p{i}", model="m", ts=float(i) + 0.5, label=i % 3))


def _events(n: int) -> list[bytes]:
    return [_pred(i) if i % 3 else _label(i) for i in range(n)]


def _reference(raws: Sequence[bytes]) -> tuple[list[Any], list[tuple[int, str, str]]]:
    """Each event decoded on its own."""
    values: list[Any] = []
    failures = []
    for i, raw in enumerate(raws):
        try:
            values.append(ONE(raw))
        except DecodeFailed as exc:
            values.append(None)
            failures.append((i, exc.reason, exc.detail))
    return values, failures


def _batch(raws: Sequence[bytes], chunk: int) -> tuple[list[Any], list[tuple[int, str, str]]]:
    values, failures = decode_many(DECODER, raws, ONE, chunk=chunk)
    return values, [(i, exc.reason, exc.detail) for i, exc in failures]


@pytest.mark.parametrize("chunk", [1, 2, 3, 128])
def test_good_events_decode_like_one_by_one(chunk: int) -> None:
    raws = _events(300)
    values, failures = _batch(raws, chunk)
    assert failures == []
    assert values == _reference(raws)[0]


def test_empty_input() -> None:
    assert decode_many(DECODER, [], ONE) == ([], [])


BAD = {
    "truncated": _pred(99)[:-2],
    "wrong-type": _pred(99).replace(b'"ts":99.0', b'"ts":"x"'),
    "unknown-field": _pred(99)[:-1] + b',"extra":1}',
    "out-of-range": _pred(99).replace(b'"ts":99.0', b'"ts":-1.0'),
    "not-utf8": _pred(99).replace(b'"p99"', b'"p\xc399"'),
    "empty": b"",
    "blank": b"  ",
    "two-values": _pred(98) + b" " + _pred(99),
    "array": b"[1, 2]",
}


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
@pytest.mark.parametrize("chunk", [1, 4, 128])
def test_one_bad_event_anywhere_is_isolated(bad: bytes, chunk: int) -> None:
    good = _events(10)
    for at in range(len(good) + 1):
        raws = [*good[:at], bad, *good[at:]]
        values, failures = _batch(raws, chunk)
        assert [i for i, _, _ in failures] == [at]
        assert (values, failures) == _reference(raws)


@pytest.mark.parametrize("chunk", [1, 3, 128])
def test_many_bad_events_each_reported_once_in_index_order(chunk: int) -> None:
    good = _events(40)
    bad = list(BAD.values())
    raws: list[bytes] = []
    for i, g in enumerate(good):
        raws.append(g)
        if i % 3 == 0:
            raws.append(bad[i % len(bad)])
    raws += bad  # a run of bad events at the end
    values, failures = _batch(raws, chunk)
    assert (values, failures) == _reference(raws)
    assert [i for i, _, _ in failures] == sorted({i for i, _, _ in failures})


def test_event_with_embedded_newlines_decodes_like_its_compact_form() -> None:
    pretty = msgspec.json.format(_pred(5), indent=2)
    assert b"\n" in pretty
    raws = [_pred(4), pretty, _label(6)]
    values, failures = _batch(raws, 128)
    assert failures == []
    assert values == [ONE(_pred(4)), ONE(pretty), ONE(_label(6))]
    assert values[1].id == "p5"
    assert msgspec.json.decode(values[1].features) == {"x": 5 / 7}


def test_a_line_with_two_events_is_not_spread_over_a_blank_neighbour() -> None:
    # Each of these is malformed on its own; together they must not decode as two events.
    raws = [_pred(1) + b" " + _pred(2), b" "]
    values, failures = _batch(raws, 128)
    assert values == [None, None]
    assert [(i, reason) for i, reason, _ in failures] == [
        (0, "malformed_json"),
        (1, "malformed_json"),
    ]


def test_accepts_msgspec_raw_values() -> None:
    raws = [msgspec.Raw(r) for r in _events(5)]
    values, failures = decode_many(DECODER, raws, ONE)
    assert failures == []
    assert values == [ONE(bytes(r)) for r in raws]


def test_single_classifies_failures() -> None:
    with pytest.raises(DecodeFailed) as info:
        ONE(BAD["not-utf8"])
    assert info.value.reason == "not_utf8"
    with pytest.raises(DecodeFailed) as info:
        ONE(BAD["unknown-field"])
    assert info.value.reason == "schema"
