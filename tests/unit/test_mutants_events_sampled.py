"""Events a sampled mutation run found unchecked: prediction heads are immutable, a head
without class scores has none (not an empty value), and timestamps past 1e11 are invalid."""

from __future__ import annotations

import msgspec
import pytest

from driftd.contracts.events import DecodeFailed, PredictionHead, decode_prediction

RAW = (
    b'{"kind":"prediction","id":"p1","model":"m","version":"1","ts":1.5,"features":{},'
    b'"prediction":1}'
)


def test_a_head_without_scores_has_none_and_cannot_be_changed() -> None:
    head = msgspec.json.decode(RAW, type=PredictionHead)
    assert head.scores is None and head.score is None and head.latency_ms is None
    with pytest.raises(AttributeError):
        head.id = "p2"  # type: ignore[misc]


def test_timestamps_up_to_1e11_decode_and_later_ones_are_invalid() -> None:
    assert decode_prediction(RAW.replace(b'"ts":1.5', b'"ts":1e11')).ts == 1e11
    with pytest.raises(DecodeFailed) as info:
        decode_prediction(RAW.replace(b'"ts":1.5', b'"ts":1.5e11'))
    assert info.value.reason == "invalid_value"
