"""The README's metrics table and the code agree, both ways: every family a built daemon's
collectors describe has a row with its scraped name, type, labels and unit, every row is a
family the code exports, and the row's restart column says what the family's help says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftd.config import load_settings
from driftd.daemon import app as app_mod
from driftd.daemon.metrics.kinds import COUNTED_HERE, FROM_REGISTRY, LIVE, RESTORED
from tests.unit.test_metrics_help import UNIT, config, described

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = ["metric", "type", "labels", "unit", "survives restart", "meaning"]
TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "stateset": "state set"}
# The first word of the restart column, per kind of help sentence.
SURVIVES = {RESTORED: "yes", FROM_REGISTRY: "yes", COUNTED_HERE: "no", LIVE: "no"}


@dataclass(frozen=True)
class Row:
    """One family as the README or the code states it."""

    name: str
    type: str
    labels: tuple[str, ...]
    unit: str
    survives: str  # "yes" or "no"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def readme_rows(text: str) -> list[Row]:
    """The table under ``## Metrics``: its header must be HEADER, one row per family."""
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    assert lines and _cells(lines[0]) == HEADER, lines[:1]
    assert set("".join(_cells(lines[1]))) <= set("-:"), "the header's separator row"
    rows = []
    for line in lines[2:]:
        metric, kind, labels, unit, survives, meaning = _cells(line)
        assert meaning, f"{metric}: no meaning"
        names = re.findall(r"`([^`]+)`", labels)
        assert names or labels == "-", f"{metric}: labels as `a`, `b` or -: {labels}"
        rows.append(
            Row(metric.strip("`"), kind, tuple(names), unit, survives.split(":")[0].strip())
        )
    return rows


def code_rows(app: app_mod.App) -> Iterator[Row]:
    """Every family the app's collectors describe, as its row should read."""
    for name, kind, doc, labels in described(app):
        (unit,) = UNIT.findall(doc)
        said = [word for sentence, word in SURVIVES.items() if sentence.strip() in doc]
        scraped = f"{name}_total" if kind == "counter" else name
        yield Row(scraped, TYPES[kind], labels, unit, said[0] if said else "yes")


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Row]:
    cfg = config(tmp_path_factory.mktemp("readme"))
    application = app_mod.build(load_settings(cfg, env={}), serve_metrics=False)
    try:
        return {r.name: r for r in code_rows(application)}
    finally:
        application.close()


def test_the_readme_lists_each_family_once() -> None:
    names = [r.name for r in readme_rows(README.read_text())]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_every_exported_family_has_its_readme_row(code: dict[str, Row]) -> None:
    documented = {r.name: r for r in readme_rows(README.read_text())}
    missing = sorted(set(code) - set(documented))
    assert not missing, f"exported but not in the README's table: {missing}"
    wrong = [f"README {documented[n]}\n  code {code[n]}" for n in code if documented[n] != code[n]]
    assert not wrong, "\n".join(wrong)


def test_every_readme_row_is_an_exported_family(code: dict[str, Row]) -> None:
    documented = {r.name for r in readme_rows(README.read_text())}
    stale = sorted(documented - set(code))
    assert not stale, f"in the README's table but exported by no collector: {stale}"


def test_the_parser_reads_a_table_and_rejects_a_wrong_header() -> None:
    table = (
        "x\n## Metrics\n\n| metric | type | labels | unit | survives restart | meaning |\n"
        "|---|---|---|---|---|---|\n"
        "| `a_total` | counter | `m`, `p` | events | yes: checkpoint | what |\n"
        "| `b` | gauge | - | bytes | no: recomputed | what |\n\n## Next\n| not | a row |\n"
    )
    assert readme_rows(table) == [
        Row("a_total", "counter", ("m", "p"), "events", "yes"),
        Row("b", "gauge", (), "bytes", "no"),
    ]
    with pytest.raises(AssertionError):
        readme_rows(table.replace("| unit |", "| units |"))
