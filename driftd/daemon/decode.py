"""Batch decoding: many raw events in one msgspec call, with per-event errors isolated.

The fast path joins a chunk of events with newlines and decodes it in one ``decode_lines``
call. That call reads whitespace-separated JSON values, so a chunk is only trusted when value
``k`` must have come from raw ``k``: every raw starts with ``{`` and ends with ``}`` and the
number of values equals the number of raws. (After a closing ``}`` a JSON parser never accepts
an opening ``{``, and JSON forbids a raw newline inside a string, so no value can span two
such raws, and no raw can yield zero values.) Anything else takes the one-by-one path.

When a chunk holds a bad event, the error's path (``$[i]``) or byte offset locates it; the
events before it are decoded again in one call and the bad one on its own, so one poison
message costs a re-decode of part of a chunk rather than a per-event slow path.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, TypeVar

import msgspec

from driftd.events import DecodeFailed, classify

T = TypeVar("T")

CHUNK = 128
_INDEX = re.compile(r"- at `\$\[(\d+)\]")
_BYTE = re.compile(r"\(byte (\d+)\)")

Failure = tuple[int, DecodeFailed]


def _locate(exc: msgspec.DecodeError, seg: Sequence[bytes | msgspec.Raw]) -> int | None:
    """The index of the raw that made decode_lines fail, when the error says where."""
    msg = str(exc)
    m = _INDEX.search(msg)
    if m:
        return int(m.group(1))
    m = _BYTE.search(msg)
    if m:
        # Raw k spans bytes [ends[k-1], ends[k]) of the joined buffer (with its separator).
        ends = list(itertools.accumulate(len(r) + 1 for r in seg))
        return bisect.bisect_right(ends, int(m.group(1)))
    return None


def _one_object_each(seg: Sequence[Any]) -> bool:
    n = len(seg)
    return all(map(bytes.startswith, seg, repeat(b"{", n))) and all(
        map(bytes.endswith, seg, repeat(b"}", n))
    )


def decode_many(
    decoder: msgspec.json.Decoder[Any],
    raws: Sequence[bytes | msgspec.Raw],
    one: Callable[[bytes | msgspec.Raw], T],
    chunk: int = CHUNK,
) -> tuple[list[T | None], list[Failure]]:
    """Decode every raw event; return values (None where it failed) and the failures.

    ``one`` decodes a single event on the slow path and raises DecodeFailed. A
    ``msgspec.Raw`` is the text of one value that another decode already parsed, so a list
    of them needs no shape check.
    """
    n = len(raws)
    out: list[T | None] = [None] * n
    failures: list[Failure] = []
    check_shape = n > 0 and type(raws[0]) is bytes

    def slow(lo: int, hi: int) -> None:
        for k in range(lo, hi):
            try:
                out[k] = one(raws[k])
            except DecodeFailed as exc:
                failures.append((k, exc))

    start, end = 0, min(chunk, n)
    while start < n:
        seg = raws[start:end]
        if check_shape and not _one_object_each(seg):
            slow(start, end)
            start, end = end, min(end + chunk, n)
            continue
        try:
            values = decoder.decode_lines(b"\n".join(seg))
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            # msgspec raises UnicodeDecodeError (whose position is not in the buffer) for
            # invalid UTF-8 inside a string.
            at = _locate(exc, seg) if isinstance(exc, msgspec.DecodeError) else None
            if at is None or not 0 <= at < end - start:
                slow(start, end)
                start, end = end, min(end + chunk, n)
            elif at:
                end = start + at  # decode the good prefix again; the bad one comes next
            else:
                slow(start, start + 1)
                start, end = start + 1, min(start + 1 + chunk, n)
            continue
        if len(values) != end - start:
            slow(start, end)  # a raw held two values: not aligned, decode one by one
        else:
            out[start:end] = values
        start, end = end, min(end + chunk, n)
    failures.sort(key=lambda f: f[0])
    return out, failures


def single(decoder: msgspec.json.Decoder[Any]) -> Callable[[bytes | msgspec.Raw], Any]:
    """A slow-path decoder for one event that raises DecodeFailed with a reason."""

    def one(raw: bytes | msgspec.Raw) -> Any:
        try:
            return decoder.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise classify(exc) from None

    return one
