"""``/docs`` works without internet: the page names no other host, every asset it names is
served by the API itself with its content type, and the schema it reads is the 3.0 form of
``/openapi.json`` with the same operations. Both stay public, as they were before."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from driftd.api import create_app
from driftd.api.docs import ASSETS_DIR, DOCS_SCHEMA_URL, SWAGGER_JS, openapi_30
from driftd.db import make_engine, upgrade
from driftd.registry import Registry

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The API over an empty SQLite registry: the docs do not touch the database."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('docs') / 'registry.db'}")
    upgrade(engine)
    with TestClient(create_app(Registry(engine, secret=b"test-secret"))) as c:
        yield c
    engine.dispose()


class _Links(HTMLParser):
    """Every ``src`` and ``href`` in a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def _schema_url(html: str) -> str:
    found = re.search(r"url: '([^']+)'", html)
    assert found, html
    return found.group(1)


def _operations(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, p) for p, item in schema["paths"].items() for m in item if m in _METHODS}


def test_the_docs_page_names_no_other_host(client: TestClient) -> None:
    page = client.get("/docs")  # no token: the docs are public, as FastAPI's were
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "SwaggerUIBundle(" in html
    assert "://" not in html, re.findall(r"\S*://\S*", html)
    assert not re.search(r"""["'(]//""", html)  # nor a protocol-relative //host/...
    urls = [*_Links(html).urls, _schema_url(html)]
    assert len(urls) == 4  # stylesheet, icon, script, schema
    assert all(u.startswith("/docs/") for u in urls), urls
    assert '"validatorUrl": null' in html  # no schema sent to validator.swagger.io


@pytest.mark.parametrize(
    ("suffix", "content_type"),
    [(".js", "text/javascript"), (".css", "text/css"), (".png", "image/png")],
)
def test_every_asset_the_page_names_is_served_with_its_type(
    client: TestClient, suffix: str, content_type: str
) -> None:
    (url,) = [u for u in _Links(client.get("/docs").text).urls if u.endswith(suffix)]
    answer = client.get(url)
    assert answer.status_code == 200, url
    assert answer.headers["content-type"].split(";")[0] == content_type
    assert answer.content == (ASSETS_DIR / Path(url).name).read_bytes()


def test_the_script_is_the_swagger_ui_bundle(client: TestClient) -> None:
    script = client.get(f"/docs/assets/{SWAGGER_JS}")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content
    assert client.get("/docs/assets/no-such-file.js").status_code == 404


def test_the_page_reads_a_3_0_schema_with_every_operation(client: TestClient) -> None:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200  # public, and still OpenAPI 3.1: the contract
    contract = answer.json()
    assert contract["openapi"].startswith("3.1.")
    url = _schema_url(client.get("/docs").text)
    assert url == DOCS_SCHEMA_URL
    docs = client.get(url)
    assert docs.status_code == 200 and docs.headers["content-type"] == "application/json"
    shown = docs.json()
    assert shown["openapi"] == "3.0.3"  # the only version the bundled Swagger UI 4 renders
    assert _operations(shown) == _operations(contract)
    assert ("get", "/api/v1/models") in _operations(shown)
    assert '{"type": "null"}' not in json.dumps(shown)  # 3.1's null type, unknown to 3.0
    assert shown["info"] == contract["info"]
    assert shown["components"]["securitySchemes"] == contract["components"]["securitySchemes"]
    assert DOCS_SCHEMA_URL not in contract["paths"]


def test_redoc_and_the_oauth_redirect_are_gone(client: TestClient) -> None:
    # FastAPI's ReDoc page loads from a CDN and nothing installed bundles ReDoc.
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404  # the API has no OAuth


def test_openapi_30_marks_nullable_fields_the_3_0_way() -> None:
    null = {"type": "null"}
    ref = {"$ref": "#/components/schemas/Stage"}
    schema = {
        "openapi": "3.1.0",
        "components": {
            "schemas": {
                "A": {
                    "properties": {
                        "n": {"anyOf": [{"type": "integer", "minimum": 1}, null], "title": "N"},
                        "stage": {"anyOf": [ref, null], "title": "Stage"},
                        "either": {"anyOf": [{"type": "integer"}, {"type": "string"}, null]},
                        "plain": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                    }
                }
            }
        },
    }
    before = json.dumps(schema)
    props = openapi_30(schema)["components"]["schemas"]["A"]["properties"]
    assert json.dumps(schema) == before  # the contract is copied, never changed
    assert props["n"] == {"title": "N", "type": "integer", "minimum": 1, "nullable": True}
    # 3.0 ignores the siblings of a $ref, so the reference goes inside allOf
    assert props["stage"] == {"title": "Stage", "allOf": [ref], "nullable": True}
    assert props["either"] == {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "nullable": True,
    }
    assert props["plain"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
