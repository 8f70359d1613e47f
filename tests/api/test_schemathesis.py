"""Property-based tests of the API against its own OpenAPI schema: whatever schemathesis
sends, with an admin token, to a seeded SQLite registry, the API answers without a 5xx."""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.openapi import from_asgi

from driftd.api import create_app
from driftd.db import make_engine, upgrade
from driftd.registry import Registry
from driftd.registry.tokens import create_token

SHA = "ab" * 32


def seeded_app(path: Path) -> tuple[Registry, str]:
    """A registry at ``path`` with a model of a few versions in several stages, and an admin
    token for it."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    registry = Registry(engine, secret=b"test-secret")
    ds = registry.register_dataset("cd" * 32, 10, "s3://d", actor="root")
    run = registry.start_run("fraud", actor="root", dataset_id=ds)
    registry.register_version("fraud", "s3://f/1", SHA, 1, actor="root", run_id=run)
    registry.register_version("fraud", "s3://f/2", SHA, 1, actor="root", stage="staging")
    registry.register_version("fraud", "s3://f/3", SHA, 1, actor="root", aliases=["challenger"])
    registry.promote("fraud", 2, "production", actor="root")
    return registry, create_token(registry, "fuzzer", "admin", actor="root")


# schemathesis parametrizes at collection time, so the app exists when the module is imported
# (its ``from_fixture`` loader does not work with this pytest); the directory goes at exit.
_DIR = tempfile.TemporaryDirectory(prefix="driftd-schemathesis-")
REGISTRY, TOKEN = seeded_app(Path(_DIR.name) / "registry.db")
atexit.register(REGISTRY.engine.dispose)
schema = from_asgi("/openapi.json", create_app(REGISTRY))


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error]
    )
