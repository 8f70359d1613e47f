"""detectors/ stays pure: it imports no I/O, clock, logging, Kafka, metrics or database code."""

from __future__ import annotations

import ast
from pathlib import Path

import driftd.detectors

FORBIDDEN = {
    "logging",
    "time",
    "datetime",
    "socket",
    "os",
    "sys",
    "subprocess",
    "threading",
    "asyncio",
    "kafka",
    "confluent_kafka",
    "prometheus_client",
    "sqlalchemy",
    "psycopg",
    "requests",
    "urllib",
    "http",
    "driftd.daemon",
    "driftd.cli",
    "driftd.db",
    "rich",
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_detectors_import_nothing_impure() -> None:
    root = Path(driftd.detectors.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert files
    for path in files:
        bad = {
            n
            for n in _imports(path)
            if n in FORBIDDEN or any(n.startswith(f + ".") for f in FORBIDDEN)
        }
        assert not bad, f"{path.name} imports {sorted(bad)}"
