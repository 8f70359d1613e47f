"""Stages, their legal transitions, alias naming rules and ``models:/`` URIs: pure rules.

Stages follow a version's life: development → staging → canary → production → archived, and
rolled_back for a canary or champion taken out of service. Aliases follow MLflow's rules: a
name of letters, digits, ``_`` and ``-``; ``latest`` is reserved (it always means the newest
version) and ``v<digits>`` is refused because MLflow reads it as a version number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from driftd.registry.errors import InvalidRequest


class Stage(StrEnum):
    """Where a model version is in its life."""

    DEVELOPMENT = "development"
    STAGING = "staging"
    CANARY = "canary"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    ROLLED_BACK = "rolled_back"


ALLOWED: dict[Stage, frozenset[Stage]] = {
    Stage.DEVELOPMENT: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.CANARY, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.CANARY: frozenset({Stage.PRODUCTION, Stage.ROLLED_BACK, Stage.STAGING}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED, Stage.ROLLED_BACK}),
    Stage.ROLLED_BACK: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.STAGING}),
}

# The alias that follows a stage: entering the stage moves it, leaving the stage removes it.
STAGE_ALIAS: dict[Stage, str] = {Stage.PRODUCTION: "champion", Stage.CANARY: "canary"}

RESERVED_ALIASES = frozenset({"latest"})
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_LIKE = re.compile(r"^[vV]\d+$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def parse_stage(value: str) -> Stage:
    """The stage named ``value``; a clear error listing the stages otherwise."""
    try:
        return Stage(value)
    except ValueError:
        names = ", ".join(s.value for s in Stage)
        raise InvalidRequest(f"unknown stage {value!r}; expected one of {names}") from None


def allowed_from(stage: Stage) -> list[str]:
    """The stages a version in ``stage`` may move to, sorted for messages."""
    return sorted(s.value for s in ALLOWED[stage])


def is_allowed(src: Stage, dst: Stage) -> bool:
    """Whether ``src → dst`` is a legal transition."""
    return dst in ALLOWED[src]


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name (letters, digits, ``.``, ``_``, ``-``; ≤ 255)."""
    if not _MODEL.match(name):
        raise InvalidRequest(
            f"invalid model name {name!r}: use 1-255 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    """``alias`` if MLflow's rules allow it to be set; InvalidRequest saying why otherwise."""
    if alias.lower() in RESERVED_ALIASES:
        raise InvalidRequest(f"alias {alias!r} is reserved: it always means the newest version")
    if not _ALIAS.match(alias):
        raise InvalidRequest(
            f"invalid alias {alias!r}: use 1-255 letters, digits, '_' or '-' "
            "(e.g. champion, challenger, canary)"
        )
    if _VERSION_LIKE.match(alias):
        raise InvalidRequest(f"invalid alias {alias!r}: 'v<number>' reads as a version number")
    return alias


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A reference to one version: by number, by alias, or ``latest``."""

    model: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.model}/{self.version}"
        return f"{self.model}@{self.alias}"

    @property
    def uri(self) -> str:
        """The MLflow-style URI: ``models:/name/3`` or ``models:/name@alias``."""
        return f"models:/{self}"


def parse_ref(text: str) -> ModelRef:
    """Parse ``models:/name/3``, ``models:/name@alias``, ``name/3``, ``name@alias`` or ``name``.

    A bare name means its ``latest`` version.

    >>> parse_ref("models:/fraud@champion")
    ModelRef(model='fraud', version=None, alias='champion')
    >>> parse_ref("fraud/3").version
    3
    """
    body = text.removeprefix("models:/")
    if "@" in body:
        model, _, alias = body.partition("@")
        check_model_name(model)
        if alias.lower() != "latest":
            check_alias(alias)
        return ModelRef(model, alias=alias.lower() if alias.lower() == "latest" else alias)
    if "/" in body:
        model, _, ver = body.partition("/")
        check_model_name(model)
        if not ver.isdigit() or int(ver) < 1:
            raise InvalidRequest(
                f"invalid model reference {text!r}: expected NAME/VERSION with a version ≥ 1, "
                "or NAME@ALIAS"
            )
        return ModelRef(model, version=int(ver))
    check_model_name(body)
    return ModelRef(body, alias="latest")
