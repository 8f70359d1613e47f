"""The README's configuration examples for detectors and window checks are valid as written."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from driftd.config import ModelSettings
from driftd.daemon.detector_monitor import check_detectors, threshold_warnings

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = '[models.fraud]\nfeatures = { amount = "numeric", country = "categorical" }\n'


def _blocks(marker: str) -> list[str]:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    return [b for b in blocks if marker in b]


@pytest.mark.parametrize("marker", ["[[models.fraud.detectors]]", "[[models.fraud.checks]]"])
def test_the_readme_examples_validate(marker: str) -> None:
    (block,) = _blocks(marker)
    models = {
        name: ModelSettings(**table)
        for name, table in tomllib.loads(HEADER + block)["models"].items()
    }
    check_detectors(models)  # builds every detector with its params
    assert threshold_warnings(models) == []  # the examples hold their stated rates
    fraud = models["fraud"]
    assert fraud.detectors or fraud.checks


def test_the_readme_multiclass_example_validates() -> None:
    (block,) = _blocks("[[models.triage.performance]]")
    triage = ModelSettings(**tomllib.loads(block)["models"]["triage"])
    assert triage.classes == ["low", "medium", "high"] and triage.performance[0].metric == "f1"
