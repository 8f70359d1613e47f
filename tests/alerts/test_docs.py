"""README's alert table and docs/runbooks/ match the generated rules: every alert with its
expression, severity and runbook link, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from driftd.alerts.document import rules_document
from driftd.config import load_settings
from tests.alerts.test_rules import REFERENCE_CONFIG

ROOT = Path(__file__).resolve().parents[2]
# Where the alert table lives.
ALERT_TABLE = ROOT / "README.md"
RUNBOOKS = ROOT / "docs" / "runbooks"
ROW = re.compile(
    r"^\| (Driftd\w+) \| `(.+)`((?: for \w+)?) \| (page|ticket|warning) "
    r"\| \[runbook\]\(([^)]+)\) \|$"
)


def generated() -> set[tuple[str, str, str]]:
    """(alert, expression on one line with its ``for``, severity) of every generated rule."""
    doc = rules_document(load_settings(ROOT / REFERENCE_CONFIG, env={}))
    return {
        (
            r["alert"],
            " ".join(r["expr"].split()) + (f" for {r['for']}" if "for" in r else ""),
            r["labels"]["severity"],
        )
        for g in doc["groups"]
        for r in g["rules"]
        if "alert" in r
    }


def test_the_alert_table_lists_every_generated_alert() -> None:
    rows = [ROW.match(line) for line in ALERT_TABLE.read_text(encoding="utf-8").splitlines()]
    table = {(m.group(1), m.group(2) + m.group(3), m.group(4)) for m in rows if m}
    assert table == generated()
    for m in filter(None, rows):
        link = m.group(5)
        assert link == f"docs/runbooks/{m.group(1)}.md"
        assert (ALERT_TABLE.parent / link).is_file(), link


def test_each_runbook_belongs_to_an_alert_and_says_what_to_check_and_do() -> None:
    alerts = {name for name, _, _ in generated()}
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == alerts
    for name in alerts:
        text = (RUNBOOKS / f"{name}.md").read_text(encoding="utf-8")
        assert text.startswith(f"# {name}\n")
        for part in ("## What it means", "## What to check", "## What to do"):
            assert part in text, f"{name}: {part}"
