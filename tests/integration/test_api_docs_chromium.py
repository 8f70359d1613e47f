"""``/docs`` in a real browser with the network off: ``driftd api serve`` runs as a process,
Debian's headless Chromium loads its ``/docs``, and the DOM it builds holds every operation of
``/openapi.json``, with no console message and no request beyond loopback.

Chromium runs as a plain command, as in ``test_incident_report_chromium``: ``--dump-dom`` gives
the DOM, ``--enable-logging=stderr`` the console, ``--log-net-log`` every request. The proxy and
resolver rules make any fetch beyond 127.0.0.1 fail; ``--virtual-time-budget`` lets the page
fetch its schema and render before the DOM is dumped (virtual time stands still while a request
is in flight, so a slow machine does not cut it short). FastAPI's stock page, which loads
Swagger UI from a CDN, is the control: the same checks find it blank and reaching out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.openapi.docs import get_swagger_ui_html

from tests.integration.conftest import free_port
from tests.services import unavailable

_CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\] (.*)$")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}
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
    # The network is off but for loopback: other hosts resolve to nothing and every proxied
    # fetch is refused (Chromium never proxies loopback).
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=15000",
)


@dataclass(frozen=True)
class Visit:
    dom: str
    console: list[str]  # the console messages Chromium logged for the page
    page_requests: list[str]  # every http(s) URL the page itself asked for


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    return str(binary)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``driftd api serve`` on a free port over an empty SQLite registry; its base URL."""
    folder = tmp_path_factory.mktemp("api")
    config = folder / "driftd.toml"
    config.write_text(
        '[models.fraud]\nfeatures = { amount = "numeric" }\n'
        f'[registry]\nurl = "sqlite:///{folder / "reg.db"}"\n'
    )
    port = free_port()
    cmd = [sys.executable, "-m", "driftd.cli", "api", "serve", "--config", str(config)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "api did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _page_requests(netlog: Path) -> list[str]:
    """Requests the page made; Chromium's own traffic has no origin as its initiator."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params", {}) for e in log["events"] if e["type"] == start]
    return [
        p["url"]
        for p in starts
        if p.get("initiator") != "not an origin"
        and re.match(r"(https?|wss?|ftp)://", p.get("url", ""))
    ]


def visit(chromium: str, url: str, work: Path) -> Visit:
    """Open ``url`` once in a fresh profile and dump the DOM it built."""
    work.mkdir(parents=True, exist_ok=True)
    netlog = work / "netlog.json"
    cmd = [chromium, *_FLAGS, f"--user-data-dir={work / 'profile'}", f"--log-net-log={netlog}"]
    try:
        done = subprocess.run(
            [*cmd, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish within 120 s: {exc.stderr!r}")
    assert done.returncode == 0, done.stderr[-3000:]
    console = [m.group(1) for line in done.stderr.splitlines() if (m := _CONSOLE.search(line))]
    return Visit(done.stdout, console, _page_requests(netlog))


class _Operations(HTMLParser):
    """(method, path) of every Swagger UI operation block: ``div.opblock.opblock-<method>``
    holding a ``span.opblock-summary-path[data-path]``."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.found: set[tuple[str, str]] = set()
        self.blocks = 0
        self._method = ""
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if "opblock" in classes:
            self.blocks += 1
            self._method = next(
                (
                    c.removeprefix("opblock-")
                    for c in classes
                    if c.removeprefix("opblock-") in _METHODS
                ),
                "",
            )
        if "opblock-summary-path" in classes and a.get("data-path"):
            self.found.add((self._method, str(a["data-path"])))


def _off_loopback(urls: list[str]) -> list[str]:
    return [u for u in urls if urlsplit(u).hostname not in _LOOPBACK]


def test_docs_render_every_operation_offline(chromium: str, api: str, tmp_path: Path) -> None:
    schema = httpx.get(f"{api}/openapi.json").json()
    expected = {(m, p) for p, item in schema["paths"].items() for m in item if m in _METHODS}
    assert ("get", "/api/v1/models") in expected and len(expected) > 20

    seen = visit(chromium, f"{api}/docs", tmp_path / "docs")
    ops = _Operations(seen.dom)
    assert ops.found == expected, sorted(expected ^ ops.found)
    assert ops.blocks == len(expected)
    assert "Unable to render" not in seen.dom
    assert seen.console == [], seen.console
    assert _off_loopback(seen.page_requests) == [], seen.page_requests
    # The net-log does see the page's own fetches, so the emptiness above means something.
    fetched = {urlsplit(u).path for u in seen.page_requests}
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/openapi-3.0.json"} <= fetched, fetched


def test_the_checks_catch_fastapis_cdn_page(chromium: str, api: str, tmp_path: Path) -> None:
    page = tmp_path / "cdn_docs.html"
    stock = get_swagger_ui_html(openapi_url=f"{api}/openapi.json", title="stock")
    page.write_bytes(bytes(stock.body))
    seen = visit(chromium, page.as_uri(), tmp_path / "cdn")
    assert _Operations(seen.dom).blocks == 0  # blank: Swagger UI never arrived
    assert any(urlsplit(u).hostname == "cdn.jsdelivr.net" for u in seen.page_requests)
    assert any("SwaggerUIBundle is not defined" in m for m in seen.console), seen.console
