"""What a restart keeps, through the daemon's own parts (build, checkpoint in SQLite, restore):
drift alarms in `driftd status`, counters that continue instead of restarting at 0, and a
checkpoint age at once. Every cumulative metric says whether it survives a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftd.config import load_settings
from driftd.daemon import app as app_mod
from driftd.daemon import state_codec
from driftd.daemon.abc import Lag
from driftd.daemon.metrics import PROCESS_LOCAL, RESTORED, Recorder, StateCollector
from driftd.daemon.replay import checkpoint_status, print_summary
from driftd.daemon.state import STATE_KIND, STATE_VERSION
from driftd.db import checkpoints, make_engine
from driftd.errors import StateVersionError
from driftd.sim import synth

SPEC = synth.StreamSpec(events=3000, seed=5, malformed_rate=0.01)  # 3 drift alarms, 20 warnings
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
LIVE = (
    "driftd_batch_processing",
    "driftd_checkpoint_duration",
    "driftd_checkpoint_age",
    "driftd_leader",  # who leads, and its merges: this process's
    "driftd_detector_",  # the live statistics: exported while this process leads
)


def _samples(registry: CollectorRegistry) -> Samples:
    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _kept(samples: Samples) -> Samples:
    """Samples other than timings, the checkpoint age and process-local creation times."""
    return {
        k: v
        for k, v in samples.items()
        if not k[0].startswith(LIVE) and not k[0].endswith("_created")
    }


@pytest.fixture(scope="module")
def stream() -> synth.Stream:
    return synth.generate(SPEC)


def _config(tmp_path: Path, stream: synth.Stream) -> Path:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(ln + b"\n" for ln in stream.lines))
    cfg = tmp_path / "driftd.toml"
    cfg.write_text(synth.config_toml(SPEC, events, tmp_path / "state"))
    return cfg


def _first_run(cfg: Path) -> Samples:
    """`driftd run` to the end of the file (follow = false); the metrics it exported."""
    application = app_mod.build(load_settings(cfg, env={}), serve_metrics=False)
    try:
        app_mod.run(application)
        return _samples(application.registry)
    finally:
        application.close()


def _restarted(cfg: Path) -> tuple[app_mod.App, float]:
    """A second start that restores the checkpoints and reads no new event; the wall time of
    the checkpoint it restored, moved one hour back (so its age cannot be the process's)."""
    settings = load_settings(cfg, env={})
    engine = make_engine(settings.checkpoint.url)
    saved = time.time() - 3600
    with engine.begin() as conn:
        conn.execute(sa.update(checkpoints).values(created_at=saved))
    engine.dispose()
    application = app_mod.build(settings, serve_metrics=False)
    application.runner.assign([0])  # as `driftd run` does before its first poll
    return application, saved


def test_counts_alarms_and_statistics_continue_after_a_restart(
    tmp_path: Path, stream: synth.Stream
) -> None:
    cfg = _config(tmp_path, stream)
    before = _first_run(cfg)
    assert before[("driftd_events_consumed_total", (("partition", "0"),))] == len(stream.lines)
    drifts = {k: v for k, v in before.items() if k[0] == "driftd_drift_alarms_total"}
    assert sum(v for k, v in drifts.items() if ("kind", "drift") in k[1]) == 3
    assert any(k[0] == "driftd_drift_statistic" for k in before)
    application, _ = _restarted(cfg)
    try:
        after = _samples(application.registry)
    finally:
        application.close()
    assert _kept(after) == _kept(before)


def test_status_lists_the_alarms_after_a_restart(
    tmp_path: Path,
    stream: synth.Stream,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    cfg = _config(tmp_path, stream)
    _first_run(cfg)
    st = checkpoint_status(load_settings(cfg, env={}))
    assert st["alarm_totals"] == {"total": 23, "by_kind": {"drift": 3, "warning": 20}}
    drifts = [a for a in st["alarms"] if a["kind"] == "drift"]
    assert len(drifts) == 3 and {a["model"] for a in drifts} == {SPEC.model}
    assert [a["ts"] for a in st["alarms"]] == sorted(a["ts"] for a in st["alarms"])
    print_summary(st)
    out = capsys.readouterr().out
    assert "no drift alarms" not in out
    assert "3 drift alarms, 20 warnings" in out


def test_checkpoint_age_counts_from_the_restored_checkpoint(
    tmp_path: Path, stream: synth.Stream
) -> None:
    cfg = _config(tmp_path, stream)
    _first_run(cfg)
    application, saved = _restarted(cfg)
    try:
        t0 = time.time()
        age = _samples(application.registry).get(("driftd_checkpoint_age_seconds", ()))
        t1 = time.time()
    finally:
        application.close()
    assert age is not None, "no checkpoint age after a restart with no new events"
    assert t0 - saved <= age <= t1 - saved


def test_checkpoint_age_counts_from_process_start_without_a_checkpoint(
    tmp_path: Path, stream: synth.Stream
) -> None:
    pipeline = app_mod.build_pipeline(load_settings(_config(tmp_path, stream), env={}))
    collector = StateCollector(pipeline, Lag, lambda: None, started_at=time.time() - 50)
    registry = CollectorRegistry()
    registry.register(collector)
    # No partition held (an idle group member): nothing to save, so no age to alert on.
    assert ("driftd_checkpoint_age_seconds", ()) not in _samples(registry)
    pipeline.partition(0)  # assigned, started empty: no checkpoint yet
    age = _samples(registry)[("driftd_checkpoint_age_seconds", ())]
    assert 50 <= age < 50 + 60


def test_every_cumulative_metric_says_whether_it_survives_a_restart(
    tmp_path: Path, stream: synth.Stream
) -> None:
    settings = load_settings(_config(tmp_path, stream), env={})
    pipeline = app_mod.build_pipeline(settings)
    registry = CollectorRegistry()
    Recorder(registry, {name: m.task for name, m in settings.models.items()}, pipeline)
    registry.register(StateCollector(pipeline, Lag, lambda: None))
    families = list(registry.collect())
    assert {"driftd_events_consumed", "driftd_batch_processing_seconds"} <= {
        f.name for f in families
    }
    for fam in families:
        kinds = (RESTORED.strip() in fam.documentation, PROCESS_LOCAL in fam.documentation)
        if fam.type in ("counter", "histogram"):
            assert sum(kinds) == 1, (fam.name, fam.documentation)
        if fam.name == "driftd_checkpoint_age_seconds":
            assert kinds == (False, True), fam.documentation


def _v1_blob(stream: synth.Stream, tmp_path: Path) -> tuple[bytes, Any]:
    """A partition state as version 1 wrote it: the same, without alarms."""
    pipeline = app_mod.build_pipeline(load_settings(_config(tmp_path, stream), env={}))
    pipeline.partition(0).consumed = 7
    state = state_codec.loads(pipeline.snapshot(0), STATE_KIND, STATE_VERSION)
    for ms in state["models"].values():
        del ms["alarms"]
    return state_codec.dumps(STATE_KIND, 1, state), pipeline


def test_a_version_1_checkpoint_still_loads_with_no_alarms(
    tmp_path: Path, stream: synth.Stream
) -> None:
    blob, pipeline = _v1_blob(stream, tmp_path)
    st = pipeline.restore(0, blob)
    assert st.consumed == 7
    assert pipeline.summary()["alarm_totals"] == {"total": 0, "by_kind": {}}
    newer = state_codec.dumps(STATE_KIND, STATE_VERSION + 1, {})
    with pytest.raises(StateVersionError, match=f"version {STATE_VERSION + 1}.*{STATE_VERSION}"):
        pipeline.restore(0, newer)


def test_status_counts_alarms_beyond_those_kept(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftd.daemon.summary import JOIN_KEYS

    monkeypatch.setenv("COLUMNS", "300")

    alarm = {"kind": "drift", "ts": 0.0, "model": "m", "version": "1", "stream": "score",
             "detector": "ADWIN", "statistic": 1.0, "threshold": 0.5}  # fmt: skip
    print_summary(
        {
            "consumed": 1,
            "models": {"m": dict.fromkeys(JOIN_KEYS, 0)},
            "dead_lettered": {"total": 0, "by_reason": {}},
            "alarms": [alarm],
            "alarm_totals": {"total": 157, "by_kind": {"drift": 150, "warning": 7}},
        }
    )
    out = capsys.readouterr().out
    assert "150 drift alarms, 7 warnings (first 1 of the last 1 kept drifts" in out
