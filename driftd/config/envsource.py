"""pydantic-settings' environment source over a given mapping instead of ``os.environ``, so
that reading ``DRIFTD_*`` never changes the process-wide environment (threads share it)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

# The environment handed to the settings being built in this thread or task (None: os.environ).
_GIVEN: ContextVar[Mapping[str, str] | None] = ContextVar("driftd_given_environ", default=None)


class MappingEnvSource(EnvSettingsSource):
    """``EnvSettingsSource`` whose variables are ``env``, decoded exactly as pydantic-settings
    decodes ``os.environ`` (prefix, ``__`` nesting, JSON for complex values)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = dict(env)  # read by _load_env_vars, which the base __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return dict(self._given)
        return {name.lower(): value for name, value in self._given.items()}


@contextmanager
def environ_given(env: Mapping[str, str]) -> Iterator[None]:
    """Settings built inside read their environment variables from ``env`` alone."""
    token = _GIVEN.set(env)
    try:
        yield
    finally:
        _GIVEN.reset(token)


def env_source(
    settings_cls: type[BaseSettings], default: PydanticBaseSettingsSource
) -> PydanticBaseSettingsSource:
    """The environment source for ``settings_cls``: the given mapping inside
    ``environ_given``, else ``default`` (pydantic-settings' own, on ``os.environ``)."""
    env = _GIVEN.get()
    return default if env is None else MappingEnvSource(settings_cls, env)
