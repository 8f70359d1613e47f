"""The API's one error shape, ``{"error": <name>, "detail": <message>}``, used by the app's
exception handlers and by the body gate that answers before the app runs."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse

HTTP_ERRORS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "InvalidRequest",
    503: "Unavailable",
}
DATABASE_DOWN = "the registry database is unavailable; retry later"


def error_response(
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    error: str | None = None,
) -> JSONResponse:
    """An error answer; ``error`` defaults to the status's name (``HTTPError`` when unnamed)."""
    name = error or HTTP_ERRORS.get(status, "HTTPError")
    return JSONResponse({"error": name, "detail": detail}, status, headers=headers)
