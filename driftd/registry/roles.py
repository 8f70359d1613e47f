"""Roles and approval gates: who may do what, and what a transition needs. Pure rules.

MLflow's permissions map onto three roles: READ and USE → ``viewer`` (reads), EDIT →
``approver`` (register, approve, promote, roll back), MANAGE → ``admin`` (also API tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from driftd.registry.errors import InvalidRequest


class Role(StrEnum):
    """An API token's role; each includes the ones below it."""

    VIEWER = "viewer"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0, 1, 2: a role may do what any lower role may."""
        return _RANK[self]

    def includes(self, other: Role) -> bool:
        """Whether this role may act where ``other`` is required."""
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 0, Role.APPROVER: 1, Role.ADMIN: 2}


def parse_role(value: str) -> Role:
    """The role named ``value``; a clear error listing the roles otherwise."""
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest(
            f"unknown role {value!r}; expected one of {', '.join(r.value for r in Role)}"
        ) from None


@dataclass(frozen=True, slots=True)
class Gate:
    """What moving a version into one stage needs."""

    approvals: int = 0
    role: Role = Role.APPROVER
    require_evaluation: bool = False


@dataclass(frozen=True, slots=True)
class Approval:
    """One recorded approval of a version for a target stage."""

    approver: str
    role: Role


def unmet(
    gate: Gate, approvals: Sequence[Approval], author: str, evaluation_passed: bool | None
) -> list[str]:
    """What ``gate`` still lacks, as sentences; empty when it is satisfied.

    Approvals count only from a role at least ``gate.role`` and never from the version's author.

    >>> unmet(Gate(approvals=2), [Approval("ann", Role.APPROVER)], "bob", None)
    ['1 more approval(s) from role approver (have 1 of 2)']
    """
    missing = []
    valid = {a.approver for a in approvals if a.role.includes(gate.role) and a.approver != author}
    if len(valid) < gate.approvals:
        missing.append(
            f"{gate.approvals - len(valid)} more approval(s) from role {gate.role.value} "
            f"(have {len(valid)} of {gate.approvals})"
        )
    if gate.require_evaluation and not evaluation_passed:
        state = "failed" if evaluation_passed is False else "no evaluation recorded"
        missing.append(f"a passed champion/challenger evaluation ({state})")
    return missing
