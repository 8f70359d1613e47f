"""Prediction heads a sampled mutation run found unchecked: they are immutable, and a head
without class scores has none (not an empty value)."""

from __future__ import annotations

import msgspec
import pytest

from driftd.contracts.events import PredictionHead

RAW = (
    b'{"kind":"prediction","id":"p1","model":"m","version":"1","ts":1.5,"features":{},'
    b'"prediction":1}'
)


def test_a_head_without_scores_has_none_and_cannot_be_changed() -> None:
    head = msgspec.json.decode(RAW, type=PredictionHead)
    assert head.scores is None and head.score is None and head.latency_ms is None
    with pytest.raises(AttributeError):
        head.id = "p2"  # type: ignore[misc]
