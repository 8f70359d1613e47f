"""The closed loop end to end, for real and in real time: the tansu Kafka-protocol broker,
PostgreSQL (checkpoints and registry), driftd (three `run` instances on six partitions, one
brain; and the outbox), the reference model server
(``driftd serve-sim``) and a real Prometheus (the Debian package) scraping driftd.

Course: serve-sim bootstraps a champion and serves it; the world's concept drifts → a drift
alarm → a retrain job (worker, subprocess executor) → a challenger → canary (weights published
through the outbox to the control topic, which serve-sim follows) → production. Then a
challenger with a latency regression (the champion's artifact again, served 2x slower) →
canary → rolled back automatically. Finally every dashboard panel query (dashboards/
queries.json, ``expect_data``) returns data through Prometheus's HTTP API, the promotion and
rollback counters are right in Prometheus, and the registry's audit chain verifies.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from driftd.config import load_settings
from driftd.registry.configure import open_registry
from driftd.registry.errors import NotFound
from driftd.retrain.jobs import JobQueue
from tests.integration.conftest import REPO, free_port, unavailable
from tests.integration.streams import driftd

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.postgres]

MODEL = "fraud"
RATE = 400  # requests per second served
DRIFT_AFTER_S = 30.0  # after serve-sim's first request
INSTANCES, PARTITIONS = 3, 6  # driftd run processes in one consumer group, and partitions
LABEL_DELAY_S = 3.0
FEATURES = ", ".join(
    [f'f{j} = "numeric"' for j in range(8)] + ['country = "categorical"', 'device = "categorical"']
)

CONFIG = """
[pipeline]
name = "e2e"
data_dir = "{state}"
checkpoint_every_s = 1
poll_timeout_s = 0.1

[source]
kind = "kafka"
[source.kafka]
bootstrap_servers = "{bootstrap}"
predictions_topic = "{predictions}"
labels_topic = "{labels}"
auto_offset_reset = "earliest"
session_timeout_ms = 6000
heartbeat_interval_ms = 1000

[checkpoint]
url = "{db}"

[metrics]
enabled = true
port = {metrics_port}

[registry]
control_topic = "{control}"
control_bootstrap_servers = "{bootstrap}"

[retrain]
store_dir = "{state}/labeled"
work_dir = "{state}/retrain"
worker = true
lease_s = 30
store_flush_rows = 1000

[models.fraud]
task = "binary"
max_label_delay_s = 30
window_s = 60
features = {{ {features} }}

[[models.fraud.detectors]]
detector = "HDDM_A"
stream = "error"
# Stricter than the default: no false alarm before the drift (it would spend the cooldown).
params = {{ drift_confidence = 1e-5, warning_confidence = 1e-4 }}

[models.fraud.retrain]
params = {{ epochs = 4, batch_size = 512, hidden = [32, 32] }}
rows_after_alarm = 6000
min_new_rows = 1000
cooldown_s = 1e9
device = "cpu"
deterministic = true
executor = "subprocess"
timeout_s = 300
[models.fraud.retrain.gate]
min_samples = 300
n_boot = 500

[models.fraud.rollout]
steps = [0.5]
step_min_s = 5
[models.fraud.rollout.slo]
min_samples = 300
min_labeled = 100
latency_quantile = 0.9
latency_margin = 0.25
min_duration_s = 30  # event time runs fast here, as step_min_s
max_duration_s = 600
"""


class Procs:
    """Named subprocesses with their logs; ``tails()`` for assertion messages."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(
        self, name: str, cmd: list[str] | None = None, *args: str, env: dict[str, str] | None = None
    ) -> None:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        out = log.open("ab")
        if cmd is None:
            self.procs[name] = driftd(
                *args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env or {}
            )
        else:
            self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

    def stop(self, name: str, timeout: float = 30) -> int | None:
        p = self.procs.pop(name, None)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        return p.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise AssertionError(f"{name} exited with {p.returncode}\n{self.tails()}")

    def tails(self, n: int = 3000) -> str:
        parts = []
        for name, log in self.logs.items():
            text = log.read_text(errors="replace") if log.exists() else ""
            parts.append(f"----- {name} (last {n} chars) -----\n{text[-n:]}")
        return "\n".join(parts)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read().decode())


def _prom_query(port: int, query: str) -> list[dict[str, Any]]:
    body = _get_json(f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(query)}")
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _prom_range(port: int, query: str, start: float, end: float) -> list[dict[str, Any]]:
    """A range query, as Grafana runs a time-series panel's query over the dashboard's range."""
    args = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": "1s"})
    body = _get_json(f"http://127.0.0.1:{port}/api/v1/query_range?{args}")
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


