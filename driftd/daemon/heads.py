"""Decoders of event heads (kind, model, id, time) for each kind of stream.

A stream of predictions or of labels decodes straight into its head type; a mixed stream
reads each event's ``kind``, or infers it from the fields when the producer left it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from driftd.contracts.events import DECODE_ERRORS, EventHead, LabelHead, PredictionHead, classify
from driftd.daemon.abc import Stream
from driftd.daemon.decode import single

_pred_decoder = msgspec.json.Decoder(PredictionHead)
_label_decoder = msgspec.json.Decoder(LabelHead)
_mixed_decoder: msgspec.json.Decoder[EventHead] = msgspec.json.Decoder(EventHead)
_any_decoder = msgspec.json.Decoder()


def _one_mixed(raw: bytes | msgspec.Raw) -> EventHead:
    """Slow path for a mixed stream: use ``kind``, or infer it from the fields."""
    try:
        return _mixed_decoder.decode(raw)
    except DECODE_ERRORS as exc:
        if "missing required field `kind`" not in str(exc):
            raise classify(exc, raw) from None
    try:
        obj = _any_decoder.decode(raw)
    except DECODE_ERRORS as exc:
        raise classify(exc, raw) from None
    is_label = isinstance(obj, dict) and "label" in obj and "prediction" not in obj
    result: EventHead = single(_label_decoder if is_label else _pred_decoder)(raw)
    return result


HEAD_DECODERS: dict[Stream, tuple[msgspec.json.Decoder[Any], Callable[[Any], Any]]] = {
    "predictions": (_pred_decoder, single(_pred_decoder)),
    "labels": (_label_decoder, single(_label_decoder)),
    "mixed": (_mixed_decoder, _one_mixed),
}
"""Per stream: the batch decoder of its heads and the one-event slow path (``decode_many``)."""
