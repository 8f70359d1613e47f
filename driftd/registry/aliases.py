"""Aliases: moving and dropping them with their history, setting the free ones, and which
version an alias pointed at when.

Stage-bound aliases (``champion`` follows production, ``canary`` follows canary) move only with
their stage (see ``stages``), so approval gates cannot be bypassed by setting an alias.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from driftd.registry import schema as t
from driftd.registry.core import RegistryCore
from driftd.registry.errors import InvalidRequest, NotFound
from driftd.registry.names import STAGE_ALIAS, check_alias
from driftd.registry.rows import alias_map, find_model, find_version
from driftd.registry.writer import Writer

_STAGE_ALIASES = frozenset(STAGE_ALIAS.values())


def check_free_alias(alias: str) -> None:
    """Refuse a malformed alias, or one that follows a stage (only its stage moves it)."""
    check_alias(alias)
    if alias in _STAGE_ALIASES:
        stage = next(s for s, a in STAGE_ALIAS.items() if a == alias)
        raise InvalidRequest(
            f"alias {alias!r} follows the {stage.value} stage; promote the version to "
            f"{stage.value} instead (its approval gate applies)"
        )


def move_alias(w: Writer, model_id: int, model: str, alias: str, version: int, reason: str) -> None:
    """Point ``alias`` at ``version`` (inside a write): close and open its history interval."""
    old = alias_map(w.conn, model_id).get(alias)
    if old == version:
        return
    _close_alias(w, model_id, alias)
    if old is None:
        w.conn.execute(
            t.aliases.insert().values(
                model_id=model_id, alias=alias, version=version, updated_at=w.now
            )
        )
    else:
        w.conn.execute(
            t.aliases.update()
            .where((t.aliases.c.model_id == model_id) & (t.aliases.c.alias == alias))
            .values(version=version, updated_at=w.now)
        )
    w.conn.execute(
        t.alias_history.insert().values(
            model_id=model_id,
            alias=alias,
            version=version,
            valid_from=w.now,
            actor=w.actor,
            reason=reason,
        )
    )
    w.audit("alias.move", f"{model}@{alias}", {"version": old}, {"version": version}, reason)
    w.event("alias_moved", model, {"alias": alias, "from": old, "to": version})


def drop_alias(w: Writer, model_id: int, model: str, alias: str, reason: str) -> bool:
    """Remove ``alias`` (inside a write); False when the model has no such alias."""
    old = alias_map(w.conn, model_id).get(alias)
    if old is None:
        return False
    _close_alias(w, model_id, alias)
    w.conn.execute(
        t.aliases.delete().where((t.aliases.c.model_id == model_id) & (t.aliases.c.alias == alias))
    )
    w.audit("alias.delete", f"{model}@{alias}", {"version": old}, {"version": None}, reason)
    w.event("alias_moved", model, {"alias": alias, "from": old, "to": None})
    return True


def _close_alias(w: Writer, model_id: int, alias: str) -> None:
    w.conn.execute(
        t.alias_history.update()
        .where(
            (t.alias_history.c.model_id == model_id)
            & (t.alias_history.c.alias == alias)
            & t.alias_history.c.valid_to.is_(None)
        )
        .values(valid_to=w.now)
    )


class Aliases(RegistryCore):
    """Free aliases (e.g. ``challenger``) and the version an alias pointed at, at a time."""

    def set_alias(
        self,
        model: str,
        alias: str,
        version: int,
        actor: str,
        reason: str = "",
        request_id: str | None = None,
    ) -> None:
        """Point a free alias (e.g. ``challenger``) at ``version``."""
        check_free_alias(alias)
        payload = {"model": model, "alias": alias, "version": version}

        def change(w: Writer) -> dict[str, Any]:
            model_id = find_model(w.conn, model, lock=True)
            find_version(w.conn, model_id, model, version)
            move_alias(w, model_id, model, alias, version, reason)
            return {}

        self.write(actor, "alias.set", payload, request_id, change)

    def delete_alias(
        self, model: str, alias: str, actor: str, reason: str = "", request_id: str | None = None
    ) -> None:
        """Remove a free alias."""
        check_free_alias(alias)
        payload = {"model": model, "alias": alias}

        def change(w: Writer) -> dict[str, Any]:
            model_id = find_model(w.conn, model, lock=True)
            if not drop_alias(w, model_id, model, alias, reason):
                raise NotFound(f"{model} has no alias {alias!r}")
            return {}

        self.write(actor, "alias.delete", payload, request_id, change)

    def alias_at(self, model: str, alias: str, at: float) -> int | None:
        """The version ``alias`` pointed at, at time ``at`` (None when it pointed nowhere).

        One indexed query on ``alias_history``, fast with millions of audit records.
        """
        h = t.alias_history
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(h.c.version)
                .join(t.models, t.models.c.id == h.c.model_id)
                .where(
                    (t.models.c.name == model)
                    & (h.c.alias == alias)
                    & (h.c.valid_from <= at)
                    & (h.c.valid_to.is_(None) | (h.c.valid_to > at))
                )
                .order_by(h.c.valid_from.desc())
                .limit(1)
            ).scalar()
        return None if found is None else int(found)
