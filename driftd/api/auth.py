"""Bearer-token authentication and role checks for the registry API.

Tokens are created with ``driftd token create`` and stored hashed (see
``driftd.registry.tokens``); there is no default token or password. A missing, malformed,
unknown or revoked token is a 401 with ``WWW-Authenticate: Bearer``; a role below the one an
endpoint needs is a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from driftd.registry import Registry, Role
from driftd.registry.tokens import Principal, authenticate

PRINCIPAL_KEY = "driftd.principal"  # where BodyGate leaves who it authenticated
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API token from `driftd token create` (roles: viewer, approver, admin).",
)


def registry_of(request: Request) -> Registry:
    """The registry the app was created with."""
    registry: Registry = request.app.state.registry
    return registry


def unauthorized(detail: str) -> HTTPException:
    """A 401 that tells the client to send a bearer token."""
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate_header(registry: Registry, authorization: str | None) -> Principal:
    """Who an ``Authorization`` header's bearer token belongs to; a 401 when none is valid."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("send an API token as 'Authorization: Bearer <token>'")
    if len(token) > 1024 or not token.isascii():
        raise unauthorized("the API token is invalid or revoked")
    found = authenticate(registry, token)
    if found is None:
        raise unauthorized("the API token is invalid or revoked")
    return found


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Who the request's bearer token belongs to; 401 when there is no valid token. A request
    with a body was authenticated before it was read (``limits.BodyGate``): that answer holds."""
    checked = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    if isinstance(checked, Principal):
        return checked
    if credentials is None:
        raise unauthorized("send an API token as 'Authorization: Bearer <token>'")
    return authenticate_header(registry_of(request), f"Bearer {credentials.credentials}")


def require(role: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits tokens of ``role`` or above and answers 403 otherwise."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.role.includes(role):
            raise HTTPException(
                403, f"role {who.role.value} may not do this; {role.value} or above is required"
            )
        return who

    return check


viewer = require(Role.VIEWER)
approver = require(Role.APPROVER)
admin = require(Role.ADMIN)
