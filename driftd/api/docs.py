"""``/docs``: Swagger UI served from the installed ``swagger-ui-bundle``, so it works offline.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN and is blank without internet. Here
the page's script, stylesheet and icon come from ``/docs/assets`` (the package's files), and
the page names no other host. The bundled Swagger UI (4.15) renders OpenAPI 3.0 only, so the
page reads ``/docs/openapi-3.0.json``: the 3.1 schema of ``/openapi.json`` (the contract) with
its nullable fields spelled the 3.0 way. There is no ReDoc page: nothing installed bundles it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

DOCS_URL: Final = "/docs"
ASSETS_URL: Final = "/docs/assets"
DOCS_SCHEMA_URL: Final = "/docs/openapi-3.0.json"
ASSETS_DIR: Final = Path(str(swagger_ui_path))
SWAGGER_JS: Final = "swagger-ui-bundle.js"
SWAGGER_CSS: Final = "swagger-ui.css"
FAVICON: Final = "favicon-32x32.png"
_NULL: Final = {"type": "null"}


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` → ``X`` with ``nullable: true`` (``allOf`` around a $ref,
    whose siblings 3.0 ignores); other nodes are returned as they are."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or _NULL not in branches:
        return node
    rest = [b for b in branches if b != _NULL]
    out = {k: v for k, v in node.items() if k != "anyOf"}
    if len(rest) == 1 and "$ref" not in rest[0]:
        return {**out, **rest[0], "nullable": True}
    key = "allOf" if len(rest) == 1 else "anyOf"
    return {**out, key: rest, "nullable": True}


def openapi_30(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of FastAPI's OpenAPI 3.1 ``schema`` that OpenAPI 3.0 readers understand.

    >>> s = {"openapi": "3.1.0", "components": {"schemas": {"A": {"properties": {"x": {
    ...     "anyOf": [{"type": "integer"}, {"type": "null"}], "title": "X"}}}}}}
    >>> out = openapi_30(s)
    >>> out["openapi"], out["components"]["schemas"]["A"]["properties"]["x"]
    ('3.0.3', {'title': 'X', 'type': 'integer', 'nullable': True})
    """

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, dict):
            return _nullable({k: walk(v) for k, v in node.items()})
        return node

    out: dict[str, Any] = walk(copy.deepcopy(schema))
    out["openapi"] = "3.0.3"
    return out


def docs_page(title: str, openapi_url: str) -> HTMLResponse:
    """The Swagger UI page for the schema at ``openapi_url``, every asset from ``ASSETS_URL``."""
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} - API docs",
        swagger_js_url=f"{ASSETS_URL}/{SWAGGER_JS}",
        swagger_css_url=f"{ASSETS_URL}/{SWAGGER_CSS}",
        swagger_favicon_url=f"{ASSETS_URL}/{FAVICON}",
        # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    )


def mount_docs(app: FastAPI) -> None:
    """Serve ``/docs``, its schema and its assets on ``app`` (built with ``docs_url=None``)."""
    if not (ASSETS_DIR / SWAGGER_JS).is_file():  # a broken install, found at start-up
        raise RuntimeError(f"Swagger UI is missing from {ASSETS_DIR}; reinstall swagger-ui-bundle")
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> HTMLResponse:
        return docs_page(app.title, DOCS_SCHEMA_URL)

    @app.get(DOCS_SCHEMA_URL, include_in_schema=False)
    def docs_schema() -> dict[str, Any]:
        return openapi_30(app.openapi())  # app.openapi() caches; the copy is cheap next to it
