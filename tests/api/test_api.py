"""The registry API end to end through HTTP, on SQLite and on PostgreSQL: the full release
flow with its audit trail, conflicts, validation messages and idempotent writes."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

import driftd
from driftd.api import create_app
from driftd.registry import Gate, Registry, Stage
from tests.api.conftest import Tokens

SHA = "ab" * 32
M = "/api/v1/models/fraud"


def h(token: str, key: str | None = None) -> dict[str, str]:
    """Headers: the bearer token, and an idempotency key when given."""
    out = {"Authorization": f"Bearer {token}"}
    if key is not None:
        out["Idempotency-Key"] = key
    return out


def body(n: int = 1, **extra: Any) -> dict[str, Any]:
    """A valid registration body."""
    return {"artifact_uri": f"s3://fraud/{n}", "artifact_sha256": SHA, "artifact_size": n, **extra}


def register(client: TestClient, token: str, n: int) -> int:
    r = client.post(f"{M}/versions", json=body(n), headers=h(token))
    assert r.status_code == 201, r.json()
    return int(r.json()["version"])


def test_app_metadata_and_health(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["info"] == {
        "title": "driftd registry",
        "version": driftd.__version__,
        "description": schema["info"]["description"],
    }
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert all(p.startswith("/api/v1/") or p in ("/healthz", "/readyz") for p in schema["paths"])
    assert not any("token" in p for p in schema["paths"])  # tokens come from the CLI only
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["status"] == "ok"


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 1: every connection attempt is refused at once.
    engine = sa.create_engine("postgresql+psycopg://driftd@127.0.0.1:1/none")
    with TestClient(create_app(Registry(engine))) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["status"] == "unavailable"
    engine.dispose()


def test_full_flow_with_two_approvers(
    registry: Registry, tokens: Tokens, client: TestClient
) -> None:
    registry.set_gates({Stage.PRODUCTION: Gate(approvals=2)}, actor="root")
    mark = registry.audit_log(limit=1000)[-1].seq
    # A clock that moves one second per write, so "champion at t1" needs no sleep.
    ticks = itertools.count()
    start = time.time()
    registry.clock = lambda: start + next(ticks)
    ann, bob, ada = tokens.approver, tokens.approver2, tokens.admin

    for n in (1, 2):
        assert register(client, ann, n) == n
        r = client.post(f"{M}/versions/{n}/stage", json={"stage": "staging"}, headers=h(ann))
        assert r.status_code == 200 and r.json()["stage"] == "staging"
        ask = {"stage": "production", "reason": "ready"}
        r = client.post(f"{M}/versions/{n}/approval-requests", json=ask, headers=h(ann))
        assert r.status_code == 202

        # The author cannot approve their own version.
        r = client.post(f"{M}/versions/{n}/approvals", json={"stage": "production"}, headers=h(ann))
        assert r.status_code == 403 and r.json()["error"] == "Forbidden"
        r = client.post(f"{M}/versions/{n}/approvals", json={"stage": "production"}, headers=h(bob))
        assert r.status_code == 201
        # One approval of two: the gate holds, and says what is missing.
        r = client.post(f"{M}/versions/{n}/stage", json={"stage": "production"}, headers=h(ann))
        assert r.status_code == 409 and r.json()["error"] == "GateNotSatisfied"
        assert "1 more approval" in r.json()["detail"]
        r = client.post(
            f"{M}/versions/{n}/approvals",
            json={"stage": "production", "comment": "lgtm"},
            headers=h(ada),
        )
        assert r.status_code == 201
        r = client.post(
            f"{M}/versions/{n}/stage",
            json={"stage": "production", "expected_stage": "staging", "reason": "release"},
            headers=h(ann),
        )
        assert r.status_code == 200, r.json()
        assert r.json()["aliases"] == ["champion"]
        champion = client.get(f"{M}/aliases/champion", headers=h(tokens.viewer)).json()
        assert champion["version"] == n
        if n == 1:
            t1 = registry.clock()  # after version 1's promotion, before anything of version 2

    approvals = client.get(f"{M}/versions/2/approvals", headers=h(tokens.viewer)).json()
    assert {(a["approver"], a["role"]) for a in approvals} == {
        ("bob", "approver"),
        ("ada", "admin"),
    }
    assert client.get(f"{M}/versions/1", headers=h(tokens.viewer)).json()["stage"] == "archived"
    # Which version was champion at t1: the first.
    r = client.get(f"{M}/aliases/champion", params={"at": t1}, headers=h(tokens.viewer))
    assert r.status_code == 200 and r.json()["version"] == 1
    r = client.get(f"{M}/aliases/champion", params={"at": 1.0}, headers=h(tokens.viewer))
    assert r.status_code == 404

    r = client.post(
        f"{M}/rollback",
        json={"reason": "error rate up", "evidence": {"error_rate": 0.2}},
        headers=h(bob),
    )
    assert r.status_code == 200, r.json()
    assert r.json()["version"] == 1 and r.json()["stage"] == "production"
    champion = client.get(f"{M}/aliases/champion", headers=h(tokens.viewer)).json()
    assert champion["version"] == 1
    assert client.get(f"{M}/versions/2", headers=h(tokens.viewer)).json()["stage"] == "rolled_back"

    history = client.get(f"{M}/history", params={"version": 2}, headers=h(tokens.viewer)).json()
    assert [e["name"] for e in history if e["kind"] == "stage"] == [
        "development",
        "staging",
        "production",
        "rolled_back",
    ]
    lineage = client.get(f"{M}/aliases/champion/lineage", headers=h(tokens.viewer)).json()
    assert lineage["uri"] == "models:/fraud/1" and len(lineage["approvals"]) == 2

    verify = client.get("/api/v1/audit/verify", headers=h(ada)).json()
    assert verify["ok"] is True and verify["problem"] == ""
    page = client.get(
        "/api/v1/audit", params={"after": mark, "limit": 1000}, headers=h(tokens.viewer)
    ).json()
    records = page["items"]
    assert records and page["next_after"] is None
    assert {r["actor"] for r in records} == {"ann", "bob", "ada"}
    assert {r["action"] for r in records} >= {
        "version.register",
        "version.stage",
        "approval.grant",
        "approval.request",
        "alias.move",
    }
    by_subject = client.get(
        "/api/v1/audit", params={"subject": "fraud@champion"}, headers=h(tokens.viewer)
    ).json()["items"]
    assert len(by_subject) == 3 and all(r["action"] == "alias.move" for r in by_subject)


def test_conflicts(registry: Registry, tokens: Tokens, client: TestClient) -> None:
    ann = tokens.approver
    for n in (1, 2):
        register(client, ann, n)
    # Stale view: the caller thinks version 1 is in staging, it is still in development.
    r = client.post(
        f"{M}/versions/1/stage",
        json={"stage": "staging", "expected_stage": "staging"},
        headers=h(ann),
    )
    assert r.status_code == 409 and r.json()["error"] == "Conflict"
    assert "development, not staging" in r.json()["detail"]
    # An illegal transition names the legal ones.
    r = client.post(f"{M}/versions/1/stage", json={"stage": "production"}, headers=h(ann))
    assert r.status_code == 409 and "archived, staging" in r.json()["detail"]

    for n in (1, 2):
        r = client.post(f"{M}/versions/{n}/stage", json={"stage": "staging"}, headers=h(ann))
        assert r.status_code == 200

    # Two promotions of different versions to canary at once: one wins, the other is a 409.
    def to_canary(n: int) -> int:
        resp = client.post(f"{M}/versions/{n}/stage", json={"stage": "canary"}, headers=h(ann))
        return int(resp.status_code)

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(to_canary, (1, 2)))
    assert statuses == [200, 409]
    holder = client.get(f"{M}/aliases/canary", headers=h(ann)).json()["version"]
    loser = 3 - holder
    r = client.post(f"{M}/versions/{loser}/stage", json={"stage": "canary"}, headers=h(ann))
    assert r.status_code == 409 and "already in canary" in r.json()["detail"]

    # Nothing to roll back to for a model without canary or champion.
    register(client, ann, 3)
    r = client.post("/api/v1/models/other/versions", json=body(1), headers=h(ann))
    r = client.post("/api/v1/models/other/rollback", json={"reason": "x"}, headers=h(ann))
    assert r.status_code == 409 and "neither a canary nor a champion" in r.json()["detail"]


def test_not_found(tokens: Tokens, client: TestClient) -> None:
    v = h(tokens.viewer)
    for path in (
        M,
        f"{M}/versions",
        f"{M}/versions/1",
        f"{M}/aliases/champion",
        f"{M}/history",
        "/api/v1/runs/" + "0" * 32,
        "/api/v1/datasets/1",
    ):
        r = client.get(path, headers=v)
        assert r.status_code == 404, path
        assert r.json()["error"] == "NotFound"
    r = client.post(f"{M}/versions/1/stage", json={"stage": "staging"}, headers=h(tokens.admin))
    assert r.status_code == 404 and r.json()["detail"] == "model 'fraud' does not exist"


def test_validation_messages_name_the_field(tokens: Tokens, client: TestClient) -> None:
    a = h(tokens.approver)

    def detail(method: str, path: str, **kw: Any) -> str:
        r = client.request(method, path, headers=kw.pop("headers", a), **kw)
        assert r.status_code == 422, r.json()
        assert r.json()["error"] == "InvalidRequest"
        return str(r.json()["detail"])

    d = detail("POST", f"{M}/versions", json=body(artifact_sha256="xyz", stage="prod"))
    assert "body.artifact_sha256: must match the pattern ^[0-9a-f]{64}$" in d
    assert "body.stage: Input should be 'development'" in d and "'production'" in d
    d = detail("POST", f"{M}/versions", json={"artifact_sha256": SHA, "artifact_size": -1})
    assert "body.artifact_uri: Field required" in d
    assert "body.artifact_size: Input should be greater than or equal to 0" in d
    d = detail("POST", f"{M}/versions", json=body(bogus=1))
    assert "body.bogus: Extra inputs are not permitted" in d
    d = detail("POST", f"{M}/versions", json=body(signature={"x": "a\x00b"}))
    assert "body.signature" in d and "NUL" in d
    d = detail("POST", "/api/v1/models/bad name!/versions", json=body())
    assert d.startswith("path.name: must match the pattern")
    d = detail("GET", "/api/v1/models", params={"limit": 0})
    assert d == "query.limit: Input should be greater than or equal to 1"
    d = detail("GET", f"{M}/versions/0")
    assert d == "path.version: Input should be greater than or equal to 1"
    d = detail("POST", f"{M}/rollback", json={"reason": ""})
    assert d.startswith("body.reason: String should have at least 1 character")
    d = detail("POST", f"{M}/versions", json=body(), headers={**a, "Idempotency-Key": "k" * 256})
    assert d.startswith("header.Idempotency-Key: String should have at most 255 characters")


def test_stage_bound_and_reserved_aliases_are_refused(
    registry: Registry, tokens: Tokens, client: TestClient
) -> None:
    a = h(tokens.admin)
    register(client, tokens.approver, 1)
    for alias, words in (("champion", "promote the version to production"), ("latest", "reserved")):
        r = client.put(f"{M}/aliases/{alias}", json={"version": 1}, headers=a)
        assert r.status_code == 422 and words in r.json()["detail"], r.json()
    r = client.delete(f"{M}/aliases/canary", headers=a)
    assert r.status_code == 422 and "promote the version to canary" in r.json()["detail"]
    r = client.post(f"{M}/versions", json=body(2, aliases=["champion"]), headers=a)
    assert r.status_code == 422
    # A free alias moves freely, and is gone after delete.
    assert client.put(f"{M}/aliases/challenger", json={"version": 1}, headers=a).status_code == 200
    assert client.get(f"{M}/aliases/challenger", headers=a).json()["version"] == 1
    assert client.delete(f"{M}/aliases/challenger", headers=a).status_code == 204
    assert client.get(f"{M}/aliases/challenger", headers=a).status_code == 404
    assert client.delete(f"{M}/aliases/challenger", headers=a).status_code == 404


def test_idempotency(registry: Registry, tokens: Tokens, client: TestClient) -> None:
    a = tokens.approver
    first = client.post(f"{M}/versions", json=body(1), headers=h(a, "reg-1"))
    seq = registry.audit_log(limit=1000)[-1].seq
    again = client.post(f"{M}/versions", json=body(1), headers=h(a, "reg-1"))
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert registry.audit_log(limit=1000)[-1].seq == seq  # nothing new was written
    page = client.get(f"{M}/versions", headers=h(a)).json()
    assert [v["version"] for v in page["items"]] == [1]

    # The same key with another body is a conflict, not a silent replay.
    r = client.post(f"{M}/versions", json=body(2), headers=h(a, "reg-1"))
    assert r.status_code == 409 and "already used for a different request" in r.json()["detail"]

    # Approvals: a repeated request is answered again; a new one is a duplicate (409).
    ok = {"stage": "staging"}
    b = tokens.approver2
    r1 = client.post(f"{M}/versions/1/approvals", json=ok, headers=h(b, "appr-1"))
    r2 = client.post(f"{M}/versions/1/approvals", json=ok, headers=h(b, "appr-1"))
    assert r1.status_code == r2.status_code == 201 and r1.json() == r2.json()
    r3 = client.post(f"{M}/versions/1/approvals", json=ok, headers=h(b))
    assert r3.status_code == 409 and "already approved" in r3.json()["detail"]
    assert len(client.get(f"{M}/versions/1/approvals", headers=h(a)).json()) == 1

    # Promote and alias writes replay as well.
    promote = {"stage": "staging", "expected_stage": "development"}
    p1 = client.post(f"{M}/versions/1/stage", json=promote, headers=h(a, "prom-1"))
    p2 = client.post(f"{M}/versions/1/stage", json=promote, headers=h(a, "prom-1"))
    assert p1.status_code == p2.status_code == 200
    assert client.delete(f"{M}/aliases/x", headers=h(a, "del-x")).status_code == 404
    client.put(f"{M}/aliases/x", json={"version": 1}, headers=h(a))
    assert client.delete(f"{M}/aliases/x", headers=h(a, "del-1")).status_code == 204
    assert client.delete(f"{M}/aliases/x", headers=h(a, "del-1")).status_code == 204
    assert registry.verify_audit().ok


def test_pagination(registry: Registry, tokens: Tokens, client: TestClient) -> None:
    for name in ("a", "b", "c"):
        registry.register_version(name, "s3://x", SHA, 1, actor="root")
    for _ in range(2):
        registry.register_version("c", "s3://x", SHA, 1, actor="root")
    v = h(tokens.viewer)
    p1 = client.get("/api/v1/models", params={"limit": 2}, headers=v).json()
    assert [m["name"] for m in p1["items"]] == ["a", "b"] and p1["next_after"] == "b"
    p2 = client.get("/api/v1/models", params={"limit": 2, "after": "b"}, headers=v).json()
    assert [m["name"] for m in p2["items"]] == ["c"] and p2["next_after"] is None
    vs = client.get("/api/v1/models/c/versions", params={"limit": 2}, headers=v).json()
    assert [x["version"] for x in vs["items"]] == [3, 2] and vs["next_before"] == 2
    vs = client.get("/api/v1/models/c/versions", params={"before": 2}, headers=v).json()
    assert [x["version"] for x in vs["items"]] == [1]
    r = client.get("/api/v1/models/c/versions", params={"stage": "production"}, headers=v)
    assert r.json()["items"] == []
    latest = client.get("/api/v1/models/c/aliases/LATEST", headers=v).json()
    assert latest["version"] == 3
    at = registry.get_version("c", 1).created_at
    r = client.get("/api/v1/models/c/aliases/latest", params={"at": at}, headers=v)
    assert r.json()["version"] == 1


def test_idempotency_keys_belong_to_their_caller(
    registry: Registry, tokens: Tokens, client: TestClient
) -> None:
    ann, bob = tokens.approver, tokens.approver2
    first = client.post(f"{M}/versions", json=body(1), headers=h(ann, "shared-key"))
    assert first.status_code == 201 and first.json()["created_by"] == "ann"
    # Bob's request with the same key is his own: it is done, not answered with ann's 201.
    other = client.post(f"{M}/versions", json=body(1), headers=h(bob, "shared-key"))
    assert other.status_code == 201, other.json()
    assert other.json()["created_by"] == "bob" and other.json()["version"] == 2
    # Each caller's repeat replays their own answer; another body under the key is a 409
    # that says nothing about the other caller's request.
    assert client.post(f"{M}/versions", json=body(1), headers=h(ann, "shared-key")).json() == (
        first.json()
    )
    assert client.post(f"{M}/versions", json=body(1), headers=h(bob, "shared-key")).json() == (
        other.json()
    )
    r = client.post(f"{M}/versions", json=body(3), headers=h(bob, "shared-key"))
    assert r.status_code == 409 and "ann" not in r.json()["detail"]
    page = client.get(f"{M}/versions", headers=h(ann)).json()
    assert [v["version"] for v in page["items"]] == [2, 1]
    assert registry.verify_audit().ok


def test_artifact_uris_outside_the_policy_are_422(
    registry: Registry, tokens: Tokens, client: TestClient, tmp_path: Any
) -> None:
    from driftd.registry.artifacts import DEFAULT_SCHEMES, ArtifactPolicy

    registry.artifacts = ArtifactPolicy.create(DEFAULT_SCHEMES, [tmp_path])
    for uri, words in (
        ("file:///etc/shadow", "outside the allowed roots"),
        ("file:///../../../../etc/passwd", "'..' segment"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("javascript:alert(1)", "scheme 'javascript', which is not allowed"),
        ("s3://b/k\r\nX-Forged: 1", "control or invisible character"),
    ):
        r = client.post(f"{M}/versions", json=body(artifact_uri=uri), headers=h(tokens.approver))
        assert r.status_code == 422, r.json()
        assert r.json()["error"] == "InvalidArtifact" and words in r.json()["detail"], r.json()
        assert repr(uri) in r.json()["detail"]
    assert client.get(f"{M}/versions", headers=h(tokens.viewer)).status_code == 404
    ok = body(artifact_uri=(tmp_path / "m.pt").as_uri())
    assert client.post(f"{M}/versions", json=ok, headers=h(tokens.approver)).status_code == 201
