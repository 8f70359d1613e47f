"""Pure registry rules: stage transitions, alias names, ``models:/`` references, gates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftd.registry import InvalidRequest, Stage
from driftd.registry.names import (
    _VERSION_LIKE,
    ALLOWED,
    ModelRef,
    check_alias,
    is_allowed,
    parse_ref,
)
from driftd.registry.roles import Approval, Gate, Role, unmet

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True)
aliases = st.from_regex(r"[A-Za-z_-][A-Za-z0-9_-]{0,20}", fullmatch=True).filter(
    lambda a: a.lower() != "latest" and not _VERSION_LIKE.match(a)  # v3 reads as a version
)


@given(names, st.integers(1, 10**9))
def test_version_refs_round_trip(model: str, version: int) -> None:
    ref = ModelRef(model, version=version)
    assert parse_ref(ref.uri) == ref
    assert parse_ref(str(ref)) == ref


@given(names, aliases)
def test_alias_refs_round_trip(model: str, alias: str) -> None:
    ref = ModelRef(model, alias=alias)
    assert parse_ref(ref.uri) == ref


@pytest.mark.parametrize(
    "text", ["models:/", "models:/m/0", "models:/m/x", "m/-1", "bad name", "m@", "m@a b", "/m"]
)
def test_bad_refs_say_what_is_expected(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_ref(text)


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v1", "V22", "", "a" * 256, "a.b"])
def test_alias_rules_follow_mlflow(alias: str) -> None:
    with pytest.raises(InvalidRequest):
        check_alias(alias)


def test_the_lifecycle_is_reachable_and_rollback_only_from_service() -> None:
    assert is_allowed(Stage.DEVELOPMENT, Stage.STAGING)
    assert is_allowed(Stage.STAGING, Stage.CANARY) and is_allowed(Stage.CANARY, Stage.PRODUCTION)
    assert not is_allowed(Stage.DEVELOPMENT, Stage.PRODUCTION)
    into_rolled_back = {s for s, dst in ALLOWED.items() if Stage.ROLLED_BACK in dst}
    assert into_rolled_back == {Stage.CANARY, Stage.PRODUCTION}
    assert all(s not in dst for s, dst in ALLOWED.items())  # no self-transitions


def test_gates_count_distinct_approvers_of_enough_rank_never_the_author() -> None:
    gate = Gate(approvals=2, role=Role.APPROVER, require_evaluation=True)
    same_twice = [Approval("ann", Role.APPROVER), Approval("ann", Role.APPROVER)]
    assert "1 more approval" in unmet(gate, same_twice, "bob", True)[0]
    author = [Approval("bob", Role.ADMIN), Approval("ann", Role.APPROVER)]
    assert "1 more approval" in unmet(gate, author, "bob", True)[0]
    viewers = [Approval("x", Role.VIEWER), Approval("y", Role.VIEWER)]
    assert "2 more approval" in unmet(gate, viewers, "bob", True)[0]
    ok = [Approval("ann", Role.APPROVER), Approval("cy", Role.ADMIN)]
    assert unmet(gate, ok, "bob", True) == []
    assert unmet(gate, ok, "bob", None) == [
        "a passed champion/challenger evaluation (no evaluation recorded)"
    ]
    assert Role.ADMIN.includes(Role.APPROVER) and not Role.VIEWER.includes(Role.APPROVER)
