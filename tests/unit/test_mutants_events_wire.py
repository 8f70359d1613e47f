"""The wire form of deployment events and latencies a sampled mutation run found unchecked: a
deployment published as JSON carries the tag "kind": "deployment", and a latency below 1 ms is
valid."""

from __future__ import annotations

import json

from driftd.contracts.events import Deployment, decode_deployment, decode_prediction, encode

RAW_DEPLOYMENT = (
    b'{"kind":"deployment","model":"fraud","ts":1.5,"weights":{"1":0.9,"2":0.1},'
    b'"reason":"canary step","decision_id":"d1"}'
)


def test_a_deployment_is_published_and_read_with_its_kind_tag() -> None:
    event = decode_deployment(RAW_DEPLOYMENT)
    assert event == Deployment("fraud", 1.5, {"1": 0.9, "2": 0.1}, "canary step", "d1")
    assert json.loads(encode(event))["kind"] == "deployment"


def test_a_latency_below_one_millisecond_is_valid() -> None:
    raw = (
        b'{"kind":"prediction","id":"p1","model":"m","version":"1","ts":1.5,"features":{},'
        b'"prediction":1,"latency_ms":0.25}'
    )
    assert decode_prediction(raw).latency_ms == 0.25
