"""Registry errors; each maps onto one HTTP status in the API."""

from __future__ import annotations

from driftd.errors import DriftdError


class RegistryError(DriftdError):
    """Base class; ``status`` is the HTTP status the API answers with."""

    status = 400


class InvalidRequest(RegistryError):
    """The request is malformed or names something invalid (HTTP 422)."""

    status = 422


class NotFound(RegistryError):
    """The model, version, alias, run or dataset does not exist (HTTP 404)."""

    status = 404


class Conflict(RegistryError):
    """The request conflicts with the current state: an illegal transition, a stale expected
    stage, a reused request id with another payload, a duplicate approval (HTTP 409)."""

    status = 409


class GateNotSatisfied(Conflict):
    """An approval gate of the requested transition is not satisfied yet (HTTP 409)."""


class Forbidden(RegistryError):
    """The actor may not do this (e.g. approve their own version) (HTTP 403)."""

    status = 403
