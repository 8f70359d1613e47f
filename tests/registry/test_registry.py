"""The registry's behaviour through its Python API, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest

from driftd.registry import (
    Conflict,
    Forbidden,
    Gate,
    GateNotSatisfied,
    InvalidRequest,
    NotFound,
    Registry,
    Role,
    Stage,
)

SHA = "ab" * 32


class Clock:
    """A controllable clock: each write happens at a distinct, known time."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, dt: float = 10.0) -> float:
        self.now += dt
        return self.now


@pytest.fixture
def clock(registry: Registry) -> Iterator[Clock]:
    c = Clock()
    registry.clock = c
    yield c


def _register(reg: Registry, model: str = "fraud", actor: str = "trainer", **kw: object):
    return reg.register_version(model, f"file:///{model}", SHA, 123, actor, **kw)  # type: ignore[arg-type]


def test_versions_are_numbered_per_model(registry: Registry) -> None:
    a1, a2 = _register(registry, "a"), _register(registry, "a")
    b1 = _register(registry, "b")
    assert (a1.version, a2.version, b1.version) == (1, 2, 1)
    assert a1.stage == "development"
    assert registry.resolve("models:/a/2").version == 2
    assert registry.resolve("a").version == 2  # latest
    assert registry.resolve("models:/a@latest").version == 2
    assert [m.name for m in registry.list_models()] == ["a", "b"]
    assert [v.version for v in registry.list_versions("a")] == [2, 1]


def test_unknown_things_are_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound, match="model 'nope' does not exist"):
        registry.resolve("nope@champion")
    _register(registry)
    with pytest.raises(NotFound, match="has no version 7"):
        registry.get_version("fraud", 7)
    with pytest.raises(NotFound, match="has no alias 'challenger'"):
        registry.resolve("fraud@challenger")
    with pytest.raises(NotFound, match="run 'r1' does not exist"):
        _register(registry, run_id="r1")


def test_illegal_transition_names_the_allowed_ones(registry: Registry) -> None:
    _register(registry)
    with pytest.raises(Conflict) as err:
        registry.promote("fraud", 1, Stage.PRODUCTION, "ops")
    assert "cannot move from development to production" in str(err.value)
    assert "archived, staging" in str(err.value)
    with pytest.raises(InvalidRequest, match="unknown stage 'prod'"):
        registry.promote("fraud", 1, "prod", "ops")


