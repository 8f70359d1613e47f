"""The plain form of an audit verification, as ``--json`` and the API give it (a sampled
mutation run found its keys unchecked)."""

from __future__ import annotations

from driftd.registry.audit import VerifyResult


def test_a_verify_result_reads_as_its_five_keys() -> None:
    assert VerifyResult(True, 3, 2).to_dict() == {
        "ok": True, "records": 3, "head_seq": 2, "problem": "", "seq": None,
    }  # fmt: skip
    bad = VerifyResult(False, 5, 4, "record 2: hash mismatch", 2)
    assert bad.to_dict() == {
        "ok": False, "records": 5, "head_seq": 4, "problem": "record 2: hash mismatch", "seq": 2,
    }  # fmt: skip
