"""End to end on the embedded path: a generated stream drifts at a known time; the detectors
configured by `driftd generate` fire for every version soon after it, and hardly before."""

from __future__ import annotations

from pathlib import Path

from driftd.config import load_settings
from driftd.daemon.replay import replay_files
from driftd.sim.synth import StreamSpec, write


def test_detectors_fire_after_the_known_drift_point(tmp_path: Path) -> None:
    spec = StreamSpec(events=30_000, seed=7, versions=("3", "4"), malformed_rate=0.001)
    paths = write(spec, tmp_path)
    summary = replay_files(
        load_settings(paths["config"], env={}), [paths["events"]], progress=False
    )
    drift_ts = spec.start_ts + spec.drift_at * spec.events / spec.rate_per_s
    drifts = [a for a in summary["alarms"] if a["kind"] == "drift"]
    for version in spec.versions:
        for stream, within_s in (("feature:f0", 30.0), ("error", 120.0)):
            mine = [a["ts"] for a in drifts if a["version"] == version and a["stream"] == stream]
            after = [t - drift_ts for t in mine if t >= drift_ts]
            assert after and min(after) <= within_s, (version, stream, mine)
            assert sum(t < drift_ts for t in mine) <= 1, (version, stream, mine)
