"""/metrics of a running daemon, read directly and scraped by a real Prometheus server."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftd.sim.synth import StreamSpec, config_toml, generate
from tests.integration.conftest import free_port, unavailable
from tests.integration.streams import driftd, status, wait_consumed

SPEC = StreamSpec(events=3000, seed=5, malformed_rate=0.01)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def prometheus_bin() -> str:
    path = shutil.which("prometheus")
    if path is None:
        unavailable("the prometheus binary is not installed (apt-get install prometheus)")
    return str(path)


def test_metrics_exported_and_scraped_by_prometheus(tmp_path: Path, prometheus_bin: str):
    stream = generate(SPEC)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(stream.lines) + b"\n")
    port = free_port()
    text = config_toml(SPEC, events, tmp_path / "state")
    text = text.replace("[metrics]\nenabled = false", f"[metrics]\nenabled = true\nport = {port}")
    text = text.replace('kind = "file"', 'kind = "file"\nfollow = true')
    cfg = tmp_path / "driftd.toml"
    cfg.write_text(text)
    log = (tmp_path / "driftd.log").open("wb")
    proc = driftd("run", "--config", str(cfg), stdout=log, stderr=log)
    prom = None
    try:
        total = len(stream.lines)
        wait_consumed(cfg, total, 60, [proc])
        samples = _samples(_get(f"http://127.0.0.1:{port}/metrics"))
        part = ("partition", "0")  # the file source's one partition: a series per partition
        assert samples[("driftd_events_consumed_total", (part,))] == total
        for reason, n in stream.truth["dead_lettered"]["by_reason"].items():
            key = ("driftd_events_dead_lettered_total", (part, ("reason", reason)))
            assert samples[key] == n
        truth = stream.truth["models"]["fraud"]
        for outcome in ("predictions", "labels", "joined", "expired", "duplicates"):
            key = ("driftd_join_events_total", (("model", "fraud"), ("outcome", outcome), part))
            assert samples.get(key, 0.0) == truth[outcome], outcome
        assert samples[("driftd_join_pending", (("model", "fraud"),))] == truth["pending"]
        # Per-version SLIs add up to the truth: every new prediction once, every join once.
        per_version = {k: v for k, v in samples.items() if k[0] == "driftd_predictions_total"}
        assert per_version and sum(per_version.values()) == truth["predictions"]
        assert all(part in labels for _, labels in per_version)
        labeled = sum(v for k, v in samples.items() if k[0] == "driftd_labeled_total")
        assert labeled == truth["joined"]
        for (_, labels), n in per_version.items():
            assert samples[("driftd_prediction_latency_seconds_count", labels)] <= n
        assert samples[("driftd_batch_processing_seconds_count", ())] > 0
        assert samples[("driftd_checkpoint_age_seconds", ())] < 60

        # A real Prometheus scrapes the exporter; the query API returns the same total.
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: driftd\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        )
        prom = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=(tmp_path / "prom.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        query = urllib.parse.quote("sum(driftd_events_consumed_total)")
        value = None
        end = time.monotonic() + 30
        while time.monotonic() < end and value is None:
            time.sleep(1)
            try:
                body = json.loads(_get(f"http://127.0.0.1:{prom_port}/api/v1/query?query={query}"))
            except OSError:
                continue
            result = body["data"]["result"]
            value = float(result[0]["value"][1]) if result else None
        assert value == total
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    assert code == 0
    assert time.monotonic() - t0 < 5, "SIGTERM must stop driftd within a few seconds"
    assert status(cfg)["consumed"] == len(stream.lines)
