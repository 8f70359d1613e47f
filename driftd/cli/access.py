"""Which registry a command means (``--config``, ``--db`` or ``DRIFTD_REGISTRY__*``), opened
once for the command, with registry errors shown as one clean line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from driftd.cli.errors import failure
from driftd.config import RegistrySettings, format_errors, load_settings
from driftd.errors import DriftdError

if TYPE_CHECKING:
    from driftd.registry.registry import Registry


def registry_settings(config: Path | None, db: str | None) -> tuple[RegistrySettings, str]:
    """The registry's settings and database URL: from the config file (``--db`` overriding
    its URL), else from ``--db`` or ``DRIFTD_REGISTRY__URL`` and the other
    ``DRIFTD_REGISTRY__*`` variables."""
    if config is not None:
        settings = load_settings(config)
        return settings.registry, db or settings.registry_url
    url = db or os.environ.get("DRIFTD_REGISTRY__URL")
    if not url:
        raise click.UsageError("say where the registry is: --db URL or --config FILE")
    values: dict[str, Any] = {"url": url, "secret": os.environ.get("DRIFTD_REGISTRY__SECRET")}
    for key in ("artifact_schemes", "artifact_roots"):  # JSON lists, as with a config file
        name = f"DRIFTD_REGISTRY__{key.upper()}"
        if name in os.environ:
            try:
                values[key] = json.loads(os.environ[name])
            except json.JSONDecodeError:
                raise click.UsageError(
                    f'{name}: expected a JSON list such as ["/srv/models"], got '
                    f"{os.environ[name]!r}"
                ) from None
    try:
        return RegistrySettings.model_validate(values), url
    except ValidationError as exc:
        raise click.UsageError(format_errors(exc, "--db and DRIFTD_REGISTRY__*", {})) from None


@contextmanager
def _setup_errors() -> Iterator[None]:
    """A bad configuration exits 2 like every bad config; other driftd errors one clean line
    with the exit code of their kind (``driftd.cli.errors.failure``)."""
    try:
        yield
    except DriftdError as exc:
        raise failure(exc) from None


@contextmanager
def opened_registry(
    settings: RegistrySettings, url: str, apply_gates: bool = False
) -> Iterator[Registry]:
    """The registry at ``url`` for the command's duration (its engine is disposed after); its
    gates become ``settings``' when ``apply_gates``. Registry errors become clean CLI errors."""
    from driftd.registry.configure import open_registry

    with _setup_errors():
        registry = open_registry(settings, url, apply_gates=apply_gates)
    try:
        yield registry
    except DriftdError as exc:
        raise failure(exc) from None
    finally:
        registry.engine.dispose()


@contextmanager
def registry_from_options(
    config: Path | None, db: str | None, apply_gates: bool = False
) -> Iterator[Registry]:
    """The registry named by the options (see ``opened_registry``); its gates become the
    config's when ``apply_gates`` and a config is given."""
    with _setup_errors():
        settings, url = registry_settings(config, db)
    with opened_registry(settings, url, apply_gates and config is not None) as registry:
        yield registry
