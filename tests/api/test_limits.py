"""Request bodies: authentication comes before the body is read, at most
``registry.api_max_body_bytes`` of it is read (413 beyond, chunked bodies too), and a body that
cannot be parsed is answered with ``{"error", "detail"}`` like every other error."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from driftd.api import create_app
from driftd.api.limits import DEFAULT_MAX_BODY_BYTES
from driftd.config import RegistrySettings
from driftd.registry import Registry
from tests.api.conftest import Tokens

SHA = "ab" * 32
URL = "/api/v1/models/fraud/versions"
CHUNK = 64 * 1024
LIMIT = 256 * 1024


class Body:
    """A chunked request body of up to ``total`` bytes that counts how much was pulled."""

    def __init__(self, total: int = 300 * 1024 * 1024) -> None:
        self.total, self.pulled = total, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b" " * CHUNK
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield chunk


def post(app: Any, body: Any, headers: dict[str, str]) -> httpx.Response:
    """POST ``body`` to the ASGI app in this process (no server): the body is pulled lazily."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.post(URL, content=body, headers=headers)

    return asyncio.run(go())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_the_default_limit_is_the_configured_default() -> None:
    assert RegistrySettings().api_max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024


@pytest.mark.parametrize("who", ["none", "bad", "revoked"])
def test_an_unauthenticated_body_is_not_read(registry: Registry, tokens: Tokens, who: str) -> None:
    headers = {
        "none": {},
        "bad": {"Authorization": "Bearer drt_0000_nope"},
        "revoked": {"Authorization": f"Bearer {tokens.revoked}"},
    }[who]
    body = Body()
    r = post(create_app(registry), body, headers)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert set(r.json()) == {"error", "detail"} and r.json()["error"] == "Unauthorized"
    assert body.pulled == 0


def test_a_chunked_body_over_the_limit_is_refused_while_streaming(
    registry: Registry, tokens: Tokens
) -> None:
    body = Body()
    r = post(create_app(registry, max_body_bytes=LIMIT), body, bearer(tokens.approver))
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "PayloadTooLarge"
    assert f"{LIMIT} bytes" in r.json()["detail"] and "api_max_body_bytes" in r.json()["detail"]
    assert body.pulled <= LIMIT + CHUNK  # read up to the limit, then no more


def test_a_declared_length_over_the_limit_is_refused_before_reading(
    registry: Registry, tokens: Tokens
) -> None:
    app = create_app(registry, max_body_bytes=LIMIT)
    with TestClient(app) as client:
        r = client.post(URL, content=b"{" + b" " * LIMIT + b"}", headers=bearer(tokens.approver))
        assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"
        # Within the limit, a request is served as before: the body reaches the endpoint.
        ok = {"artifact_uri": "s3://b/k", "artifact_sha256": SHA, "artifact_size": 1}
        r = client.post(URL, json={**ok, "description": "d" * 9_000}, headers=bearer(tokens.admin))
        assert r.status_code == 201, r.text
        bad_length = {**bearer(tokens.approver), "Content-Length": "abc"}
        r = client.post(URL, content=b"x" * 100, headers=bad_length)
        assert r.status_code == 400 and set(r.json()) == {"error", "detail"}


def test_a_viewer_gets_403_and_an_approver_writes_with_a_streamed_body(
    registry: Registry, tokens: Tokens
) -> None:
    import json

    app = create_app(registry)
    payload = json.dumps({"artifact_uri": "s3://b/k", "artifact_sha256": SHA, "artifact_size": 1})

    async def parts() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 7):
            yield payload[i : i + 7].encode()

    assert post(app, parts(), bearer(tokens.viewer)).status_code == 403
    r = post(app, parts(), bearer(tokens.approver))
    assert r.status_code == 201 and r.json()["created_by"] == "ann"


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"{bad", 422, "body: not valid JSON"),
        (b'{"artifact_uri": "\xff"}', 400, "not valid JSON"),
        (b"[" * 100_000, 400, "not valid JSON"),
        (b"[1, 2]", 422, "body: Input should be a valid dictionary"),
    ],
)
def test_malformed_bodies_get_error_and_detail(
    client: TestClient, tokens: Tokens, content: bytes, status: int, words: str
) -> None:
    r = client.post(URL, content=content, headers=bearer(tokens.approver))
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "detail"}, r.json()
    assert words in r.json()["detail"], r.json()


def test_unknown_paths_and_methods_get_error_and_detail(client: TestClient) -> None:
    for r in (client.get("/nope"), client.put("/healthz")):
        assert set(r.json()) == {"error", "detail"}, r.json()


# -- through a real server -----------------------------------------------------------------


@pytest.fixture
def server(registry: Registry) -> Iterator[int]:
    """``create_app`` served by uvicorn on a free loopback port, as `driftd api serve` does."""
    import uvicorn

    config = uvicorn.Config(create_app(registry), host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (srv.started and srv.servers):
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield srv.servers[0].sockets[0].getsockname()[1]
    srv.should_exit = True
    thread.join(timeout=60)


def _exchange(port: int, head: bytes, body: bytes) -> bytes:
    """Send a request head and the start of its body; return what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            got = s.recv(65536)
            if not got:
                break
            answer += got
        return answer


def test_a_real_server_answers_401_without_waiting_for_a_300_mb_body(server: int) -> None:
    # 300 MB announced, 1 KiB sent: the 401 must come without the rest of the body (before,
    # the server waited for all of it, and parsed it).
    head = (
        f"POST {URL} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        f"Content-Length: {300 * 1024 * 1024}\r\n\r\n"
    ).encode()
    answer = _exchange(server, head, b" " * 1024)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_a_real_server_refuses_a_chunked_body_over_the_limit(server: int, tokens: Tokens) -> None:
    head = (
        f"POST {URL} HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {tokens.approver}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"
    # Just past the limit, and the body not finished: the 413 comes without waiting for more.
    answer = _exchange(server, head, chunk * (DEFAULT_MAX_BODY_BYTES // CHUNK + 1))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_api_serve_uses_the_configured_limit(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from click.testing import CliRunner

    from driftd.cli.main import cli

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(app))
    config = tmp_path / "driftd.toml"
    config.write_text(
        f'[registry]\nurl = "{db_url}"\napi_max_body_bytes = 4096\n'
        '[models.fraud]\nfeatures = { amount = "numeric" }\n'
    )
    res = CliRunner().invoke(cli, ["api", "serve", "-c", str(config)])
    assert res.exit_code == 0, res.output
    assert served[0].state.max_body_bytes == 4096
