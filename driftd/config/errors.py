"""Configuration errors a person can act on: each problem on one line, naming the key (list
items as ``[i]``), the value given (shortened, secrets and URL passwords hidden), where it came
from and what was expected; a config file that cannot be read or decoded, and a ``DRIFTD_*``
variable that is not the JSON its key needs, are named the same way.

A validator that checks a whole table but blames one key inside it raises ``located(...)``, so
that the message names ``models.fraud.detectors[1].stream`` rather than the whole table.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsError

from driftd.config.dburl import without_password
from driftd.config.envsource import MappingEnvSource
from driftd.errors import ConfigError

LOCATED = "driftd_located"
MAX_SHOWN = 120
_SECRET_KEY = re.compile(r"secret|password|token", re.IGNORECASE)
_ERROR_PREFIX = re.compile(r"^(value|assertion) error, ", re.IGNORECASE)


def located(path: Sequence[str | int], value: Any, expected: str) -> PydanticCustomError:
    """An error about ``value`` at ``path`` below the validated table; ``expected`` completes
    "expected ...". Raise it from a model validator."""
    return PydanticCustomError(
        LOCATED, "{expected}", {"path": tuple(path), "value": value, "expected": expected}
    )


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _hide(value: Any) -> Any:
    if isinstance(value, str):
        return without_password(value)
    if isinstance(value, Mapping):
        return {k: "***" if _SECRET_KEY.search(str(k)) else _hide(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hide(v) for v in value]
    return value


def shown(value: Any) -> str:
    """How a value given in the configuration is printed back: a short repr, no secrets."""
    return shorten(repr(_hide(value)))


def key_of(loc: Sequence[str | int]) -> str:
    """``("models", "m", "detectors", 1, "stream")`` -> ``models.m.detectors[1].stream``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _expected(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "a value (this key is required)"
    if kind == "extra_forbidden":
        return "no such key; check the spelling against the documented keys"
    msg = _ERROR_PREFIX.sub("", str(err["msg"]))
    return msg[:1].lower() + msg[1:]


def format_errors(
    exc: ValidationError, origin: str, env: Mapping[str, str], env_prefix: str = "DRIFTD_"
) -> str:
    """One line per problem (the key, the value given, where it came from, what was expected);
    a single problem is a single line."""
    env_names = {k.lower() for k in env}
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) > 1 and loc[0] == "source" and loc[1] in ("file", "kafka"):
            del loc[1]  # the discriminated union puts its tag in the path
        value = "missing" if err["type"] == "missing" else shown(err.get("input"))
        if err["type"] == LOCATED:
            ctx = err.get("ctx") or {}
            loc += list(ctx.get("path", ()))
            value = shown(ctx.get("value"))
        env_name = env_prefix + "__".join(str(p) for p in loc).upper()
        where = f" (from {env_name})" if env_name.lower() in env_names else ""
        problems.append(f"{key_of(loc)}: got {value}{where}; expected {_expected(err)}")
    head = f"invalid configuration ({origin}):"
    if len(problems) == 1:
        return f"{head} {problems[0]}"
    return "\n".join([head, *(f"  {p}" for p in problems)])


def read_toml(p: Path) -> dict[str, Any]:
    """The config file's tables; ConfigError naming the file and what is wrong with it."""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"config file {p} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} "
            f"(offset {exc.start}) cannot be decoded; save it as UTF-8 (TOML files must be)"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None


def env_error(
    exc: SettingsError, env: Mapping[str, str], settings: type[BaseSettings], prefix: str
) -> ConfigError:
    """Which ``prefix*`` variable pydantic-settings could not decode (each is tried alone, by
    pydantic-settings itself), its value and the JSON error."""
    for name in sorted(env):
        if not name.upper().startswith(prefix):
            continue
        try:
            MappingEnvSource(settings, {name: env[name]})()
        except SettingsError as one:
            key = key_of(name[len(prefix) :].lower().split("__"))
            cause = one.__cause__ or one
            value = shorten(without_password(env[name]), 60)
            return ConfigError(
                f"environment variable {name}={value!r} is not valid JSON ({cause}); {key} "
                "takes JSON there: a table as {...}, a list as [...], strings in double quotes"
            )
    return ConfigError(f"cannot read the {prefix}* environment: {exc} ({exc.__cause__})")
