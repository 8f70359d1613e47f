"""What a real restart keeps: `driftd run` raises drift alarms, stops, and starts again with
no new events; `driftd status` and /metrics show the same alarms, totals and statistics, and
the checkpoint age has a sample at once (its alert can fire)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from driftd.daemon.checkpoint import SqlCheckpointStore
from driftd.db import make_engine
from driftd.sim.synth import StreamSpec, config_toml, generate
from tests.integration.conftest import free_port
from tests.integration.streams import driftd, status

SPEC = StreamSpec(events=3000, seed=5, malformed_rate=0.01)  # 3 drift alarms, 20 warnings
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
# Figures restored from the checkpoint: equal before and after the restart.
RESTORED = (
    "driftd_events_consumed_total",
    "driftd_events_decoded_total",
    "driftd_events_dead_lettered_total",
    "driftd_events_ignored_total",
    "driftd_join_events_total",
    "driftd_drift_alarms_total",
    "driftd_drift_statistic",
    "driftd_drift_threshold",
    "driftd_predictions_total",
    "driftd_join_pending",
)


def _scrape(port: int) -> Samples | None:
    """/metrics as samples, or None while the server does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _wait(
    port: int, ready: Callable[[Samples], bool], proc: subprocess.Popen[bytes], timeout: float
) -> tuple[Samples, float, float]:
    """Scrape until ``ready`` holds (driftd still running), within ``timeout`` seconds; return
    the samples and the wall times just before and after that scrape."""
    end = time.monotonic() + timeout
    last: Samples | None = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"driftd exited with {proc.returncode}")
        t0 = time.time()
        last = _scrape(port)
        if last is not None and ready(last):
            return last, t0, time.time()
        time.sleep(0.2)
    raise AssertionError(f"not ready in {timeout}s; last scrape: {last}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def _only(samples: Samples, names: tuple[str, ...]) -> Samples:
    return {k: v for k, v in samples.items() if k[0] in names}


def _saved_at(db: Path) -> float:
    """Wall time of the (only) saved checkpoint."""
    store = SqlCheckpointStore(make_engine(f"sqlite:///{db}"))
    try:
        cp = store.load("demo", 0)
    finally:
        store.close()
    assert cp is not None
    return cp.created_at


def _status_text(cfg: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "driftd.cli", "status", "--config", str(cfg)],
        capture_output=True,
        check=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    return out.stdout.decode()


def test_alarms_counters_and_checkpoint_age_survive_a_restart(tmp_path: Path) -> None:
    stream = generate(SPEC)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(stream.lines) + b"\n")
    port = free_port()
    text = config_toml(SPEC, events, tmp_path / "state")
    text = text.replace("[metrics]\nenabled = false", f"[metrics]\nenabled = true\nport = {port}")
    text = text.replace('kind = "file"', 'kind = "file"\nfollow = true')
    # The leader judges what the checkpoints reported, and the stream's tail once the
    # partition has been idle for idle_s: the first run checkpoints every second.
    text += "\n[leader]\nidle_s = 1.0\nmerge_every_s = 0.2\n"
    first_text = text.replace("[pipeline]\n", "[pipeline]\ncheckpoint_every_s = 1\n")
    cfg = tmp_path / "driftd.toml"
    cfg.write_text(first_text)
    total = float(len(stream.lines))

    def consumed_all(s: Samples) -> bool:
        return s.get(("driftd_events_consumed_total", (("partition", "0"),))) == total

    def restored(s: Samples) -> bool:
        """Every count restored, the partition's and the leader's (its brain holds the alarms
        and is restored when this process takes the lease, after the partitions)."""
        return consumed_all(s) and s.get(("driftd_leader", (("pipeline", "demo"),))) == 1.0

    def judged_all(s: Samples) -> bool:
        alarms = sum(
            v
            for k, v in s.items()
            if k[0] == "driftd_drift_alarms_total" and ("kind", "drift") in k[1]
        )
        return consumed_all(s) and alarms == 3

    log = (tmp_path / "driftd.log").open("ab")

    first = driftd("run", "--config", str(cfg), stdout=log, stderr=log)
    try:
        before, _, _ = _wait(port, judged_all, first, 90)
    finally:
        _stop(first)
    drifts = [
        k for k in before if k[0] == "driftd_drift_alarms_total" and ("kind", "drift") in k[1]
    ]
    assert sum(before[k] for k in drifts) == 3, before
    assert any(k[0] == "driftd_drift_statistic" for k in before)

    st = status(cfg)
    assert st["alarm_totals"]["by_kind"] == {"drift": 3, "warning": 20}
    assert sorted(a["kind"] for a in st["alarms"]).count("drift") == 3
    human = _status_text(cfg)
    assert "no drift alarms" not in human
    assert "3 drift alarms, 20 warnings" in human

    # Checkpoints by event count only: a restart with no new events saves none on its own.
    cfg.write_text(
        text.replace(
            "[pipeline]\n",
            "[pipeline]\ncheckpoint_every_events = 1000\ncheckpoint_every_s = 3600\n",
        )
    )
    second = driftd("run", "--config", str(cfg), stdout=log, stderr=log)
    try:
        after, t0, t1 = _wait(port, restored, second, 90)
        assert _only(after, RESTORED) == _only(before, RESTORED)
        # The age of the checkpoint restored at start (the first run's last), not of this
        # process; no new events, so this run has saved none.
        age = after.get(("driftd_checkpoint_age_seconds", ()))
        assert age is not None, "no checkpoint age sample after a restart with no new events"
        saved = _saved_at(tmp_path / "state" / "state.db")
        assert t0 - saved - 0.01 <= age <= t1 - saved + 0.01, (age, t0 - saved, t1 - saved)
    finally:
        _stop(second)
    assert status(cfg)["alarm_totals"]["by_kind"] == {"drift": 3, "warning": 20}
    assert "3 drift alarms, 20 warnings" in _status_text(cfg)
