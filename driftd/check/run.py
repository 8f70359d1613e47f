"""Run ``driftd check``: replay the reference (when given) and the data files through the
model's configured pipeline (``driftd.daemon.replay``), then judge the summary (``gate``)."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from driftd.check.gate import GateReport, gate
from driftd.config import Settings
from driftd.errors import ConfigError


def last_event_ts(path: Path) -> float | None:
    """The latest event time (``ts``) in an event file (JSON lines, gzip or not); None when it
    holds no readable event."""
    opener = gzip.open if path.suffix == ".gz" else open
    latest: float | None = None
    with opener(path, "rb") as fh:
        for line in fh:
            try:
                ts = float(json.loads(line)["ts"])
            except (ValueError, KeyError, TypeError):
                continue
            latest = ts if latest is None else max(latest, ts)
    return latest


def for_model(settings: Settings, model: str | None) -> Settings:
    """``settings`` with only ``model`` (all models: None); ConfigError for an unknown one."""
    if model is None:
        return settings
    if model not in settings.models:
        known = ", ".join(sorted(settings.models)) or "none"
        raise ConfigError(f"model {model!r} is not in the configuration (models: {known})")
    return settings.model_copy(update={"models": {model: settings.models[model]}})


def run_check(
    settings: Settings,
    data: list[Path],
    reference: Path | None = None,
    model: str | None = None,
    max_dead_rate: float = 0.0,
) -> GateReport:
    """Replay ``reference`` then ``data`` from empty state (the daemon's checkpoints untouched;
    dead letters go to a temporary file) and judge it: alarms within the reference are its
    own and ignored, so detectors warm up and pinned checks take their reference from it."""
    from driftd.daemon.replay import replay_files

    chosen = for_model(settings, model)
    ref_end = last_event_ts(reference) if reference is not None else None
    files = ([reference] if reference is not None else []) + list(data)
    with tempfile.TemporaryDirectory(prefix="driftd-check-") as tmp:
        summary = replay_files(chosen, files, Path(tmp) / "dead-letters.jsonl", progress=False)
    dead = dict(summary["dead_lettered"]["by_reason"])
    if model is not None:
        dead.pop("unknown_model", None)  # other models' events: not this model's data
    return gate(
        summary["alarms"],
        chosen.models,
        int(summary["consumed"]),
        dead,
        reference_end_ts=ref_end,
        max_dead_rate=max_dead_rate,
    )
