"""External witnesses of the audit head: ``verify`` against a (seq, hash) someone saw, from
Python, the CLI (``driftd audit verify --expect-head SEQ:HASH``) and the API."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from driftd.api import create_app
from driftd.cli.main import cli
from driftd.registry import Registry
from driftd.registry import schema as t
from driftd.registry.audit import Witness, record_hash
from driftd.registry.tokens import create_token

SHA = "ab" * 32


@pytest.fixture
def filled(registry: Registry) -> Registry:
    for _ in range(3):
        registry.register_version("fraud", "file:///m", SHA, 1, "trainer", stage="staging")
    return registry


def _hash(reg: Registry, seq: int) -> str:
    with reg.engine.connect() as conn:
        return str(conn.execute(sa.select(t.audit.c.hash).where(t.audit.c.seq == seq)).scalar())


def test_witness_parses_seq_colon_hash() -> None:
    w = Witness.parse(f" 12:{'AB' * 32} ")
    assert w == Witness(12, "ab" * 32) and str(w) == f"12:{'ab' * 32}"


@pytest.mark.parametrize("text", ["", "12", "12:", ":" + SHA, "0:" + SHA, "x:" + SHA, "3:abc",
                                  "3:" + "g" * 64])  # fmt: skip
def test_a_malformed_witness_names_the_value_and_the_form(text: str) -> None:
    with pytest.raises(ValueError, match="SEQ:HASH") as info:
        Witness.parse(text)
    assert repr(text.strip()) in str(info.value) and "64 hex digits" in str(info.value)


def test_the_head_and_any_earlier_record_verify_as_witnessed(filled: Registry) -> None:
    head = filled.verify_audit().head_seq
    for seq in (1, head - 1, head):
        result = filled.verify_audit(expect_head=Witness(seq, _hash(filled, seq)))
        assert result.ok and result.records == head, result


def test_a_witness_of_another_hash_fails_at_its_record(filled: Registry) -> None:
    result = filled.verify_audit(expect_head=Witness(2, "cd" * 32))
    assert not result.ok and result.seq == 2
    assert "record 2 does not match the witness" in result.problem
    assert "cdcdcdcdcdcd" in result.problem


def test_a_witness_beyond_the_log_fails(filled: Registry) -> None:
    head = filled.verify_audit().head_seq
    result = filled.verify_audit(expect_head=Witness(head + 5, SHA))
    assert not result.ok and result.seq == head + 5
    assert f"record {head + 5} is missing: the log ends at {head}" in result.problem


def test_an_unkeyed_log_rewritten_with_its_head_fails_only_against_a_witness(
    registry: Registry,
) -> None:
    """Without a key a forger can recompute the chain and the head row consistently; the hash
    a witness saw is what still tells."""
    reg = Registry(registry.engine, secret=None)
    for _ in range(3):
        reg.register_version("fraud", "file:///m", SHA, 1, "trainer")
    head = reg.verify_audit().head_seq
    seen = Witness(head, _hash(reg, head))
    with reg.engine.begin() as conn:
        prev = "0" * 64
        rows = conn.execute(sa.select(t.audit).order_by(t.audit.c.seq)).all()
        for r in rows:
            actor = "forger" if r.seq == 1 else r.actor
            h = record_hash(None, r.seq, r.ts, actor, r.action, r.subject, r.old, r.new,
                            r.reason, r.request_id, prev)  # fmt: skip
            stmt = t.audit.update().where(t.audit.c.seq == r.seq)
            conn.execute(stmt.values(actor=actor, prev_hash=prev, hash=h))
            prev = h
        conn.execute(t.audit_head.update().values(hash=prev))
    assert reg.verify_audit().ok
    result = reg.verify_audit(expect_head=seen)
    assert not result.ok and result.seq == head and "does not match the witness" in result.problem


# -- the CLI and the API -------------------------------------------------------------------------


def _cli(db_url: str, *args: str, secret: str | None = "cli-secret") -> tuple[int, str]:
    env = {"DRIFTD_REGISTRY__SECRET": secret}
    res = CliRunner().invoke(cli, [*args, "--db", db_url], env=env)
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.output


def test_cli_verify_expect_head(db_url: str) -> None:
    reg = Registry.open(db_url, "cli-secret")
    reg.register_version("fraud", "file:///m", SHA, 1, "trainer")
    reg.register_version("fraud", "file:///m", SHA, 1, "trainer")
    head = reg.verify_audit().head_seq
    seen = f"{head}:{_hash(reg, head)}"
    reg.engine.dispose()
    code, out = _cli(db_url, "audit", "verify", "--expect-head", seen)
    assert code == 0 and f"witness {head} matches" in out, out
    code, out = _cli(db_url, "audit", "verify", "--expect-head", f"{head}:{'cd' * 32}")
    assert code == 5 and f"record {head} does not match the witness" in out
    code, out = _cli(db_url, "audit", "verify", "--json", "--expect-head", f"{head + 1}:{SHA}")
    assert code == 5 and json.loads(out)["seq"] == head + 1
    code, out = _cli(db_url, "audit", "verify", "--expect-head", "nine:abc")
    assert code == 2 and "--expect-head" in out and "SEQ:HASH" in out


def test_cli_verify_of_a_keyed_log_without_the_key_says_so(db_url: str) -> None:
    reg = Registry.open(db_url, "cli-secret")
    reg.register_version("fraud", "file:///m", SHA, 1, "trainer")
    reg.engine.dispose()
    code, out = _cli(db_url, "audit", "verify", secret=None)
    assert code == 5 and "keyed" in out and "no key is configured" in out
    assert "altered" not in out


def test_cli_refuses_an_empty_secret(db_url: str) -> None:
    code, out = _cli(db_url, "audit", "verify", secret="")
    assert code != 0 and "registry.secret" in out and "empty" in out


def test_api_verify_expect_head(filled: Registry) -> None:
    admin = create_token(filled, "ada", "admin", actor="root")
    head = filled.verify_audit().head_seq
    auth = {"Authorization": f"Bearer {admin}"}
    with TestClient(create_app(filled)) as client:
        url = "/api/v1/audit/verify"
        ok = client.get(url, params={"expect_head": f"{head}:{_hash(filled, head)}"}, headers=auth)
        assert ok.status_code == 200 and ok.json()["ok"] is True
        bad = client.get(url, params={"expect_head": f"2:{'cd' * 32}"}, headers=auth).json()
        assert bad["ok"] is False and bad["seq"] == 2
        malformed = client.get(url, params={"expect_head": "2"}, headers=auth)
        assert malformed.status_code == 422
