"""The registry's HTTP API as a FastAPI app: ``create_app(registry)``.

Everything lives under ``/api/v1`` except ``/healthz`` (liveness, no auth) and ``/readyz``
(checks the database: 503 when it is unreachable). The OpenAPI schema is at ``/openapi.json``, and
Swagger UI at ``/docs``, served from local assets so that it works offline (``docs``).
Errors always answer ``{"error": <class name>, "detail": <message>}``: a registry error with its
``status``, 401 / 403 for tokens and roles, 413 for a body over ``max_body_bytes`` (read only
after authentication, see ``limits``), 400 / 422 for a body that is not JSON or names a field
wrongly, saying which field and what was expected.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

import driftd
from driftd.api import incidents, reads, rollouts, runs, writes
from driftd.api.docs import mount_docs
from driftd.api.errors import DATABASE_DOWN, error_response
from driftd.api.limits import DEFAULT_MAX_BODY_BYTES, BodyGate
from driftd.api.schemas import Health
from driftd.config import IncidentSettings
from driftd.incidents.store import IncidentStore
from driftd.registry import Registry, RegistryError
from driftd.retrain.store import LabeledStore

log = logging.getLogger("driftd.api")


def _field(loc: tuple[Any, ...]) -> str:
    """``("body", "stage")`` → ``body.stage``; ``("query", "limit")`` → ``query.limit``."""
    return ".".join(str(p) for p in loc) or "request"


def validation_message(exc: RequestValidationError) -> str:
    """One line per problem: which field, and what was expected instead."""
    parts = []
    for e in exc.errors():
        msg = str(e.get("msg", "invalid"))
        ctx = e.get("ctx") or {}
        loc = tuple(e.get("loc", ()))
        if e.get("type") == "string_pattern_mismatch" and "pattern" in ctx:
            msg = f"must match the pattern {ctx['pattern']}"
        elif e.get("type") == "json_invalid":  # loc is ("body", offset)
            where = f" at character {loc[1]}" if len(loc) > 1 else ""
            msg = f"not valid JSON ({ctx.get('error', 'decode error')}{where})"
            loc = loc[:1]
        parts.append(f"{_field(loc)}: {msg}")
    return "; ".join(parts) or "invalid request"


async def _on_registry_error(request: Request, exc: Exception) -> Any:
    status = exc.status if isinstance(exc, RegistryError) else 400
    return error_response(status, str(exc), error=type(exc).__name__)


# FastAPI's words when a JSON body cannot be decoded at all (invalid UTF-8, nested too deep).
_UNPARSABLE = "There was an error parsing the body"


async def _on_http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, HTTPException)
    detail = str(exc.detail)
    if exc.status_code == 400 and detail == _UNPARSABLE:
        detail = "body: not valid JSON (not UTF-8, or nested too deeply to parse)"
    return error_response(exc.status_code, detail, exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, validation_message(exc))


async def _on_database_down(request: Request, exc: Exception) -> Any:
    log.error("database unavailable: %s", exc)
    return error_response(503, DATABASE_DOWN)


async def _on_bug(request: Request, exc: Exception) -> Any:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(500, "internal error; see the driftd log", error="InternalError")


def create_app(
    registry: Registry,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    incident_settings: IncidentSettings | None = None,
    labeled: LabeledStore | None = None,
) -> FastAPI:
    """The API app serving ``registry``; request bodies are read after authentication and up
    to ``max_body_bytes`` (``registry.api_max_body_bytes``); incident links start with
    ``incident_settings.base_url``; ``labeled`` (the labeled event store) fills in the
    realised performance of a report's windows."""
    app = FastAPI(
        title="driftd registry",
        version=driftd.__version__,
        description=(
            "driftd's model registry: versions, stages, aliases, approvals, lineage and an "
            "audit log, and incidents. Send an API token from `driftd token create` as a "
            "bearer token."
        ),
        docs_url=None,  # mount_docs serves /docs from local assets; FastAPI's uses a CDN
        redoc_url=None,  # nothing installed bundles ReDoc, so there is no offline /redoc
    )
    mount_docs(app)
    app.state.registry = registry
    app.state.incidents = IncidentStore.configured(
        registry, incident_settings or IncidentSettings()
    )
    app.state.labeled = labeled  # realised performance in incident reports, when given
    app.state.max_body_bytes = max_body_bytes
    app.add_middleware(BodyGate, registry=registry, max_body_bytes=max_body_bytes)
    app.add_exception_handler(RegistryError, _on_registry_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(sa.exc.OperationalError, _on_database_down)
    app.add_exception_handler(Exception, _on_bug)
    app.include_router(runs.router, prefix="/api/v1")  # before reads: /runs/compare, /runs/{id}
    app.include_router(reads.router, prefix="/api/v1")
    app.include_router(writes.router, prefix="/api/v1")
    app.include_router(incidents.router, prefix="/api/v1")
    app.include_router(rollouts.router, prefix="/api/v1")

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def healthz() -> Health:
        """The process answers; says nothing about the database."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness",
        responses={503: {"model": Health}},
        response_model=Health,
    )
    def readyz() -> Any:
        """Whether the database answers; 503 when it does not."""
        try:
            with registry.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any failure to reach the database means not ready
            log.warning("not ready: %s", exc)
            return JSONResponse(
                Health(status="unavailable", detail=type(exc).__name__).model_dump(), 503
            )
        return Health(status="ok")

    return app
