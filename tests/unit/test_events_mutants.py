"""classify() cases a mutation run found unchecked: the recursion limit, and the message a
DecodeFailed carries as its text."""

from __future__ import annotations

from driftd.contracts.events import DecodeFailed, classify


def test_json_nested_too_deeply_is_malformed_json() -> None:
    failed = classify(RecursionError("maximum recursion depth exceeded"), b"[" * 5000)
    assert (failed.reason, failed.detail) == ("malformed_json", "JSON nested too deeply to decode")
    assert str(failed) == "JSON nested too deeply to decode"


def test_bad_utf8_wins_over_the_recursion_limit() -> None:
    failed = classify(RecursionError(), b"[\xff")
    assert failed.reason == "not_utf8" and failed.detail.startswith("not valid UTF-8 at byte 1")


def test_decode_failed_reads_as_its_detail() -> None:
    assert str(DecodeFailed("schema", "Object missing required field `id`")) == (
        "Object missing required field `id`"
    )


def test_any_other_error_is_malformed_json_naming_its_type() -> None:
    failed = classify(ValueError("boom"), b"{}")
    assert failed.reason == "malformed_json"
    assert failed.detail == "could not decode: ValueError: boom"
