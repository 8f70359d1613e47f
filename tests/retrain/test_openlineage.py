"""OpenLineage RunEvents of real retrains, through the client's file transport: START then
COMPLETE (snapshot in with its hash, model version out) or FAIL (error facet), each line checked
against the OpenLineage 2-0-2 RunEvent's required fields and rebuilt with the client's classes
(whose validators check the UUID run id and the ISO 8601 time). The client ships no JSON
schema files and ``jsonschema`` is not installed, so this is a structural check, not a schema
validation."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.transport import Transport

from driftd.config import load_settings
from driftd.lineage import LineageSettings, RetrainLineage, lineage_from_settings
from driftd.lineage.events import run_uuid
from driftd.registry.configure import open_registry
from driftd.retrain.service import RetrainOutcome, retrain_model
from driftd.retrain.store import LabeledStore
from tests.retrain.test_service import setup, write_rows  # noqa: F401 - setup is a fixture

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def broken_trainer(request: Any) -> Any:
    """A trainer that fails the way a bad hyperparameter does."""
    raise ValueError("bad hyperparameter: hidden = []")


def _retrain(config: Path, lineage: RetrainLineage, trainer: str | None = None) -> RetrainOutcome:
    if trainer is not None:
        config.write_text(
            config.read_text().replace(
                "[models.fraud.retrain]\n", f'[models.fraud.retrain]\ntrainer = "{trainer}"\n'
            )
        )
    settings = load_settings(config)
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    try:
        return retrain_model(
            "fraud",
            settings.models["fraud"],
            settings.retrain,
            registry,
            storage_url=settings.registry_url,
            lineage=lineage,
        )
    finally:
        registry.engine.dispose()


def checked(line: str) -> dict[str, Any]:
    """One JSON line as an OpenLineage RunEvent: required fields present, facets carry
    ``_producer``/``_schemaURL``, and the client's own classes accept it and write it back."""
    d = dict(json.loads(line))
    for key in ("eventTime", "producer", "schemaURL", "run", "job", "eventType"):
        assert key in d, key
    assert d["schemaURL"] == SPEC and d["producer"].startswith("https://")
    uuid.UUID(d["run"]["runId"])
    assert d["job"]["namespace"] and d["job"]["name"]
    datasets = [*d.get("inputs", []), *d.get("outputs", [])]
    facets = [*d["run"].get("facets", {}).values(), *d["job"].get("facets", {}).values()]
    for ds in datasets:
        assert ds["namespace"] and ds["name"]
        facets += [*ds.get("facets", {}).values(), *ds.get("inputFacets", {}).values()]
    for f in facets:
        assert f["_producer"].startswith("https://") and f["_schemaURL"].startswith("https://")
    rebuilt = RunEvent(
        eventType=RunState(d["eventType"]),
        eventTime=d["eventTime"],
        producer=d["producer"],
        run=Run(runId=d["run"]["runId"]),
        job=Job(namespace=d["job"]["namespace"], name=d["job"]["name"]),
        inputs=[InputDataset(namespace=i["namespace"], name=i["name"]) for i in d["inputs"]],
        outputs=[OutputDataset(namespace=o["namespace"], name=o["name"]) for o in d["outputs"]],
    )
    back = Serde.to_dict(rebuilt)
    for key in ("eventType", "eventTime", "producer", "schemaURL"):
        assert back[key] == d[key], key
    assert back["run"]["runId"] == d["run"]["runId"] and back["job"]["name"] == d["job"]["name"]
    return d


def _file_lineage(path: Path) -> RetrainLineage:
    ls = LineageSettings(file=path, namespace="driftd-test", registry_namespace="driftd://reg1")
    return lineage_from_settings(ls)