def test_production_moves_champion_and_archives_the_previous(
    registry: Registry, clock: Clock
) -> None:
    _register(registry, stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    t1 = clock.tick()
    _register(registry, stage="staging")
    t2 = clock.tick()
    v2 = registry.promote("fraud", 2, "production", "ops")
    assert v2.aliases == ["champion"]
    assert registry.get_version("fraud", 1).stage == "archived"
    assert registry.get_model("fraud").aliases == {"champion": 2}
    assert registry.alias_at("fraud", "champion", 999.0) is None
    assert registry.alias_at("fraud", "champion", t1) == 1
    assert registry.alias_at("fraud", "champion", t2) == 2
    assert registry.alias_at("fraud", "champion", t2 - 0.001) == 1
    prods = registry.list_versions("fraud", stage=Stage.PRODUCTION)
    assert [v.version for v in prods] == [2]


def test_stage_aliases_follow_stages_only(registry: Registry) -> None:
    _register(registry)
    for alias in ("champion", "canary"):
        with pytest.raises(InvalidRequest, match="follows the"):
            registry.set_alias("fraud", alias, 1, "ops")
    with pytest.raises(InvalidRequest, match="reserved"):
        registry.set_alias("fraud", "latest", 1, "ops")
    with pytest.raises(InvalidRequest, match="reads as a version"):
        registry.set_alias("fraud", "v3", 1, "ops")
    with pytest.raises(InvalidRequest, match="invalid alias"):
        registry.set_alias("fraud", "bad alias", 1, "ops")
    registry.set_alias("fraud", "challenger", 1, "ops")
    assert registry.resolve("models:/fraud@challenger").version == 1
    registry.delete_alias("fraud", "challenger", "ops")
    with pytest.raises(NotFound):
        registry.delete_alias("fraud", "challenger", "ops")


def test_one_canary_at_a_time(registry: Registry) -> None:
    _register(registry, stage="staging")
    _register(registry, stage="staging")
    registry.promote("fraud", 1, "canary", "ops")
    with pytest.raises(Conflict, match="fraud/1 is already in canary"):
        registry.promote("fraud", 2, "canary", "ops")


def test_expected_stage_guards_against_a_stale_view(registry: Registry) -> None:
    _register(registry, stage="staging")
    registry.promote("fraud", 1, "canary", "ops", expected_stage="staging")
    with pytest.raises(Conflict, match="is in stage canary, not staging"):
        registry.promote("fraud", 1, "production", "ops", expected_stage="staging")


def test_gates_need_approvals_from_others_and_a_passed_evaluation(registry: Registry) -> None:
    registry.set_gates({Stage.PRODUCTION: Gate(2, Role.APPROVER, True)}, actor="admin")
    _register(registry, stage="staging", evaluation={"promote": False})
    with pytest.raises(GateNotSatisfied) as err:
        registry.promote("fraud", 1, "production", "ops")
    assert "2 more approval(s)" in str(err.value) and "(failed)" in str(err.value)
    with pytest.raises(Forbidden, match="created fraud/1 and cannot approve it"):
        registry.approve("fraud", 1, "production", "trainer", Role.APPROVER)
    with pytest.raises(Forbidden, match="may not approve"):
        registry.approve("fraud", 1, "production", "vic", Role.VIEWER)
    registry.approve("fraud", 1, "production", "ann", Role.APPROVER)
    with pytest.raises(Conflict, match="already approved"):
        registry.approve("fraud", 1, "production", "ann", Role.APPROVER)
    registry.approve("fraud", 1, "production", "bob", Role.ADMIN)
    with pytest.raises(GateNotSatisfied, match="evaluation") as err:
        registry.promote("fraud", 1, "production", "ops")
    assert "approval" not in str(err.value)
    registry.record_evaluation("fraud", 1, {"promote": True, "metric": "auc"}, "trainer")
    assert registry.promote("fraud", 1, "production", "ops").stage == "production"
    assert [a.approver for a in registry.approvals("fraud", 1)] == ["ann", "bob"]


def test_approval_for_one_stage_does_not_count_for_another(registry: Registry) -> None:
    registry.set_gates(
        {Stage.CANARY: Gate(1), Stage.PRODUCTION: Gate(1, Role.ADMIN)}, actor="admin"
    )
    _register(registry, stage="staging")
    registry.approve("fraud", 1, "canary", "ann", "approver")
    registry.promote("fraud", 1, "canary", "ops")
    with pytest.raises(GateNotSatisfied, match="from role admin"):
        registry.promote("fraud", 1, "production", "ops")
    registry.approve("fraud", 1, "production", "ann", "approver")  # too low a role
    with pytest.raises(GateNotSatisfied):
        registry.promote("fraud", 1, "production", "ops")
    registry.approve("fraud", 1, "production", "root", "admin")
    registry.promote("fraud", 1, "production", "ops")


def test_gates_are_stored_and_audited_once(registry: Registry) -> None:
    gates = {Stage.PRODUCTION: Gate(2, Role.APPROVER, True)}
    registry.set_gates(gates, actor="admin")
    registry.set_gates(gates, actor="admin")
    assert registry.gates() == gates
    assert [r.action for r in registry.audit_log()].count("gates.set") == 1


def test_rollback_of_a_canary_keeps_the_champion(registry: Registry) -> None:
    _register(registry, stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    _register(registry, stage="staging")
    registry.promote("fraud", 2, "canary", "ops")
    serving = registry.rollback("fraud", "driftd", "p99 latency SLO breached", evidence={"p": 1e-4})
    assert serving.version == 1 and serving.aliases == ["champion"]
    assert registry.get_version("fraud", 2).stage == "rolled_back"
    assert "canary" not in registry.get_model("fraud").aliases


def test_rollback_of_a_champion_restores_the_previous(registry: Registry, clock: Clock) -> None:
    for v in (1, 2):
        _register(registry, stage="staging")
        clock.tick()
        registry.promote("fraud", v, "production", "ops")
    clock.tick()
    serving = registry.rollback("fraud", "oncall", "bad predictions")
    assert serving.version == 1 and serving.stage == "production"
    assert registry.get_version("fraud", 2).stage == "rolled_back"
    with pytest.raises(Conflict, match="only a canary or production"):
        registry.rollback("fraud", "oncall", "again", version=2)
    with pytest.raises(Conflict, match="nothing to roll back to"):
        registry.rollback("fraud", "oncall", "again")
    with pytest.raises(InvalidRequest, match="needs a reason"):
        registry.rollback("fraud", "oncall", "")


def test_history_answers_which_version_served_when(registry: Registry, clock: Clock) -> None:
    times = []
    for v in (1, 2, 3):
        _register(registry, stage="staging")
        times.append(clock.tick())
        registry.promote("fraud", v, "production", "ops", reason=f"release {v}")
    times.append(clock.tick())
    registry.rollback("fraud", "oncall", "regression")
    assert [registry.alias_at("fraud", "champion", t) for t in times] == [1, 2, 3, 2]
    history = registry.history("fraud")
    champion = [(h.version, h.valid_to is None) for h in history if h.name == "champion"]
    assert champion == [(1, False), (2, False), (3, False), (2, True)]
    stages = [h.name for h in registry.history("fraud", version=2) if h.kind == "stage"]
    assert stages == ["development", "staging", "production", "archived", "production"]


def test_idempotent_writes_do_not_repeat(registry: Registry) -> None:
    a = registry.register_version("m", "file:///a", SHA, 1, "t", request_id="req-1")
    b = registry.register_version("m", "file:///a", SHA, 1, "t", request_id="req-1")
    assert a.version == b.version == 1
    assert registry.get_model("m").latest_version == 1
    with pytest.raises(Conflict, match="already used for a different request"):
        registry.register_version("m", "file:///b", SHA, 1, "t", request_id="req-1")
    registry.promote("m", 1, "staging", "ops", request_id="p-1")
    registry.promote("m", 1, "staging", "ops", request_id="p-1")  # not an illegal staging→staging
    assert sum(r.action == "version.stage" for r in registry.audit_log()) == 1


def test_a_failed_write_leaves_nothing_behind(registry: Registry) -> None:
    _register(registry)
    before = registry.audit_log(limit=1000)
    with pytest.raises(Conflict):
        registry.promote("fraud", 1, "production", "ops", request_id="x")
    assert registry.audit_log(limit=1000) == before
    registry.promote("fraud", 1, "staging", "ops", request_id="x")  # the id was not consumed


def test_runs_datasets_and_lineage(registry: Registry) -> None:
    ds = registry.register_dataset(
        "cd" * 32,
        5000,
        "file:///snap/1",
        "trainer",
        window=(100.0, 200.0),
        source_offsets={"predictions": {"0": 42}},
        schema={"amount": "float64"},
    )
    assert registry.register_dataset("cd" * 32, 5000, "file:///snap/1", "trainer") == ds
    alarm = {"detector": "ADWIN", "stream": "error", "ts": 150.0}
    run = registry.start_run(
        "fraud",
        "trainer",
        params={"lr": 0.01},
        seeds={"python": 1, "torch": 1},
        code={"commit": "abc", "dirty": False},
        environment={"python": "3.11", "torch": "2.13.0"},
        dataset_id=ds,
        trigger=alarm,
    )
    registry.finish_run(run, "trainer", metrics={"auc": 0.91})
    with pytest.raises(Conflict, match="already ended"):
        registry.finish_run(run, "trainer")
    _register(registry, stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    _register(registry, run_id=run, parent_version=1, stage="staging")
    registry.promote("fraud", 2, "production", "ops")
    tree = registry.lineage("fraud@champion")
    assert tree["uri"] == "models:/fraud/2"
    assert tree["run"]["params"] == {"lr": 0.01} and tree["run"]["metrics"] == {"auc": 0.91}
    assert tree["dataset"]["sha256"] == "cd" * 32 and tree["dataset"]["short"] == "cdcdcdcd"
    assert tree["dataset"]["source_offsets"] == {"predictions": {"0": 42}}
    assert tree["trigger"] == alarm
    assert tree["parent"]["uri"] == "models:/fraud/1"
    assert [h["name"] for h in tree["history"] if h["kind"] == "stage"] == [
        "development",
        "staging",
        "production",
    ]
    json.dumps(tree)  # plain data all the way down
    with pytest.raises(InvalidRequest, match="64 lowercase hex"):
        registry.register_dataset("xyz", 1, "file:///x", "t")


def test_every_write_is_audited_with_its_actor_and_chained(registry: Registry) -> None:
    _register(registry, actor="alice", stage="staging")
    registry.promote("fraud", 1, "canary", "bob", reason="try it")
    records = registry.audit_log()
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert {r.actor for r in records} == {"alice", "bob"}
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    stage = [r for r in records if r.action == "version.stage" and r.actor == "bob"]
    assert json.loads(stage[0].old) == {"stage": "staging"}
    assert json.loads(stage[0].new) == {"stage": "canary"}
    assert stage[0].reason == "try it"
    result = registry.verify_audit()
    assert result.ok and result.records == len(records)


def test_a_writer_with_another_secret_is_refused(registry: Registry) -> None:
    _register(registry)
    other = Registry(registry.engine, secret=b"another")
    with pytest.raises(Conflict, match="audit secret differs"):
        other.register_version("fraud", "file:///x", SHA, 1, "mallory")
    unkeyed = Registry(registry.engine, secret=None)
    assert not unkeyed.verify_audit().ok  # the keyed chain does not verify without the key


def test_outbox_events_are_written_with_each_change(registry: Registry) -> None:
    import sqlalchemy as sa

    from driftd.registry import schema

    _register(registry, stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.outbox).order_by(schema.outbox.c.id))
        events = [r.event for r in rows]
    assert events == ["version_created", "stage_changed", "stage_changed", "alias_moved"]


def test_traffic_splits_are_validated_kept_and_announced(registry: Registry, clock: Clock) -> None:
    import sqlalchemy as sa

    from driftd.registry import schema

    _register(registry, stage="staging")
    registry.promote("fraud", 1, "production", "ops")
    _register(registry, stage="staging")
    with pytest.raises(Conflict, match="only canary and production versions take traffic"):
        registry.set_traffic("fraud", {1: 0.9, 2: 0.1}, "driftd", "canary 10%", "d-1")
    registry.promote("fraud", 2, "canary", "ops")
    with pytest.raises(InvalidRequest, match="sum to 1"):
        registry.set_traffic("fraud", {1: 0.9, 2: 0.2}, "driftd", "bad", "d-x")
    t1 = clock.tick()
    registry.set_traffic("fraud", {1: 0.9, 2: 0.1}, "driftd", "canary 10%", "d-1")
    registry.set_traffic("fraud", {1: 0.9, 2: 0.1}, "driftd", "canary 10%", "d-1")  # a replay
    t2 = clock.tick()
    registry.set_traffic("fraud", {1: 0.5, 2: 0.5}, "driftd", "canary 50%", "d-2")
    assert registry.traffic("fraud") == {1: 0.5, 2: 0.5}
    assert registry.traffic("fraud", at=t1) == {1: 0.9, 2: 0.1}
    assert registry.traffic("fraud", at=t2 - 1) == {1: 0.9, 2: 0.1}
    with registry.engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.outbox.c.payload).where(schema.outbox.c.event == "deployment")
        ).all()
    payloads = [json.loads(r.payload) for r in rows]
    assert [p["weights"] for p in payloads] == [{"1": 0.9, "2": 0.1}, {"1": 0.5, "2": 0.5}]
    assert [p["decision_id"] for p in payloads] == ["d-1", "d-2"]
