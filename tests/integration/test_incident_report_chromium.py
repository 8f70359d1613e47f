"""The incident report in a real browser: Debian's headless Chromium renders it with the network
off, logs nothing to the console, asks the network for nothing, and has every plot in its DOM.

Chromium runs as a plain command (no driver, no DevTools client): ``--dump-dom`` gives the DOM
it built, ``--screenshot`` the picture, ``--enable-logging=stderr`` its console messages, and
``--log-net-log`` every request. The proxy and resolver rules make any remote fetch fail, as it
would on an air-gapped laptop. A control page with a script error and a remote image shows that
these checks do catch what they look for. The screenshot lands in the test's tmp_path and, when
DRIFTD_TEST_ARTIFACTS names a folder, is copied there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from driftd.incidents.report import TOP_FEATURES, render
from tests.services import unavailable
from tests.unit.test_incident_report import T0, evidence

WINDOW = "1280,2200"  # tall enough for the whole sample report
_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\] (.*)$")
_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-sandbox",  # CI runs as root in a container
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    # The network is off: every host resolves to nothing and every proxied fetch is refused.
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


@dataclass(frozen=True)
class Visit:
    stdout: str
    console: list[str]  # the console messages Chromium logged for the page
    page_requests: list[str]  # remote URLs the page itself asked for


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    return str(binary)


def _page_requests(netlog: Path) -> list[str]:
    """Remote requests the page made; Chromium's own traffic has no origin as its initiator."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and e.get("params", {}).get("initiator") != "not an origin"
        and re.match(r"(https?|wss?|ftp)://", e["params"].get("url", ""))
    ]


def visit(chromium: str, page: Path, work: Path, *action: str) -> Visit:
    """Open ``page`` once in a fresh profile and do ``action`` (--dump-dom or --screenshot=...)."""
    work.mkdir(parents=True, exist_ok=True)
    netlog = work / "netlog.json"
    cmd = [chromium, *_FLAGS, f"--user-data-dir={work / 'profile'}", f"--log-net-log={netlog}"]
    try:
        done = subprocess.run(
            [*cmd, f"--window-size={WINDOW}", *action, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish within 90 s: {exc.stderr!r}")
    assert done.returncode == 0, done.stderr[-3000:]
    console = [m.group(1) for line in done.stderr.splitlines() if (m := _CONSOLE.search(line))]
    return Visit(done.stdout, console, _page_requests(netlog))


class _Plots(HTMLParser):
    def __init__(self, dom: str) -> None:
        super().__init__()
        self.plots: list[str] = []
        self.titled: int = 0
        self._in_svg = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self.plots.append(str(dict(attrs).get("data-plot")))
            self._in_svg = True
        elif tag == "title" and self._in_svg:
            self.titled += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._in_svg = False


def _keep(path: Path) -> None:
    """Copy an artifact to $DRIFTD_TEST_ARTIFACTS when CI (or a person) asks for it."""
    folder = os.environ.get("DRIFTD_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(folder) / path.name)


def test_report_renders_offline_with_every_plot_and_no_console_message(
    chromium: str, tmp_path: Path
) -> None:
    ev = evidence()
    page = tmp_path / "incident_report.html"
    page.write_text(render(ev, generated_at=T0 + 3600), encoding="utf-8")

    dom = visit(chromium, page, tmp_path / "dom", "--dump-dom")
    plots = _Plots(dom.stdout)
    expected = [f"feature:{s.feature}" for s in ev.shifts[:TOP_FEATURES]]
    assert plots.plots == [*expected, "statistic", "performance"]
    assert plots.titled == len(plots.plots)  # every plot kept its <title> in the built DOM
    assert dom.console == [], dom.console
    assert dom.page_requests == [], dom.page_requests

    shot = tmp_path / "incident_report.png"
    picture = visit(chromium, page, tmp_path / "shot", f"--screenshot={shot}")
    assert picture.console == [] and picture.page_requests == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == tuple(int(v) for v in WINDOW.split(","))
    _keep(shot)
    _keep(page)


def test_the_checks_catch_a_script_error_and_a_remote_asset(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><img src='http://assets.example.com/x.png'>"
        "<script>throw new Error('boom')</script></body></html>",
        encoding="utf-8",
    )
    seen = visit(chromium, page, tmp_path / "bad", "--dump-dom")
    assert any("Uncaught Error: boom" in m for m in seen.console), seen.console
    assert seen.page_requests == ["http://assets.example.com/x.png"]
    # The report's own policy turns the same image into a console message, not a request.
    page.write_text(
        render(evidence()).replace("</body>", "<img src='http://x.example/i.png'></body>")
    )
    blocked = visit(chromium, page, tmp_path / "blocked", "--dump-dom")
    assert blocked.page_requests == []
    assert any("Content Security Policy" in m for m in blocked.console), blocked.console