def test_a_retrain_emits_start_then_complete(
    setup: tuple[Path, LabeledStore],  # noqa: F811
    tmp_path: Path,
) -> None:
    config, store = setup
    write_rows(store, 6000, seed=1, t0=0.0, weights=np.array([2.0, -1.5, 1.0, 0.0, 0.0, 0.0]))
    out = tmp_path / "lineage" / "events.jsonl"
    outcome = _retrain(config, _file_lineage(out))
    lines = out.read_text().splitlines()
    start, done = (checked(line) for line in lines)
    assert (start["eventType"], done["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == done["run"]["runId"] == run_uuid(outcome.run_id)
    assert start["job"] == done["job"]
    assert (start["job"]["namespace"], start["job"]["name"]) == ("driftd-test", "retrain.fraud")
    assert start["eventTime"] <= done["eventTime"]
    [snap] = done["inputs"]
    assert snap["namespace"] == "file" and Path(snap["name"]).is_dir()
    assert snap["facets"]["version"]["datasetVersion"] == outcome.dataset_sha256
    facet = snap["facets"]["driftd_snapshot"]
    assert facet["sha256"] == outcome.dataset_sha256 and facet["rowCount"] == 6000
    assert sum(facet["splits"].values()) == 6000 and set(facet["splits"]) >= {"train"}
    assert snap["inputFacets"]["inputStatistics"]["rowCount"] == 6000
    assert start["inputs"] == done["inputs"]
    [model] = done["outputs"]
    assert (model["namespace"], model["name"]) == (
        "driftd://reg1",
        f"models/fraud/{outcome.version}",
    )
    mv = model["facets"]["driftd_model_version"]
    assert mv["version"] == outcome.version and mv["promoted"] is outcome.promoted
    assert len(mv["artifactSha256"]) == 64 and start.get("outputs") == []


def test_a_failing_retrain_emits_fail(
    setup: tuple[Path, LabeledStore],  # noqa: F811
    tmp_path: Path,
) -> None:
    config, store = setup
    write_rows(store, 3000, seed=1, t0=0.0, weights=np.array([1.0, 0, 0, 0, 0, 0]))
    out = tmp_path / "events.jsonl"
    with pytest.raises(ValueError, match="bad hyperparameter"):
        _retrain(config, _file_lineage(out), f"{__name__}:broken_trainer")
    start, failed = (checked(line) for line in out.read_text().splitlines())
    assert (start["eventType"], failed["eventType"]) == ("START", "FAIL")
    assert start["run"]["runId"] == failed["run"]["runId"]
    err = failed["run"]["facets"]["errorMessage"]
    assert err["message"] == "ValueError: bad hyperparameter: hidden = []"
    assert err["programmingLanguage"] == "python" and failed.get("outputs") == []


class Refusing(Transport):
    """A transport whose every send fails, like an unreachable lineage server."""

    kind = "refusing"

    def __init__(self) -> None:
        self.attempts = 0

    def emit(self, event: Any) -> None:
        self.attempts += 1
        raise ConnectionError("lineage server down")


def test_a_lineage_failure_does_not_fail_the_retrain(
    setup: tuple[Path, LabeledStore],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, store = setup
    write_rows(store, 6000, seed=1, t0=0.0, weights=np.array([2.0, -1.5, 1.0, 0.0, 0.0, 0.0]))
    transport = Refusing()
    with caplog.at_level(logging.ERROR, logger="driftd.lineage"):
        outcome = _retrain(config, RetrainLineage(transport))
    assert outcome.version == 1 and transport.attempts == 2  # START and COMPLETE were tried
    assert [r.getMessage() for r in caplog.records if "OpenLineage" in r.getMessage()] == [
        f"OpenLineage: sending {kind} of run {run_uuid(outcome.run_id)} failed; the retrain goes on"
        for kind in ("START", "COMPLETE")
    ]


def test_lineage_is_off_by_default_and_refuses_two_transports(tmp_path: Path) -> None:
    assert lineage_from_settings(None).transport is None
    assert lineage_from_settings(LineageSettings()).transport is None
    with pytest.raises(ValueError, match="url or file"):
        LineageSettings(url="http://x", file=tmp_path / "f")
    assert isinstance(
        lineage_from_settings(LineageSettings(file=tmp_path / "f")).transport, FileTransport
    )
    assert FileConfig  # the client's file transport is what writes the lines above


def test_http_transport_posts_to_the_lineage_endpoint(tmp_path: Path) -> None:
    """``[lineage] url`` sends each event as JSON to ``<url>/api/v1/lineage``."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[tuple[str, str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, self.headers["Authorization"], json.loads(body)))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        lineage = lineage_from_settings(LineageSettings(url=url, api_key="k1"))  # type: ignore[arg-type]
        snap_dir = tmp_path / "snap"
        snap_dir.mkdir()
        manifest = {"sha256": "ab" * 32, "row_count": 10, "splits": {"train": {"rows": 10}}}

        snap = SimpleNamespace(path=snap_dir, manifest=manifest)
        lineage.start("fraud", "run-1", snap)
        lineage.fail("fraud", "run-1", snap, RuntimeError("out of memory"))
    finally:
        server.shutdown()
        server.server_close()
    assert [(p, a) for p, a, _ in got] == [("/api/v1/lineage", "Bearer k1")] * 2
    events = [checked(json.dumps(e)) for _, _, e in got]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert {e["run"]["runId"] for e in events} == {run_uuid("run-1")}
