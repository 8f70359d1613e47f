"""Request bodies: authenticate first, then read at most a configured number of bytes.

FastAPI reads and parses a body before it runs the dependencies that authenticate, so an
anonymous client could make the API buffer and parse any amount. ``BodyGate`` sits in front of
the app: a request that carries a body to ``/api/`` must authenticate before a byte of the body
is read (401 otherwise), and no body is read past ``max_body_bytes`` (413), whether it announces
its length or arrives in chunks. The body read is handed on to the app, and the principal found
to the ``principal`` dependency, so the token is checked once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftd.api.auth import PRINCIPAL_KEY, authenticate_header
from driftd.api.errors import DATABASE_DOWN, error_response
from driftd.registry import Registry

DEFAULT_MAX_BODY_BYTES = 1 << 20  # as registry.api_max_body_bytes
PROTECTED_PREFIX = "/api/"


class _ClientGone(Exception):
    """The client disconnected before its body was complete: there is no one to answer."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """An error in the API's shape; the connection closes (the body may be left unread)."""
    answer = error_response(status, detail, {**(headers or {}), "Connection": "close"})
    await answer(scope, receive, send)


class BodyGate:
    """ASGI middleware: authentication before the body, and a ceiling on the body's size."""

    def __init__(self, app: ASGIApp, registry: Registry, max_body_bytes: int) -> None:
        self.app, self.registry, self.limit = app, registry, max_body_bytes

    def _too_large(self) -> str:
        return (
            f"the request body is larger than {self.limit} bytes "
            "(registry.api_max_body_bytes); send less"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding") is not None
        if not chunked and length in (None, "0"):  # no body (HTTP/1.1): nothing to guard
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(PROTECTED_PREFIX):
            try:
                who = await run_in_threadpool(
                    authenticate_header, self.registry, _header(scope, b"authorization")
                )
            except HTTPException as exc:  # a 401 naming what is wrong with the token
                status, detail, headers = exc.status_code, exc.detail, exc.headers
                await _answer(scope, receive, send, status, detail, headers)
                return
            except sa.exc.OperationalError:
                await _answer(scope, receive, send, 503, DATABASE_DOWN)
                return
            scope.setdefault("state", {})[PRINCIPAL_KEY] = who
        if length is not None and not chunked:
            if not length.isdigit():
                detail = f"Content-Length must be a number of bytes, got {length[:40]!r}"
                await _answer(scope, receive, send, 400, detail)
                return
            if int(length) > self.limit:
                await _answer(scope, receive, send, 413, self._too_large())
                return
        try:
            body = await self._read(receive)
        except _ClientGone:
            return
        if body is None:
            await _answer(scope, receive, send, 413, self._too_large())
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, read chunk by chunk; None as soon as it passes the limit."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the body already read, then defers to the server's."""
    done = False

    async def replay() -> Message:
        nonlocal done
        if done:
            return await receive()
        done = True
        message: dict[str, Any] = {"type": "http.request", "body": body, "more_body": False}
        return message

    return replay
