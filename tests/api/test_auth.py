"""Each caller (no token, bad token, revoked token, viewer, approver, admin) against each
endpoint, with the exact status it must get."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from driftd.registry import Registry
from tests.api.conftest import Tokens

SHA = "ab" * 32
READ, WRITE, ADMIN = "viewer", "approver", "admin"


def seed(registry: Registry) -> dict[str, Any]:
    """Model ``m`` with two versions by ``root``, a run and a dataset."""
    ds = registry.register_dataset("cd" * 32, 10, "s3://d", actor="root")
    run = registry.start_run("m", actor="root", dataset_id=ds)
    registry.register_version("m", "s3://m/1", SHA, 1, actor="root", run_id=run)
    registry.register_version("m", "s3://m/2", SHA, 1, actor="root", parent_version=1)
    return {"run": run, "ds": ds, "now": time.time() + 1}


# (needed role, method, path, json body, status on success), in an order whose writes succeed
# one after the other for an approver and for an admin.
def table(s: dict[str, Any]) -> list[tuple[str | None, str, str, Any, int]]:
    m = "/api/v1/models/m"
    return [
        (None, "GET", "/healthz", None, 200),
        (None, "GET", "/readyz", None, 200),
        (READ, "GET", "/api/v1/models", None, 200),
        (READ, "GET", m, None, 200),
        (READ, "GET", f"{m}/versions", None, 200),
        (READ, "GET", f"{m}/versions/1", None, 200),
        (READ, "GET", f"{m}/aliases/latest", None, 200),
        (READ, "GET", f"{m}/aliases/latest?at={s['now']}", None, 200),
        (READ, "GET", f"{m}/history", None, 200),
        (READ, "GET", f"{m}/versions/1/approvals", None, 200),
        (READ, "GET", f"{m}/versions/1/lineage", None, 200),
        (READ, "GET", f"{m}/aliases/latest/lineage", None, 200),
        (READ, "GET", f"/api/v1/runs/{s['run']}", None, 200),
        (READ, "GET", f"/api/v1/datasets/{s['ds']}", None, 200),
        (READ, "GET", "/api/v1/audit", None, 200),
        (ADMIN, "GET", "/api/v1/audit/verify", None, 200),
        (
            WRITE,
            "POST",
            f"{m}/versions",
            {"artifact_uri": "s3://m/3", "artifact_sha256": SHA, "artifact_size": 1},
            201,
        ),
        (WRITE, "POST", f"{m}/versions/1/approval-requests", {"stage": "staging"}, 202),
        (WRITE, "POST", f"{m}/versions/1/approvals", {"stage": "staging"}, 201),
        (WRITE, "POST", f"{m}/versions/1/stage", {"stage": "staging"}, 200),
        (WRITE, "POST", f"{m}/versions/1/stage", {"stage": "canary"}, 200),
        (WRITE, "PUT", f"{m}/aliases/challenger", {"version": 2}, 200),
        (WRITE, "DELETE", f"{m}/aliases/challenger", None, 204),
        (WRITE, "POST", f"{m}/rollback", {"reason": "error rate"}, 200),
    ]


RANK = {None: -1, READ: 0, WRITE: 1, ADMIN: 2}
CALLERS = ["none", "bad", "revoked", "viewer", "approver", "admin"]


def expected(caller: str, needed: str | None, ok: int) -> int:
    """What ``caller`` must get from an endpoint that needs ``needed``."""
    if needed is None:
        return ok
    if caller in ("none", "bad", "revoked"):
        return 401
    return ok if RANK[caller] >= RANK[needed] else 403


@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_against_each_endpoint(
    caller: str, registry: Registry, tokens: Tokens, client: TestClient
) -> None:
    s = seed(registry)
    token = {
        "none": None,
        "bad": "drt_0000000000000000_not-a-secret",
        "revoked": tokens.revoked,
        "viewer": tokens.viewer,
        "approver": tokens.approver,
        "admin": tokens.admin,
    }[caller]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    got, want = [], []
    for needed, method, path, body, ok in table(s):
        r = client.request(method, path, json=body, headers=headers)
        got.append((method, path, r.status_code))
        want.append((method, path, expected(caller, needed, ok)))
        if r.status_code == 401:
            assert r.headers["WWW-Authenticate"] == "Bearer"
        if r.status_code >= 400:
            assert set(r.json()) == {"error", "detail"}, r.json()
    assert got == want


def test_malformed_authorization_headers(
    registry: Registry, tokens: Tokens, client: TestClient
) -> None:
    for value in ["", "Bearer", "Basic dXNlcjpwYXNz", f"Token {tokens.admin}", "Bearer x" * 300]:
        r = client.get("/api/v1/models", headers={"Authorization": value})
        assert r.status_code == 401, value
        assert r.headers["WWW-Authenticate"] == "Bearer"
    # A right token id with a wrong secret.
    tid = tokens.admin.split("_")[1]
    r = client.get("/api/v1/models", headers={"Authorization": f"Bearer drt_{tid}_wrong"})
    assert r.status_code == 401
