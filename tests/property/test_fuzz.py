"""A seeded fuzz run: random mutations of real events through Pipeline.process.

Nothing may escape ``process``; every event is either dead-lettered once (with a known reason,
its raw bytes and its position) or counted once by the join; good events are never rejected.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from driftd.contracts.events import DEAD_LETTER_REASONS
from driftd.daemon.abc import RawChunk
from driftd.daemon.pipeline import Pipeline
from driftd.sim import synth

SEED = 20_240_611
ROUNDS = 20_000
_ID = re.compile(rb'"id":"[^"]*"')
_NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_DIGITS = re.compile(r"0x[0-9a-f]+|\d+")


def _flip(rng: random.Random, b: bytearray) -> None:
    if b:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)


def _insert(rng: random.Random, b: bytearray) -> None:
    b[rng.randrange(len(b) + 1) : 0] = bytes([rng.randrange(256)])


def _delete(rng: random.Random, b: bytearray) -> None:
    if b:
        del b[rng.randrange(len(b))]


def _truncate(rng: random.Random, b: bytearray) -> None:
    del b[rng.randrange(len(b) + 1) :]


def _newline(rng: random.Random, b: bytearray) -> None:
    b[rng.randrange(len(b) + 1) : 0] = rng.choice([b"\n", b"\r\n", b"\n\n"])


def _bad_utf8(rng: random.Random, b: bytearray) -> None:
    b[rng.randrange(len(b) + 1) : 0] = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"])


def _huge_number(rng: random.Random, b: bytearray) -> None:
    spans = [m.span() for m in _NUMBER.finditer(bytes(b))]
    if spans:
        lo, hi = rng.choice(spans)
        b[lo:hi] = rng.choice([b"1e400", b"-1e400", b"9" * 40, b"1e-400", b"-0", b"1" * 400])


def _duplicate_slice(rng: random.Random, b: bytearray) -> None:
    if b:
        lo = rng.randrange(len(b))
        hi = min(len(b), lo + rng.randrange(1, 40))
        b[hi:hi] = b[lo:hi]


def _structural(rng: random.Random, b: bytearray) -> None:
    """Change the JSON object itself: types, unknown and missing fields, the kind key."""
    try:
        obj = msgspec.json.decode(bytes(b))
    except (msgspec.DecodeError, UnicodeDecodeError):
        return
    if not isinstance(obj, dict) or not obj:
        return
    key = rng.choice(sorted(obj))
    op = rng.randrange(6)
    if op == 0:
        obj[key] = rng.choice(["x", 1, 1.5, None, True, [], {}, [1, "a"], {"k": None}])
    elif op == 1:
        obj[rng.choice(["zz", "Kind", "labels", "extra"])] = rng.choice([1, "x", None])
    elif op == 2:
        del obj[key]
    elif op == 3:
        obj.pop("kind", None)  # the mixed decoder must infer it
    elif op == 4 and isinstance(obj.get("features"), dict):
        feats = obj["features"]
        feats[rng.choice([*feats, "unknown"])] = rng.choice(["x", 2.5, None, [1], {}, -1e300])
    else:
        obj = rng.choice([[obj], "text", 3, None])
    b[:] = msgspec.json.encode(obj)


def _two_events(rng: random.Random, b: bytearray) -> None:
    """Two events on one line: a producer that forgot a newline."""
    b[:] = b + rng.choice([b"", b" ", b"\t"]) + b


def _random_bytes(rng: random.Random, b: bytearray) -> None:
    b[:] = rng.randbytes(rng.randrange(0, 64))


MUTATIONS: list[Callable[[random.Random, bytearray], None]] = [
    _flip,
    _insert,
    _delete,
    _truncate,
    _newline,
    _bad_utf8,
    _huge_number,
    _duplicate_slice,
    _structural,
    _structural,
    _two_events,
    _random_bytes,
    _random_bytes,
]


def mutate(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        rng.choice(MUTATIONS)(rng, b)
    return bytes(b)


def test_fuzzed_chunks_never_escape_and_every_event_is_accounted_for(
    make_pipeline: Callable[..., Pipeline], synth_stream: synth.Stream
) -> None:
    rng = random.Random(SEED)
    templates = synth_stream.predictions + synth_stream.labels
    pipeline = make_pipeline()
    solo = make_pipeline()  # rejections do not depend on state: one event alone decides
    escaped: dict[str, tuple[int, bytes]] = {}
    broken: list[str] = []
    reasons: Counter[str] = Counter()
    for it in range(ROUNDS):
        if it % 2000 == 0:
            pipeline = make_pipeline()  # bound the state; a fresh one also after an escape
            solo = make_pipeline()
        good = [
            _ID.sub(f'"id":"g{it}-{k}"'.encode(), rng.choice(templates), count=1)
            for k in range(rng.randrange(0, 5))
        ]
        bad = [mutate(rng, rng.choice(templates)) for _ in range(rng.randrange(1, 4))]
        items = [(raw, True) for raw in good] + [(raw, False) for raw in bad]
        rng.shuffle(items)
        raws = [raw for raw, _ in items]
        chunk = RawChunk(0, "mixed", "fuzz", raws, list(range(len(raws))), {"fuzz": it})
        try:
            out = pipeline.process(chunk)
        except Exception as exc:
            message = _DIGITS.sub("N", str(exc).splitlines()[0])[:70]
            kind = f"{type(exc).__name__}: {message}"
            if kind not in escaped:
                escaped[kind] = (it, _culprit(make_pipeline, raws))
            pipeline = make_pipeline()
            continue
        problems = _check(out, items, solo)
        if problems:
            broken.append(f"round {it}: {problems}; raws={raws!r}"[:600])
        reasons.update(d.reason for d in out.dead_letters)

    report = []
    if escaped:
        report.append(f"{len(escaped)} kind(s) of exception escaped Pipeline.process:")
        for kind, (it, culprit) in sorted(escaped.items()):
            report.append(f"  {kind}  (first in round {it}, raised by {culprit!r:.200})")
    if broken:
        report.append(f"{len(broken)} chunk(s) broke an invariant; first: {broken[0]}")
    assert not report, "\n".join(report)
    # The run reached the rejections that mutations of small valid events can produce.
    reached = {"malformed_json", "schema", "invalid_value", "not_utf8", "unknown_feature"}
    assert reached <= set(reasons), reasons


def _culprit(make_pipeline: Callable[..., Pipeline], raws: list[bytes]) -> bytes:
    """The first event that makes process raise on its own."""
    for raw in raws:
        try:
            make_pipeline().process(RawChunk(0, "mixed", "fuzz", [raw], [0], {}))
        except Exception:
            return raw
    return b"<only in combination>"


def _alone(solo: Pipeline, raw: bytes) -> str | None:
    """The reason an event is rejected when it is processed on its own (None: accepted)."""
    try:
        letters = solo.process(RawChunk(0, "mixed", "fuzz", [raw], [0], {})).dead_letters
    except Exception:
        return "<raised>"
    return letters[0].reason if letters else None


def _check(out: Any, items: list[tuple[bytes, bool]], solo: Pipeline) -> str:
    raws = [raw for raw, _ in items]
    letters = out.dead_letters
    positions = [d.position.offset for d in letters]
    if len(set(positions)) != len(positions):
        return "an event was dead-lettered twice"
    for d in letters:
        if d.reason not in DEAD_LETTER_REASONS:
            return f"unknown reason {d.reason!r}"
        if items[d.position.offset][1]:
            return f"good event {d.position.offset} dead-lettered: {d.reason} {d.detail}"
        if d.raw != raws[d.position.offset] or d.position.source != "fuzz":
            return "dead letter does not carry the raw bytes or position"
    counted = out.join_deltas.get(synth.MODEL, Counter())
    total = counted["predictions"] + counted["labels"] + counted["duplicates"]
    if len(letters) + total != len(raws) or out.consumed != len(raws):
        return f"{len(raws)} events, {len(letters)} dead-lettered, {total} counted"
    # In a chunk, each event is judged exactly as it is on its own.
    in_chunk = {d.position.offset: d.reason for d in letters}
    for k, (raw, ok) in enumerate(items):
        if not ok and in_chunk.get(k) != (alone := _alone(solo, raw)):
            return f"event {k} {raw!r:.120}: {in_chunk.get(k)} in the chunk, {alone} alone"
    return ""


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.__name__.strip("_"))
def test_each_mutation_changes_events(mutation: Callable[[random.Random, bytearray], None]) -> None:
    """Guards the fuzz run against mutations that silently do nothing."""
    rng = random.Random(SEED)
    raw = msgspec.json.encode(
        {"kind": "label", "id": "a", "model": "m", "ts": 1.5, "label": 1, "x": {"y": 2}}
    )
    changed = 0
    for _ in range(50):
        b = bytearray(raw)
        mutation(rng, b)
        changed += bytes(b) != raw
    assert changed >= 25
