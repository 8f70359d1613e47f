"""The incident endpoints: list, get, report (viewer), acknowledge and resolve (approver), with
4xx answers that say what was wrong; every incident is reachable at its stable URL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from driftd.contracts.monitor import DriftDetected
from driftd.incidents.evidence import to_json
from driftd.incidents.lifecycle import Policy
from driftd.incidents.store import IncidentStore
from driftd.incidents.types import FeatureShift, Histogram
from driftd.registry import Registry
from tests.api.conftest import Tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def opened(registry: Registry, stream: str = "feature:amount") -> str:
    store = IncidentStore(registry, Policy(), base_url="http://127.0.0.1:8765")
    shift = FeatureShift(
        "amount", "numeric", 0.6, 0.5, 0.7, 0.95, "wasserstein / sd", 1e-9, 1000, 800,
        "mean 10.0 -> 13.0 (+30%)", Histogram([0.0, 1.0, 2.0], [], [0.5, 0.5], [0.2, 0.8]),
    )  # fmt: skip
    alarm = DriftDetected("fraud", "*", stream, "window:drift:ks", "drift", 600.0,
                          0.4, 0.01, "pinned:[0,300)")  # fmt: skip
    ((inc, _),) = store.record([alarm], {alarm_key(alarm): to_json([shift])})
    return inc.id


def alarm_key(a: DriftDetected) -> tuple[str, str, str]:
    return (a.model, a.version, a.stream)


def test_viewers_read_incidents_and_their_reports(
    client: TestClient, registry: Registry, tokens: Tokens
) -> None:
    iid = opened(registry)
    got = client.get("/api/v1/incidents", headers=bearer(tokens.viewer), params={"state": "open"})
    assert got.status_code == 200 and [i["id"] for i in got.json()] == [iid]
    one = client.get(f"/api/v1/incidents/{iid}", headers=bearer(tokens.viewer)).json()
    assert one["url"] == f"http://127.0.0.1:8765/api/v1/incidents/{iid}"
    assert one["report_url"].startswith(one["url"] + "/report?sig=")
    assert one["stream"] == "feature:amount"
    page = client.get(f"/api/v1/incidents/{iid}/report", headers=bearer(tokens.viewer))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-plot="feature:amount"' in page.text and "wasserstein / sd" in page.text
    # one click: the signed link opens the report without a token, for this incident only
    signed = one["report_url"].removeprefix("http://127.0.0.1:8765")
    assert client.get(signed).text == page.text
    assert client.get(f"/api/v1/incidents/{iid}/report").status_code == 401
    forged = signed[:-1] + ("0" if signed[-1] != "0" else "1")
    assert client.get(forged).status_code == 401
    other = opened(registry, stream="feature:age")
    assert client.get(signed.replace(iid, other)).status_code == 401
    assert client.get(f"/api/v1/incidents/{iid}/report?sig=nothex").status_code == 422


def test_approvers_acknowledge_and_resolve_with_clear_4xx(
    client: TestClient, registry: Registry, tokens: Tokens
) -> None:
    iid = opened(registry)
    url = f"/api/v1/incidents/{iid}"
    denied = client.post(f"{url}/acknowledge", json={}, headers=bearer(tokens.viewer))
    assert denied.status_code == 403 and "approver" in denied.json()["detail"]
    ack = client.post(f"{url}/acknowledge", json={"note": "on it"}, headers=bearer(tokens.approver))
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "ann"
    done = client.post(f"{url}/resolve", json={}, headers=bearer(tokens.approver2))
    assert done.json()["state"] == "resolved" and done.json()["resolved_by"] == "bob"
    again = client.post(f"{url}/acknowledge", json={}, headers=bearer(tokens.approver))
    assert again.status_code == 409 and "resolved" in again.json()["detail"]
    missing = client.get("/api/v1/incidents/inc-0000000000000000", headers=bearer(tokens.viewer))
    assert missing.status_code == 404
    bad = client.get("/api/v1/incidents/not-an-id", headers=bearer(tokens.viewer))
    assert bad.status_code == 422 and "inc-" in bad.json()["detail"]
    extra = client.post(f"{url}/resolve", json={"nope": 1}, headers=bearer(tokens.approver))
    assert extra.status_code == 422 and "nope" in extra.json()["detail"]
    assert client.get("/api/v1/incidents").status_code == 401


def test_an_incident_whose_statistic_is_not_finite_reads_as_null(
    client: TestClient, registry: Registry, tokens: Tokens
) -> None:
    store = IncidentStore(registry, Policy())
    odd = DriftDetected("fraud", "1", "score", "KSWIN", "drift", 5.0, float("nan"), float("inf"))
    ((inc, _),) = store.record([odd])
    got = client.get(f"/api/v1/incidents/{inc.id}", headers=bearer(tokens.viewer))
    assert got.status_code == 200
    assert (got.json()["statistic"], got.json()["threshold"]) == (None, None)
