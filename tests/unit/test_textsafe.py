"""Text a terminal shows as is: control, bidi and format characters are escaped, markup too."""

from __future__ import annotations

import pytest

from driftd.textsafe import markup_safe, safe


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, ünïcödé and emoji 🚀", "plain text, ünïcödé and emoji 🚀"),
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
        ("line\r\nFORGED 200 OK\tx", "line\\r\\nFORGED 200 OK\\tx"),
        ("nul\x00 del\x7f c1\x85\x9b", "nul\\x00 del\\x7f c1\\x85\\x9b"),
        ("abc\u202edcba\u2066\u2069", "abc\\u202edcba\\u2066\\u2069"),
        ("zero\u200bwidth\ufeff\u00ad", "zero\\u200bwidth\\ufeff\\xad"),
        ("para\u2028graph\u2029", "para\\u2028graph\\u2029"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("tag \U000e0041 char", "tag \\U000e0041 char"),
        ("C:\\models\\m.pt", "C:\\models\\m.pt"),  # a backslash alone is not escaped
    ],
)
def test_safe_escapes_what_changes_the_terminal(raw: str, shown: str) -> None:
    assert safe(raw) == shown
    assert safe(shown) == shown  # what it prints is printable as is


def test_safe_takes_any_value() -> None:
    assert safe(None) == "None" and safe(3) == "3" and safe(["a\nb"]) == "['a\\nb']"


def test_markup_safe_escapes_rich_markup_too() -> None:
    from rich.console import Console

    console = Console(record=True, width=200, color_system=None)
    console.print(f"[bold]label[/] {markup_safe('[red]not red[/red] [link=http://x]y[/link]')}")
    assert "label [red]not red[/red] [link=http://x]y[/link]" in console.export_text()
    assert markup_safe("a\x1b[b]c") == "a\\x1b\\[b]c"


def test_replay_summary_escapes_versions_from_the_stream(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftd.daemon.replay import print_summary
    from driftd.daemon.summary import JOIN_KEYS

    monkeypatch.setenv("COLUMNS", "300")
    evil = "v1\x1b[2J\u202e[red]x[/red]"
    window = {
        "start": 0.0, "version": evil, "predictions": 1, "error_rate": None,
        "latency_mean_ms": None, "latency_p95_ms_at_most": None, "joined": 1, "expired": 0,
    }  # fmt: skip
    alarm = {"kind": "drift", "ts": 0.0, "model": "m", "version": evil, "stream": "score",
             "detector": "ADWIN", "statistic": 1.0}  # fmt: skip
    print_summary(
        {
            "consumed": 1,
            "models": {"m": dict.fromkeys(JOIN_KEYS, 0)},
            "dead_lettered": {"total": 0, "by_reason": {}},
            "windows": {"m": [window]},
            "alarms": [alarm],
        }
    )
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert out.count("v1\\x1b[2J\\u202e[red]x[/red]") == 2
