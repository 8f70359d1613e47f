"""verify() on hand-built chains, and pinned hashes and seals: the cases a mutation run found
unchecked (duplicates, ranges of removed records, the failing result's fields, the head-row
classification, and hashes an older driftd wrote that must still verify)."""

from __future__ import annotations

from typing import Any

import pytest

from driftd.registry.audit import (
    GENESIS,
    Head,
    Key,
    VerifyResult,
    canonical,
    head_key,
    head_seal,
    key_fingerprint,
    record_hash,
    verify,
)

SECRET = b"k"


def chain(n: int, secret: bytes | None = None) -> list[tuple[Any, ...]]:
    """Rows for records 1..n in AuditRecord field order, correctly chained."""
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = ("alice", "stage", f"m/{seq}", "{}", canonical({"stage": seq}), "", f"req-{seq}")
        h = record_hash(secret, seq, float(seq), *fields, prev)
        rows.append((seq, float(seq), *fields, prev, h))
        prev = h
    return rows


def head_of(rows: list[tuple[Any, ...]], secret: bytes | None = None) -> Head:
    seq, h = rows[-1][0], rows[-1][-1]
    return Head(seq, h, head_seal(secret, seq, h) if secret else "")


@pytest.mark.parametrize("secret", [None, SECRET])
def test_an_intact_chain_verifies_and_counts_its_records(secret: bytes | None) -> None:
    rows = chain(5, secret)
    assert verify(rows, head_of(rows, secret), secret) == VerifyResult(True, 5, 5)


def test_a_duplicated_record_is_named() -> None:
    rows = chain(4)
    result = verify([*rows[:2], rows[1], *rows[2:]], head_of(rows), None)
    assert result == VerifyResult(False, 3, 4, "record 2 duplicated", 2)


@pytest.mark.parametrize(
    ("dropped", "problem"),
    [
        ([2], "record 3 removed: the sequence jumps to 4"),
        ([2, 3], "records 3-4 removed: the sequence jumps to 5"),
        ([1, 2, 3], "records 2-4 removed: the sequence jumps to 5"),
    ],
)
def test_removed_records_are_named_with_their_range(dropped: list[int], problem: str) -> None:
    rows = chain(6)
    kept = [r for i, r in enumerate(rows) if i not in dropped]
    result = verify(kept, head_of(rows), None)
    assert (result.ok, result.problem, result.seq) == (False, problem, dropped[0] + 1)
    assert (result.records, result.head_seq) == (dropped[0] + 1, 6)


def test_a_record_after_the_head_is_named() -> None:
    rows = chain(5)
    result = verify(rows, head_of(rows[:4]), None)
    assert result == VerifyResult(False, 5, 4, "record 5 inserted after the head (4)", 5)


def test_a_refused_key_reports_the_head() -> None:
    rows = chain(3, SECRET)
    result = verify(rows, head_of(rows, SECRET), None)  # keyed log, no key held
    assert (result.ok, result.records, result.head_seq, result.seq) == (False, 0, 3, None)
    assert result.problem is not None and "registry.secret" in result.problem


def test_head_rows_are_classified() -> None:
    h = "ab" * 32
    assert head_key(None, 0, GENESIS, None) is Key.NEW
    assert head_key(SECRET, 0, GENESIS, None) is Key.NEW
    # a head row without a key check past record 0 was written unkeyed
    assert head_key(None, 3, h, None) is Key.UNKEYED
    assert head_key(SECRET, 3, h, None) is Key.NOT_KEYED
    assert head_key(None, 3, h, "") is Key.UNKEYED
    assert head_key(SECRET, 3, h, head_seal(SECRET, 3, h)) is Key.SEALED
    assert head_key(SECRET, 3, h, key_fingerprint(SECRET)) is Key.LEGACY
    assert head_key(None, 3, h, head_seal(SECRET, 3, h)) is Key.MISSING
    assert head_key(b"other", 3, h, head_seal(SECRET, 3, h)) is Key.MISMATCH
    assert head_key(SECRET, 4, h, head_seal(SECRET, 3, h)) is Key.MISMATCH


def test_hashes_and_seals_are_those_older_logs_were_written_with() -> None:
    # changing any of these leaves every stored log unverifiable
    assert canonical({"b": 1, "a": [1, "x"]}) == '{"a":[1,"x"],"b":1}'
    fields = ("alice", "create", "m/1", "{}", '{"a":1}', "r", "req-1", GENESIS)
    assert record_hash(None, 1, 1.5, *fields) == (
        "127b6e7c6f3c626b8d35e09e12c6722973c09314711eff1f996c78cf51b4eada"
    )
    assert record_hash(SECRET, 1, 1.5, *fields) == (
        "9a1ae2abad4d4c5104f28236cdec6c1c1e0bd9a18deeb95265235d7cb438021b"
    )
    assert key_fingerprint(SECRET) == (
        "1d5aafba046a0509d74faa24eb338b99e4b8a3e2a4f371699241ea1117b53173"
    )
    assert head_seal(SECRET, 3, "ab" * 32) == (
        "c7b7e93d86f55d260672a394328d61942bed99d69566619650d9f824f0b7535a"
    )
    assert head_seal(None, 3, "ab" * 32) == ""
