"""Batch decoding: many raw events in one msgspec call, with per-event errors isolated.

The fast path decodes a chunk of events as newline-delimited JSON in one call. When a chunk
holds a bad event, the error's path (``$[i]``) or byte offset locates it; the event before it
are decoded again in one call and the bad one on its own, so one poison message costs a
re-decode of part of a chunk rather than a per-event slow path for the whole batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec

from driftd.events import DecodeFailed, classify

T = TypeVar("T")

CHUNK = 128
_INDEX = re.compile(r"- at `\$\[(\d+)\]")
_BYTE = re.compile(r"\(byte (\d+)\)")

Failure = tuple[int, DecodeFailed]


def _locate(exc: msgspec.DecodeError, joined: bytes) -> int | None:
    """The index of the event that made decode_lines fail, when the error says it."""
    msg = str(exc)
    m = _INDEX.search(msg)
    if m:
        return int(m.group(1))
    m = _BYTE.search(msg)
    if m:
        return joined.count(b"\n", 0, int(m.group(1)))
    return None


def decode_many(
    decoder: msgspec.json.Decoder[Any],
    raws: Sequence[bytes | msgspec.Raw],
    one: Callable[[bytes | msgspec.Raw], T],
    chunk: int = CHUNK,
    newline_free: bool = False,
) -> tuple[list[T | None], list[Failure]]:
    """Decode every raw event; return values (None where it failed) and the failures.

    ``one`` decodes a single event on the slow path and raises DecodeFailed.
    ``newline_free`` promises that no raw event holds a newline (lines of a file).
    """
    n = len(raws)
    out: list[T | None] = [None] * n
    failures: list[Failure] = []

    def slow(lo: int, hi: int) -> None:
        for k in range(lo, hi):
            try:
                out[k] = one(raws[k])
            except DecodeFailed as exc:
                failures.append((k, exc))

    start, end = 0, min(chunk, n)
    while start < n:
        joined = b"\n".join(raws[start:end])
        if not newline_free and joined.count(b"\n") != end - start - 1:
            slow(start, end)  # an event with an embedded newline: decode one by one
            start, end = end, min(end + chunk, n)
            continue
        try:
            values = decoder.decode_lines(joined)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            # msgspec raises UnicodeDecodeError (whose position is not in the buffer) for
            # invalid UTF-8 inside a string.
            at = _locate(exc, joined) if isinstance(exc, msgspec.DecodeError) else None
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
            slow(start, end)  # a blank event was skipped by decode_lines
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
