"""API tokens: created once (shown once), stored as SHA-256 only, each with one role.

A token reads ``drt_<id>_<secret>``: the id finds the row, the secret is compared in constant
time with the stored hash. The secret is 32 random bytes, so a plain SHA-256 (no slow KDF) is
the right hash: there is nothing to brute-force. There is no default token or password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.core import RegistryCore
from driftd.registry.errors import InvalidRequest, NotFound
from driftd.registry.roles import Role, parse_role
from driftd.registry.writer import Writer

PREFIX = "drt_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token belongs to."""

    token_id: str
    name: str
    role: Role


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(registry: RegistryCore, name: str, role: Role | str, actor: str) -> str:
    """Create a token and return it; only its hash is kept, so it cannot be shown again."""
    r = parse_role(role) if isinstance(role, str) else role
    if not name or len(name) > 255:
        raise InvalidRequest("a token needs a name of 1-255 characters (who or what uses it)")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)

    def change(w: Writer) -> dict[str, str]:
        w.conn.execute(
            t.tokens.insert().values(
                id=token_id,
                name=name,
                role=r.value,
                secret_sha256=_digest(secret),
                created_at=w.now,
                created_by=w.actor,
            )
        )
        w.audit("token.create", f"token:{token_id}", None, {"name": name, "role": r.value})
        return {"id": token_id}

    registry.write(actor, "token.create", {"id": token_id}, None, change)
    return f"{PREFIX}{token_id}_{secret}"


def revoke_token(registry: RegistryCore, token_id: str, actor: str) -> None:
    """Revoke a token; requests with it are refused from now on."""

    def change(w: Writer) -> dict[str, str]:
        row = w.conn.execute(sa.select(t.tokens).where(t.tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist")
        if row.revoked_at is None:
            w.conn.execute(
                t.tokens.update().where(t.tokens.c.id == token_id).values(revoked_at=w.now)
            )
            w.audit("token.revoke", f"token:{token_id}", {"revoked": False}, {"revoked": True})
        return {}

    registry.write(actor, "token.revoke", {"id": token_id}, None, change)


def authenticate(registry: RegistryCore, token: str) -> Principal | None:
    """The principal of a valid, unrevoked token; None otherwise."""
    if not token.startswith(PREFIX):
        return None
    token_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not token_id or not secret:
        return None
    with registry.engine.connect() as conn:
        row = conn.execute(sa.select(t.tokens).where(t.tokens.c.id == token_id)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    return Principal(row.id, row.name, Role(row.role))


def list_tokens(registry: RegistryCore) -> list[dict[str, object]]:
    """Tokens without their secrets."""
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.select(t.tokens).order_by(t.tokens.c.created_at)).all()
    return [
        {
            "id": r.id,
            "name": r.name,
            "role": r.role,
            "created_at": r.created_at,
            "created_by": r.created_by,
            "revoked": r.revoked_at is not None,
        }
        for r in rows
    ]
