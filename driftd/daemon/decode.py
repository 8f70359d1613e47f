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
from typing import Any, TypeVar

import msgspec

from driftd.contracts.events import DECODE_ERRORS, DecodeFailed, classify

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


def _locate_utf8(seg: Sequence[bytes | msgspec.Raw]) -> int | None:
    """The index of the first raw holding invalid UTF-8, if any."""
    joined = b"\n".join(seg)
    try:
        joined.decode("utf-8")
    except UnicodeDecodeError as exc:
        ends = list(itertools.accumulate(len(r) + 1 for r in seg))
        return bisect.bisect_right(ends, exc.start)
    return None


def _first_misshapen(seg: Sequence[Any]) -> int | None:
    """The index of the first raw that is not one brace-delimited line, if any."""
    for k, r in enumerate(seg):
        if not (r.startswith(b"{") and r.endswith(b"}")) or b"\n" in r:
            return k
    return None


def _one_object_each(joined: bytes, n: int) -> bool:
    """True when each of the n raws joined by newlines starts with '{' and ends with '}'.

    Checked on the joined buffer in C: it starts with '{', ends with '}', and each of its
    newlines is a separator sitting inside a "}\n{".
    """
    return (
        joined[:1] == b"{"
        and joined[-1:] == b"}"
        and joined.count(b"\n") == n - 1 == joined.count(b"}\n{")
    )


def _decode_segment(
    decoder: msgspec.json.Decoder[Any], seg: Sequence[bytes | msgspec.Raw], check_shape: bool
) -> list[Any] | int | None:
    """One segment in one call: its values, else the index of its first bad raw, else None
    (the segment must be decoded one by one)."""
    joined = b"\n".join(seg)
    if check_shape and not _one_object_each(joined, len(seg)):
        return _first_misshapen(seg)
    try:
        values = decoder.decode_lines(joined)
    except msgspec.DecodeError as exc:
        # msgspec 0.23 reports invalid UTF-8 with no position: look for it ourselves.
        at = _locate(exc, seg)
        return _locate_utf8(seg) if at is None else at
    except UnicodeDecodeError:
        # msgspec <= 0.22: the position is inside a string, not the buffer: find the first
        # invalid byte sequence ourselves; the line holding it is a bad one.
        return _locate_utf8(seg)
    except RecursionError:
        return None  # nested too deeply somewhere in the segment: one by one
    # A raw that held two values leaves the values out of step with the raws: one by one.
    return values if len(values) == len(seg) else None


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
            except Exception as exc:  # any other error dead-letters this event, never the loop
                failures.append((k, classify(exc, raws[k])))

    start, end = 0, min(chunk, n)
    while start < n:
        got = _decode_segment(decoder, raws[start:end], check_shape)
        if isinstance(got, list):
            out[start:end] = got
        elif got is None or not 0 <= got < end - start:
            slow(start, end)
        elif got:
            end = start + got  # decode the good prefix in one call; the bad one comes next
            continue
        else:
            slow(start, start + 1)
            start, end = start + 1, min(start + 1 + chunk, n)
            continue
        start, end = end, min(end + chunk, n)
    failures.sort(key=lambda f: f[0])
    return out, failures


def single(decoder: msgspec.json.Decoder[Any]) -> Callable[[bytes | msgspec.Raw], Any]:
    """A slow-path decoder for one event that raises DecodeFailed with a reason."""

    def one(raw: bytes | msgspec.Raw) -> Any:
        try:
            return decoder.decode(raw)
        except DECODE_ERRORS as exc:
            raise classify(exc, raw) from None

    return one
