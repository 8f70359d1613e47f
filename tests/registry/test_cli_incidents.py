"""``driftd incidents ls|show|ack|resolve`` and ``driftd report`` against a real registry
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from driftd.cli.main import cli
from driftd.contracts.monitor import DriftDetected
from driftd.incidents.evidence import to_json
from driftd.incidents.explain import explain
from driftd.incidents.lifecycle import Policy
from driftd.incidents.store import IncidentStore


def _open(registry: Any) -> str:
    import numpy as np

    rng = np.random.default_rng(0)
    shifts = explain(
        {"amount": rng.normal(size=500), "age": rng.normal(size=500)},
        {"amount": rng.normal(1.0, size=500), "age": rng.normal(size=500)},
        {"amount": "numeric", "age": "numeric"},
        n_boot=50,
    )
    alarm = DriftDetected("fraud", "*", "feature:amount", "window:drift:ks", "drift", 900.0,
                          0.3, 0.01, "pinned:[0,300)")  # fmt: skip
    store = IncidentStore(registry, Policy())
    ((inc, _),) = store.record([alarm], {("fraud", "*", "feature:amount"): to_json(shifts)})
    return inc.id


def test_the_on_call_engineer_lists_shows_acks_resolves_and_reports(
    registry: Any, db_url: str, tmp_path: Path
) -> None:
    iid = _open(registry)
    run = CliRunner(env={"DRIFTD_REGISTRY__SECRET": "test-secret"}).invoke  # the fixture's key
    ls = run(cli, ["incidents", "ls", "--db", db_url, "--json"])
    assert ls.exit_code == 0, ls.output
    (row,) = json.loads(ls.output)
    assert row["id"] == iid and row["url"].endswith(f"/api/v1/incidents/{iid}")
    shown = run(cli, ["incidents", "show", iid, "--db", db_url])
    assert shown.exit_code == 0 and "moved: amount" in shown.output, shown.output
    assert shown.output.index("moved: amount") < shown.output.index("moved: age")
    ack = run(cli, ["incidents", "ack", iid, "--db", db_url, "--actor", "ann", "--note", "mine"])
    assert ack.exit_code == 0 and "acknowledged by ann" in ack.output
    done = run(cli, ["incidents", "resolve", iid, "--db", db_url, "--actor", "ann"])
    assert done.exit_code == 0 and "resolved" in done.output
    again = run(cli, ["incidents", "ack", iid, "--db", db_url])
    assert again.exit_code == 1 and "resolved" in again.output
    missing = run(cli, ["incidents", "show", "inc-0000000000000000", "--db", db_url])
    assert missing.exit_code == 1 and "no incident" in missing.output
    out = tmp_path / "r.html"
    rep = run(cli, ["report", iid, "--db", db_url, "--out", str(out)])
    assert rep.exit_code == 0 and str(out.resolve()) in rep.output.replace("\n", "")
    page = out.read_text()
    assert 'data-plot="feature:amount"' in page and 'data-plot="feature:age"' in page
