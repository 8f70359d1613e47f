"""``driftd check`` on streams from driftd's own simulator: a clean file passes (exit 0) and a
file whose inputs drift fails (exit 6, CHECK_FAILED) naming the detector, its statistic and
threshold; so does a file with unreadable events (the data-quality check); --json is one
parsable document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from driftd.cli.check import check
from driftd.cli.exitcodes import Exit
from driftd.sim.synth import StreamSpec, write

HDDM = re.compile(r'\[\[models\.fraud\.detectors\]\]\ndetector = "HDDM_A"\nstream = "error"\n')


def _stream(tmp: Path, name: str, drift_at: float, malformed: float = 0.0) -> tuple[Path, Path]:
    """(config, events) of a simulated stream; its config keeps the input detector only (the
    CUSUM on feature f0): a CI gate on inputs has no labels to judge the error rate by."""
    spec = StreamSpec(
        events=20_000, seed=1, n_features=3, drift_at=drift_at,
        malformed_rate=malformed, duplicate_rate=0.0,
    )  # fmt: skip
    paths = write(spec, tmp / name)
    config = paths["config"]
    text, n = HDDM.subn("", config.read_text())
    assert n == 1 and 'detector = "CUSUM"' in text
    config.write_text(text)
    return config, paths["events"]


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(check, ["--config", str(config), *args, "--json"])


def _doc(result: Result) -> dict:  # type: ignore[type-arg]
    parsed = json.loads(result.stdout)  # the whole of stdout is the one document
    assert isinstance(parsed, dict)
    return parsed


def test_a_clean_file_passes(tmp_path: Path) -> None:
    config, events = _stream(tmp_path, "clean", drift_at=1.0)
    result = _run(config, "--model", "fraud", str(events))
    assert result.exit_code == Exit.OK, result.output
    doc = _doc(result)
    assert doc["ok"] is True and doc["failed"] == 0 and doc["events"] > 0
    cusum = next(c for c in doc["checks"] if c["check"] == "CUSUM")
    assert cusum["verdict"] == "pass" and cusum["stream"] == "feature:f0"
    assert cusum["threshold"] == 21.0


def test_drifted_inputs_fail_with_check_failed(tmp_path: Path) -> None:
    config, events = _stream(tmp_path, "drifted", drift_at=0.5)
    result = _run(config, str(events))
    assert result.exit_code == Exit.CHECK_FAILED, result.output
    doc = _doc(result)
    assert doc["ok"] is False and doc["failed"] == 1
    cusum = next(c for c in doc["checks"] if c["check"] == "CUSUM")
    assert cusum["verdict"] == "fail" and cusum["alarms"] >= 1
    assert cusum["statistic"] > cusum["threshold"] == 21.0
    assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z$", cusum["first_alarm_ts"])
    human = CliRunner().invoke(check, ["--config", str(config), str(events)])
    assert human.exit_code == Exit.CHECK_FAILED
    assert "FAIL  fraud CUSUM on feature:f0: statistic" in human.stdout


def test_a_clean_reference_then_clean_data_passes(tmp_path: Path) -> None:
    """With --reference, alarms within the reference are its own: a clean reference and
    clean data pass."""
    config, clean = _stream(tmp_path, "clean", drift_at=1.0)
    result = _run(config, "--reference", str(clean), str(clean))
    assert result.exit_code == Exit.OK, result.output
    assert _doc(result)["reference_end_ts"] is not None


@pytest.mark.parametrize("rate, code", [(0.0, Exit.CHECK_FAILED), (0.05, Exit.OK)])
def test_unreadable_events_fail_the_data_quality_check(
    tmp_path: Path, rate: float, code: Exit
) -> None:
    config, events = _stream(tmp_path, "malformed", drift_at=1.0, malformed=0.01)
    result = _run(config, "--max-dead-letter-rate", str(rate), str(events))
    assert result.exit_code == code, result.output
    dq = next(c for c in _doc(result)["checks"] if c["check"] == "dead_letters")
    assert dq["alarms"] > 0 and 0 < dq["statistic"] < 0.05
    assert dq["verdict"] == ("fail" if code else "pass")


def test_an_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    config, events = _stream(tmp_path, "clean", drift_at=1.0)
    result = CliRunner().invoke(check, ["--config", str(config), "--model", "x", str(events)])
    assert result.exit_code == Exit.USAGE and "not in the configuration" in result.output
