"""What every benchmark prints and writes: rows with targets, a rich table, machine facts."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Row:
    """One line of the table and of the JSON ``rows``."""

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: dict[str, Any] | None = None  # {"op": ">=" | "<=", "value": x, "of": "ratio" | "value"}
    passed: bool | None = None
    note: str = ""

    def judge(self) -> Row:
        """Set ``passed`` from the target, when there is one and something was measured."""
        t = self.target
        x = self.ratio if t and t["of"] == "ratio" else self.value
        if t is not None and x is not None:
            self.passed = x >= t["value"] if t["op"] == ">=" else x <= t["value"]
        return self

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["pass"] = d.pop("passed")
        return d


def fmt(x: float | None) -> str:
    """A number for the table: thousands separated, small ones to 3 significant digits."""
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def print_rows(rows: list[Row], title: str, width: int = 220) -> None:
    """The rows as a rich table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("row", "value", "unit", "baseline", "ratio", "target", "result", "note"):
        table.add_column(col, justify="right" if col in ("value", "baseline", "ratio") else "left")
    for r in rows:
        t = r.target
        target = f"{t['op']} {t['value']:g}{' x' if t['of'] == 'ratio' else ''}" if t else ""
        result = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: ""}[r.passed]
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        table.add_row(r.name, fmt(r.value), r.unit, fmt(r.baseline), ratio, target, result, r.note)
    Console(width=width).print(table)


def git_commit() -> str | None:
    """The short commit of the benchmarked tree (None outside a git checkout)."""
    import subprocess

    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info(**extra: Any) -> dict[str, Any]:
    """What the numbers were measured on, plus what a benchmark adds."""
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        **extra,
    }


def report(rows: list[Row], title: str, out: str | Path, **extra: Any) -> int:
    """Print the rows' table, write them (with ``extra`` and the machine) as JSON to ``out``,
    and return the exit status: 1 when a row missed its target, else 0."""
    import json

    print_rows(rows, title)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine_info(commit=git_commit()), **extra}
    doc["rows"] = [r.as_json() for r in rows]
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return 0 if all(r.passed is not False for r in rows) else 1
