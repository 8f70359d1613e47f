"""Typed event records and their codecs: the wire contract of driftd.

Events travel as JSON objects, one per Kafka message or one per line of a replay file.
Each record type is a strict msgspec Struct: unknown top-level fields, wrong types and
out-of-range values are rejected with a message naming the field.

A replay file may mix predictions and labels; such lines carry ``"kind": "prediction"`` or
``"kind": "label"``. On a Kafka topic the topic decides the type and ``kind`` is optional.
Lines without ``kind`` in a mixed file are still decoded (on a slower path) by their fields.

>>> p = Prediction(id="a1", model="fraud", version="3", ts=1.0,
...                features={"amount": 12.5}, prediction=1)
>>> decode_prediction(encode(p)) == p
True
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Final, Literal

import msgspec

from driftd.errors import DriftdError

__all__ = [
    "DeadLetter",
    "Deployment",
    "EventHead",
    "Label",
    "LabelHead",
    "Position",
    "Prediction",
    "PredictionHead",
    "decode_label",
    "decode_prediction",
    "encode",
]

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# Epoch seconds; bounded so that a typo (milliseconds) is caught rather than stored.
Timestamp = Annotated[float, msgspec.Meta(ge=0, le=1e11)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Probability = Annotated[float, msgspec.Meta(ge=0, le=1)]
FeatureValue = float | str | None
Target = float | str


class Prediction(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="prediction"
):
    """One prediction served by a model version."""

    id: Id
    model: Name
    version: Name
    ts: Timestamp
    features: dict[str, FeatureValue]
    prediction: Target
    scores: dict[str, Probability] | None = None
    score: float | None = None
    latency_ms: NonNegative | None = None
    error: str | None = None
    segment: dict[str, str] | None = None


class Label(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="label"):
    """The true outcome for a prediction, joined to it by (model, id)."""

    id: Id
    model: Name
    ts: Timestamp
    label: Target


class Deployment(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="deployment"
):
    """Traffic weights that driftd publishes for a model server to follow."""

    model: Name
    ts: Timestamp
    weights: dict[str, Probability]
    reason: str
    decision_id: Id

    def __post_init__(self) -> None:
        total = math.fsum(self.weights.values())
        if not self.weights or abs(total - 1.0) > 1e-9:
            raise ValueError(f"weights must be non-empty and sum to 1, got sum {total!r}")


# -- internal heads: the hot path decodes features lazily, per model, in one call ---------


class PredictionHead(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="prediction",
    gc=False,
):
    """A Prediction whose features stay raw JSON until the model's schema decodes them."""

    id: Id
    model: Name
    version: Name
    ts: Timestamp
    features: msgspec.Raw
    prediction: Target
    scores: dict[str, Probability] | None = None
    score: float | None = None
    latency_ms: NonNegative | None = None
    error: str | None = None
    segment: dict[str, str] | None = None


class LabelHead(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="label", gc=False
):
    """Same fields as Label; a separate type so the batch decoder can use a tagged union."""

    id: Id
    model: Name
    ts: Timestamp
    label: Target


EventHead = PredictionHead | LabelHead


class Position(msgspec.Struct, frozen=True, array_like=True):
    """Where a record came from: a topic (or file) and partition (or 0) and offset (or line)."""

    source: str
    partition: int
    offset: int


DeadLetterReason = Literal[
    "malformed_json",
    "schema",
    "invalid_value",
    "unknown_model",
    "unknown_feature",
    "oversized",
    "not_utf8",
    "future_timestamp",
]
DEAD_LETTER_REASONS: Final[tuple[str, ...]] = DeadLetterReason.__args__  # type: ignore[attr-defined]


class DeadLetter(msgspec.Struct, frozen=True):
    """A record that was rejected: the raw bytes, where they came from and why."""

    raw: bytes
    position: Position
    reason: DeadLetterReason
    detail: str


class DecodeFailed(DriftdError):
    """A single event failed to decode; carries the classified reason."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: DeadLetterReason = reason
        self.detail = detail


_encoder = msgspec.json.Encoder()
_prediction_decoder = msgspec.json.Decoder(Prediction)
_label_decoder = msgspec.json.Decoder(Label)
_deployment_decoder = msgspec.json.Decoder(Deployment)


def encode(event: Prediction | Label | Deployment) -> bytes:
    """Encode an event as compact JSON (with its ``kind`` tag)."""
    return _encoder.encode(event)


# What a decoder may raise on bad input: msgspec's errors, Python's UTF-8 decoder (msgspec
# up to 0.22) and the recursion limit (deeply nested arrays).
DECODE_ERRORS: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _utf8_error(raw: bytes | msgspec.Raw) -> UnicodeDecodeError | None:
    """Python's error for raw when it is not valid UTF-8, else None."""
    try:
        str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        return exc
    return None


def classify(exc: BaseException, raw: bytes | msgspec.Raw | None = None) -> DecodeFailed:
    """Map a decoding error to a dead-letter reason and a message a person can read.

    The reason is decided by what the input is, not by the text of one library version's
    exception: JSON must be UTF-8 (RFC 8259), so bytes that are not UTF-8 are ``not_utf8``
    whatever the decoder said (msgspec 0.23 reports them as a generic DecodeError).
    """
    if isinstance(exc, UnicodeDecodeError):
        return DecodeFailed("not_utf8", f"a string is not valid UTF-8: {exc.reason}")
    bad_utf8 = _utf8_error(raw) if raw is not None else None
    if bad_utf8 is not None:
        return DecodeFailed(
            "not_utf8", f"not valid UTF-8 at byte {bad_utf8.start}: {bad_utf8.reason}"
        )
    if isinstance(exc, RecursionError):
        return DecodeFailed("malformed_json", "JSON nested too deeply to decode")
    msg = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        if "Object contains unknown field" in msg:
            return DecodeFailed("schema", msg)
        if msg.startswith("Expected `") and "`, got `" in msg:
            return DecodeFailed("schema", msg)  # a wrong type; constraints say no "got"
        if "Object missing required field" in msg:
            return DecodeFailed("schema", msg)
        return DecodeFailed("invalid_value", msg)
    if isinstance(exc, msgspec.DecodeError):
        return DecodeFailed("malformed_json", msg)
    return DecodeFailed("malformed_json", f"could not decode: {type(exc).__name__}: {msg}")


def _decode_with(decoder: msgspec.json.Decoder[Any], raw: bytes) -> Any:
    try:
        return decoder.decode(raw)
    except DECODE_ERRORS as exc:
        raise classify(exc, raw) from None


def decode_prediction(raw: bytes) -> Prediction:
    """Decode one Prediction; raises DecodeFailed with a reason."""
    result: Prediction = _decode_with(_prediction_decoder, raw)
    return result


def decode_label(raw: bytes) -> Label:
    """Decode one Label; raises DecodeFailed with a reason."""
    result: Label = _decode_with(_label_decoder, raw)
    return result


def decode_deployment(raw: bytes) -> Deployment:
    """Decode one Deployment; raises DecodeFailed with a reason."""
    result: Deployment = _decode_with(_deployment_decoder, raw)
    return result