# Panels whose query names a label value driftd does not export (a dashboard bug, reported
# rather than hidden): the rollout exports the latency evidence as slo="latency_relative"
# (and "latency_ceiling"), the canary dashboard asks for slo="latency".
def _wait(
    what: str, check: Callable[[], Any], timeout: float, procs: Procs, every: float = 0.5
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with every log's tail."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        procs.check_alive()
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{procs.tails()}")


def test_closed_loop_end_to_end(
    kafka_broker: str,
    topics: Callable[[int], tuple[str, str]],
    pg_url: str,
    tmp_path: Path,
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        unavailable("the prometheus binary is not installed (apt-get install prometheus)")
        return
    predictions, labels = topics(PARTITIONS)
    control = f"control-{predictions.removeprefix('predictions-')}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker)
    admin.create_topics([NewTopic(control, 1, 1)])
    admin.close()

    metrics_ports, prom_port = [free_port() for _ in range(INSTANCES)], free_port()
    metrics_port = metrics_ports[0]
    config = tmp_path / "driftd.toml"
    config.write_text(
        CONFIG.format(
            state=tmp_path / "state",
            bootstrap=kafka_broker,
            predictions=predictions,
            labels=labels,
            control=control,
            db=pg_url,
            metrics_port=metrics_port,
            features=FEATURES,
        )
    )
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        "  - job_name: driftd\n    scrape_interval: 1s\n"
        "    static_configs:\n      - targets: ["
        + ", ".join(f"'127.0.0.1:{port}'" for port in metrics_ports)
        + "]\n"
    )
    subprocess.run(
        [*_driftd_cmd(), "db", "upgrade", "--config", str(config)],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=REPO,
    )
    settings = load_settings(config)
    registry = open_registry(settings.registry, settings.registry_url, apply_gates=False)
    jobs = JobQueue(registry.engine)
    procs = Procs(tmp_path)
    sim = ["serve-sim", "--config", str(config), "--rate", str(RATE), "--seed", "7",
           "--label-delay", str(LABEL_DELAY_S), "--status-every", "5"]  # fmt: skip
    marks: dict[str, float] = {}
    stages: dict[int, str] = {}

    def champion() -> int | None:
        try:
            return int(registry.resolve(f"{MODEL}@champion").version)
        except NotFound:
            return None

    def note_stages() -> dict[int, str]:
        now = time.time()
        for v in registry.list_versions(MODEL):
            if stages.get(v.version) != v.stage:
                stages[v.version] = v.stage
                marks.setdefault(f"v{v.version}:{v.stage}", now)
        return stages

    t_start = time.monotonic()
    try:
        # 1. The model server trains and serves a first champion; the concept drifts later.
        procs.start("serve-sim", None, *sim, "--bootstrap", "--drift-after", str(DRIFT_AFTER_S))
        v1 = _wait("the bootstrapped champion", champion, 150, procs)
        # serve-sim sets the traffic right after the champion (wait: two writes, not one).
        _wait("traffic on the champion", lambda: registry.traffic(MODEL) == {v1: 1.0}, 30, procs)
        _wait("serve-sim serving", lambda: "serving fraud" in _log(procs, "serve-sim"), 60, procs)
        drift_at = time.time() + DRIFT_AFTER_S  # within a tick of the server's drift point
        # 2. driftd, the outbox (registry events → control topic) and Prometheus.
        for i, port in enumerate(metrics_ports):  # one brain: three instances decide as one
            procs.start(
                f"driftd-{i}",
                None,
                "run",
                "--config",
                str(config),
                env={"DRIFTD_METRICS__PORT": str(port)},
            )
        procs.start("outbox", None, "outbox", "run", "--config", str(config), "--poll", "0.2")
        prom_started = time.time()
        procs.start(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
        )

        # 3. drift → alarm → retrain job → challenger → canary → production.
        def job_done() -> Any:
            done = [j for j in jobs.list(model=MODEL) if j.state in ("succeeded", "failed")]
            return done[0] if done else None

        job = _wait("a finished retrain job", job_done, 200, procs, every=1.0)
        assert job.state == "succeeded", f"{job.error}\n{procs.tails()}"
        assert job.trigger["kind"] == "alarm" and job.trigger["key"]["kind"] == "drift", job
        marks["alarm"] = float(job.trigger["key"]["ts"])
        marks["job_finished"] = float(job.finished_at or time.time())
        assert marks["alarm"] >= drift_at - 2, "the alarm fired before the concept drifted"
        v2 = int(job.result["version"]) if job.result else None
        assert v2 is not None and job.result is not None and job.result["promoted"], (
            f"the retrained model did not become the challenger: {job.result}\n{procs.tails()}"
        )
        _wait(
            f"v{v2} promoted to production",
            lambda: note_stages().get(v2) == "production" and champion() == v2,
            150,
            procs,
        )
        _wait("all traffic on the new champion", lambda: registry.traffic(MODEL) == {v2: 1.0},
              30, procs)  # fmt: skip
        assert f"v{v2}:canary" in marks, f"v{v2} never seen in canary: {marks}"
        # Three instances, one brain: one retrain for the drift, not one per instance.
        assert len(jobs.list(model=MODEL)) == 1, jobs.list(model=MODEL)

        # 4. A regressed challenger: the champion's artifact again, served 2x slower.
        procs.stop("serve-sim")
        v = registry.resolve(f"{MODEL}@champion")
        v3 = int(
            registry.register_version(
                MODEL, v.artifact_uri, v.artifact_sha256, v.artifact_size, "e2e-ops",
                description="hand-built: adds a slow feature lookup", parent_version=v2,
                stage="staging", aliases=["challenger"],
            ).version
        )  # fmt: skip
        marks["regressed_registered"] = time.time()
        procs.start("serve-sim", None, *sim, "--drift-after", "0", "--regress", f"{v3}:latency=2.0")
        _wait(
            f"v{v3} rolled back",
            lambda: note_stages().get(v3) == "rolled_back",
            150,
            procs,
        )
        _wait("traffic back on the champion", lambda: registry.traffic(MODEL) == {v2: 1.0},
              30, procs)  # fmt: skip
        assert champion() == v2
        assert f"v{v3}:canary" in marks, f"v{v3} never seen in canary: {marks}"

        # 5. Prometheus: the counters, then every dashboard panel query that expects data.
        def prom_value(query: str) -> float | None:
            try:
                result = _prom_query(prom_port, query)
            except OSError:
                return None
            return float(result[0]["value"][1]) if result else None

        _wait(
            "Prometheus to scrape the rollback",
            lambda: prom_value(f'driftd_rollbacks_total{{model="{MODEL}"}}') == 1.0,
            60,
            procs,
        )
        promotions = prom_value(f'driftd_promotions_total{{model="{MODEL}"}}')
        assert promotions == 2.0, f"v{v1} (seed) and v{v2} entered production: {promotions}"
        assert prom_value("sum(driftd_leader)") == 1.0, "one leader among the instances"
        # The rollback counter can come from any instance's scrape (registry series), the verdict
        # only from the leader's, which Prometheus may scrape a moment later: wait for it.
        _wait(
            "the leader's rollback verdict in Prometheus",
            lambda: (
                prom_value(
                    f'driftd_canary_verdict{{model="{MODEL}",driftd_canary_verdict="rollback"}}'
                )
                == 1.0
            ),
            60,
            procs,
        )

        queries = json.loads((REPO / "dashboards" / "queries.json").read_text())["queries"]
        missing: list[str] = []
        answered: list[str] = []
        for q in queries:
            if not q["expect_data"]:
                continue
            where = f"{q['dashboard']} / {q['panel']} [{q['ref_id']}]: {q['query']}"
            if q["instant"]:
                result = _prom_query(prom_port, q["query"])
            else:
                result = _prom_range(prom_port, q["query"], prom_started, time.time())
            (answered if result else missing).append(where)
        assert not missing, "dashboard queries without data:\n" + "\n".join(missing)
        assert answered

        # 6. The registry's audit chain (every transition above) verifies.
        assert registry.verify_audit().ok
        rolled = [
            r for r in registry.audit_log(limit=100_000, subject=f"{MODEL}/{v3}")
            if r.action == "version.stage" and "rolled_back" in r.new
        ]  # fmt: skip
        assert rolled and "latency" in rolled[0].reason, rolled
    finally:
        procs.stop_all()
        registry.engine.dispose()

    timings = {
        "drift_to_alarm_s": marks["alarm"] - drift_at,
        "drift_to_challenger_s": marks[f"v{v2}:staging"] - drift_at
        if f"v{v2}:staging" in marks
        else marks["job_finished"] - drift_at,
        "drift_to_canary_s": marks[f"v{v2}:canary"] - drift_at,
        "drift_to_promoted_s": marks[f"v{v2}:production"] - drift_at,
        "regressed_to_canary_s": marks[f"v{v3}:canary"] - marks["regressed_registered"],
        "canary_to_rollback_s": marks[f"v{v3}:rolled_back"] - marks[f"v{v3}:canary"],
        "total_s": time.monotonic() - t_start,
    }
    print("e2e timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    print(f"{len(answered)} dashboard queries returned data:\n" + "\n".join(answered))
    assert 0 < timings["drift_to_alarm_s"] < timings["drift_to_promoted_s"]


def _driftd_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "driftd.cli"]


def _log(procs: Procs, name: str) -> str:
    log = procs.logs.get(name)
    return log.read_text(errors="replace") if log is not None and log.exists() else ""
