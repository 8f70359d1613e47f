"""Processes racing to promote, approve and move aliases leave the registry consistent."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import random

import pytest
import sqlalchemy as sa

from driftd.registry import Conflict, Registry
from driftd.registry import schema as t

SHA = "ab" * 32
VERSIONS = 5
WORKERS = 4
ROUNDS = 25


def _worker(url: str, worker: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from driftd.db import make_engine

    reg = Registry(make_engine(url), secret=b"test-secret")
    rng = random.Random(worker)
    done = {"promoted": 0, "approved": 0, "aliased": 0, "conflicts": 0}
    for i in range(ROUNDS):
        v = rng.randint(1, VERSIONS)
        action = rng.choice(["promote", "approve", "alias"])
        try:
            if action == "promote":
                stage = reg.get_version("fraud", v).stage
                target = "staging" if stage == "archived" else "production"
                reg.promote("fraud", v, target, f"ops{worker}", expected_stage=stage)
                done["promoted"] += target == "production"
            elif action == "approve":
                reg.approve("fraud", v, "production", f"approver-{worker}-{i}", "approver")
                done["approved"] += 1
            else:
                reg.set_alias("fraud", "challenger", v, f"ops{worker}")
                done["aliased"] += 1
        except Conflict:
            done["conflicts"] += 1
    reg.engine.dispose()
    out.put(done)


@pytest.mark.slow
def test_racing_processes_leave_one_champion(registry: Registry, db_url: str) -> None:
    for _ in range(VERSIONS):
        registry.register_version("fraud", "file:///m", SHA, 1, "trainer", stage="staging")
    registry.engine.dispose()
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_worker, args=(db_url, w, out)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sum(r["promoted"] for r in results) > 0

    prod = [v.version for v in registry.list_versions("fraud") if v.stage == "production"]
    assert len(prod) == 1
    assert registry.get_model("fraud").aliases["champion"] == prod[0]
    with registry.engine.connect() as conn:
        h = t.alias_history
        rows = conn.execute(
            sa.select(h.c.version, h.c.valid_from, h.c.valid_to)
            .where(h.c.alias == "champion")
            .order_by(h.c.valid_from, h.c.id)
        ).all()
        n_approvals = conn.execute(sa.select(sa.func.count()).select_from(t.approvals)).scalar()
    assert [r.valid_to is None for r in rows].count(True) == 1
    for a, b in itertools.pairwise(rows):
        assert a.valid_to == b.valid_from  # champion intervals are contiguous, never overlapping
    assert rows[-1].version == prod[0]
    assert n_approvals == sum(r["approved"] for r in results)  # no lost approvals
    result = registry.verify_audit()
    assert result.ok, result.problem
