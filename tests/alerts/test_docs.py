"""docs/alerts.md (the alert table) and docs/runbooks/ match the generated rules: every alert
with its severity and runbook link, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from driftd.alerts.document import rules_document
from driftd.config import load_settings
from tests.alerts.test_rules import REFERENCE_CONFIG

ROOT = Path(__file__).resolve().parents[2]
# Where the alert table lives (it may move into README.md: change only this).
ALERT_TABLE = ROOT / "docs" / "alerts.md"
RUNBOOKS = ROOT / "docs" / "runbooks"
ROW = re.compile(
    r"^\| (Driftd\w+) \| `.+`(?: for \w+)? \| (page|ticket|warning) \| \[runbook\]\(([^)]+)\) \|$"
)


def generated() -> set[tuple[str, str]]:
    doc = rules_document(load_settings(ROOT / REFERENCE_CONFIG, env={}))
    return {
        (r["alert"], r["labels"]["severity"])
        for g in doc["groups"]
        for r in g["rules"]
        if "alert" in r
    }


def test_the_alert_table_lists_every_generated_alert() -> None:
    rows = [ROW.match(line) for line in ALERT_TABLE.read_text(encoding="utf-8").splitlines()]
    table = {(m.group(1), m.group(2)) for m in rows if m}
    assert table == generated()
    for m in filter(None, rows):
        link = m.group(3)
        assert link == f"runbooks/{m.group(1)}.md"
        assert (ALERT_TABLE.parent / link).is_file(), link


def test_each_runbook_belongs_to_an_alert_and_says_what_to_check_and_do() -> None:
    alerts = {name for name, _ in generated()}
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == alerts
    for name in alerts:
        text = (RUNBOOKS / f"{name}.md").read_text(encoding="utf-8")
        assert text.startswith(f"# {name}\n")
        for part in ("## What it means", "## What to check", "## What to do"):
            assert part in text, f"{name}: {part}"
