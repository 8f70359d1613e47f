"""What commands print: times as ISO 8601 in UTC (JSON and tables), ``--at`` in either form,
and nothing wrapped or cut short when stdout is not a terminal."""

from __future__ import annotations

import io
import json
from typing import Any

import click
import pytest
from click.testing import CliRunner

from driftd.cli import output
from driftd.cli.options import TIME, parse_time
from driftd.cli.output import clip, console, echo_json, iso, iso_times, when

T = 1796283076.29  # 2026-12-03T07:31:16.290Z


def test_times_are_iso_8601_in_utc() -> None:
    assert iso(T) == "2026-12-03T07:31:16.290Z"
    assert iso(1796283076) == "2026-12-03T07:31:16Z"
    assert when(T) == "2026-12-03T07:31:16Z" and when(None) == "-"


def test_json_documents_carry_iso_times_at_any_depth() -> None:
    doc = {"created_at": T, "ts": 0, "valid_to": None, "drift_at": 0.5, "seq": 7,
           "history": [{"valid_from": T, "reason": "x"}], "opened_ts": T, "ok": True}  # fmt: skip
    assert iso_times(doc) == {
        "created_at": "2026-12-03T07:31:16.290Z", "ts": "1970-01-01T00:00:00Z",
        "valid_to": None, "drift_at": 0.5, "seq": 7,
        "history": [{"valid_from": "2026-12-03T07:31:16.290Z", "reason": "x"}],
        "opened_ts": "2026-12-03T07:31:16.290Z", "ok": True,
    }  # fmt: skip


def test_echo_json_prints_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    echo_json({"started_at": T, "n": 1})
    assert json.loads(capsys.readouterr().out) == {"started_at": iso(T), "n": 1}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1796283076.29", T), ("2026-12-03T07:31:16.290Z", T), ("2026-12-03T08:31:16.29+01:00", T),
     ("2026-12-03T07:31:16.29", T), ("2026-12-02", 1796169600.0)],
)  # fmt: skip
def test_at_options_take_iso_8601_or_unix_seconds(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)

    @click.command()
    @click.option("--at", type=TIME)
    def show(at: float) -> None:
        click.echo(repr(at))

    res = CliRunner().invoke(show, ["--at", text])
    assert res.exit_code == 0 and float(res.output) == pytest.approx(seconds)


def test_a_time_that_is_neither_is_a_usage_error() -> None:
    @click.command()
    @click.option("--at", type=TIME)
    def show(at: float) -> None:
        raise AssertionError("not reached")

    res = CliRunner().invoke(show, ["--at", "yesterday"])
    assert res.exit_code == 2 and "ISO 8601" in res.output and "Unix seconds" in res.output


def test_off_a_terminal_tables_are_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns rich squeezed dates into ``2026-12-…`` and headers into ``predicti…``."""
    from rich.table import Table

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    table = Table("model", "predictions_per_second", "created", "artifact")
    long_uri = "file:///srv/models/" + "x" * 150 + "/model.pt"
    table.add_row("fraud-detector-eu-west", "123.5", when(T), long_uri)
    console().print(table)
    text = out.getvalue()
    assert "predictions_per_second" in text and when(T) in text and long_uri in text
    assert "…" not in text


def test_off_a_terminal_nothing_is_clipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from driftd.cli.ops import lineage_tree

    text = "y" * 500
    assert clip(text, 10) == text  # tests' stdout is no terminal
    monkeypatch.setattr(output, "on_terminal", lambda: True)
    assert clip(text, 10) == "y" * 9 + "…"
    monkeypatch.setattr(output, "on_terminal", lambda: False)
    params = {f"p{i}": "v" * 20 for i in range(20)}  # its JSON is far over 200 characters
    node: dict[str, Any] = {
        "uri": "models:/fraud/1",
        "version": {"stage": "production", "aliases": ["champion"], "artifact_uri": "file:///m",
                    "artifact_sha256": "ab" * 32},
        "run": {"id": "r1", "status": "finished", "params": params, "metrics": {}, "seeds": {},
                "code": {}, "environment": {}},
        "approvals": [], "history": [],
    }  # fmt: skip
    buf = io.StringIO()
    monkeypatch.setattr("sys.stdout", buf)
    console().print(lineage_tree(node, "version"))
    printed = buf.getvalue()
    assert json.dumps(params) in printed and "ab" * 32 in printed  # whole, parseable JSON
