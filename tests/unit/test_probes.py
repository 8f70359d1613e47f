"""The metrics port's probes: /readyz only once the daemon has restored and turned its loop,
/healthz while the loop turns; /metrics as before."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from driftd.config import load_settings
from driftd.daemon import app as app_mod
from driftd.daemon.metrics.serve import serve
from driftd.sim.synth import StreamSpec, write


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_probes_answer_503_with_the_reason_until_ready() -> None:
    reg = CollectorRegistry()
    Counter("x_total", "x", registry=reg).inc()
    state: dict[str, str | None] = {"ready": "restoring assigned partitions", "alive": None}
    server, _ = serve(reg, "127.0.0.1", 0, lambda: state["ready"], lambda: state["alive"])
    port = server.server_port
    try:
        assert _get(port, "/readyz") == (503, "restoring assigned partitions\n")
        assert _get(port, "/healthz") == (200, "ok\n")
        state["ready"] = None
        assert _get(port, "/readyz") == (200, "ok\n")
        state["alive"] = "the loop has not finished a poll for 500 s"
        assert _get(port, "/healthz")[0] == 503
        status, body = _get(port, "/metrics")
        assert status == 200 and "x_total 1.0" in body
    finally:
        server.shutdown()


def test_the_daemon_is_ready_after_its_first_turn(tmp_path: Path) -> None:
    paths = write(StreamSpec(events=300, seed=1, n_features=2), tmp_path / "s")
    settings = load_settings(paths["config"], env={})
    application = app_mod.build(settings, serve_metrics=False)
    try:
        runner = application.runner
        assert runner.not_ready() is not None
        assert runner.not_alive() is None  # starting: readiness covers it
        application.source.bind(runner)
        runner.step()
        assert runner.not_ready() is None
        assert runner.not_alive() is None
    finally:
        application.close()
