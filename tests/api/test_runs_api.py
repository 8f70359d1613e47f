"""``/api/v1/runs``: the same filters, sort, detail and comparison as ``driftd runs``, for a
viewer token and above, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from driftd.api.runs import RunDetail
from driftd.api.schemas import RunOut
from driftd.registry import Registry, RunInfo
from tests.api.conftest import Tokens
from tests.registry.test_runs_query import seed_runs


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_list_filters_and_sorts_like_the_cli(
    registry: Registry, client: TestClient, tokens: Tokens
) -> None:
    ids = seed_runs(registry)
    names = {v: k for k, v in ids.items()}

    def ls(**params: object) -> list[str]:
        res = client.get("/api/v1/runs", headers=bearer(tokens.viewer), params=params)
        assert res.status_code == 200, res.text
        return [names[r["id"]] for r in res.json()["items"]]

    assert ls() == ["only", "failed", "worse", "best"]
    assert ls(model="a", status="finished") == ["worse", "best"]
    assert ls(trigger="alarm") == ["best"]
    assert ls(tag=["device=gpu"]) == ["worse"]
    assert ls(metric=["roc_auc>0.75", "loss<=0.15"]) == ["best"]
    assert ls(sort="metrics.roc_auc", order="asc", limit=2) == ["worse", "only"]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"metric": "roc_auc~1"}, 422, "NAME OP NUMBER"),
        ({"sort": "colour"}, 422, "metrics.NAME"),
        ({"status": "sleeping"}, 422, "query.status"),
        ({"limit": 0}, 422, "query.limit"),
    ],
)
def test_bad_queries_say_what_was_expected(
    client: TestClient, tokens: Tokens, params: dict[str, object], status: int, says: str
) -> None:
    res = client.get("/api/v1/runs", headers=bearer(tokens.viewer), params=params)
    assert res.status_code == status and says in res.json()["detail"]


def test_a_run_with_its_series_dataset_and_versions(
    registry: Registry, client: TestClient, tokens: Tokens
) -> None:
    ids = seed_runs(registry)
    registry.register_version("a", "file:///x/model.bin", "c" * 64, 3, "t", run_id=ids["best"])
    res = client.get(f"/api/v1/runs/{ids['best']}", headers=bearer(tokens.viewer))
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["id"] == ids["best"] and doc["params"]["lr"] == 0.01  # the run's fields, as before
    assert [p["step"] for p in doc["series"]["loss"]] == [1, 2, 3]
    assert doc["dataset"]["row_count"] == 100
    assert doc["versions"] == [
        {"model": "a", "version": 1, "stage": "development", "artifact_uri": "file:///x/model.bin",
         "aliases": []}
    ]  # fmt: skip
    by_prefix = client.get(f"/api/v1/runs/{ids['best'][:8]}", headers=bearer(tokens.viewer))
    assert by_prefix.json()["id"] == ids["best"]
    missing = client.get("/api/v1/runs/" + "f" * 32, headers=bearer(tokens.viewer))
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"


def test_compare_names_the_differences(
    registry: Registry, client: TestClient, tokens: Tokens
) -> None:
    ids = seed_runs(registry)
    res = client.get(
        "/api/v1/runs/compare",
        headers=bearer(tokens.viewer),
        params={"ids": f"{ids['best']},{ids['worse']}"},
    )
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["runs"] == [ids["best"], ids["worse"]]
    assert {"params.lr", "metrics.roc_auc", "dataset.sha256"} <= set(doc["differs"])
    assert doc["sections"]["params"]["lr"] == [0.01, 0.1]
    assert [p["value"] for p in doc["series"]["loss"][1]][-1] == pytest.approx(0.3)
    one = client.get(
        "/api/v1/runs/compare", headers=bearer(tokens.viewer), params={"ids": ids["best"]}
    )
    assert one.status_code == 422 and "at least two" in one.json()["detail"]


def test_runs_need_a_token(client: TestClient) -> None:
    assert client.get("/api/v1/runs").status_code == 401
    assert client.get("/api/v1/runs/compare", params={"ids": "a,b"}).status_code == 401


def test_the_detail_body_is_the_run_record_plus_its_extras() -> None:
    record = {f.name for f in dataclasses.fields(RunInfo)}
    assert set(RunOut.model_fields) == record
    assert set(RunDetail.model_fields) == record | {"dataset", "series", "versions"}
