"""Registry benchmark: lineage, "champion at T", resolve, list, promote, audit verify.

Run ``python benchmarks/registry.py`` (``--quick`` for a smoke run). The registry is filled in
bulk (SQLAlchemy Core executemany, rows exactly as the registry writes them, an audit chain
hashed with ``record_hash`` from ``GENESIS``) on a SQLite file and a fresh PostgreSQL database;
the timed operations then go through the public ``Registry`` API. MLflow, when it is installed
in its own virtualenv (``.venv-mlflow``), is loaded with the same models and versions and timed
on the equivalent calls (``benchmarks/registry_mlflow.py``, run as a subprocess).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from driftd.db import make_engine, upgrade
from driftd.registry import Gate, Registry, Role, Stage
from driftd.registry import schema as t
from driftd.registry.audit import GENESIS, canonical, record_hash

try:
    from benchmarks import report
    from benchmarks.report import Row, print_rows
except ImportError:  # run as a script: python benchmarks/registry.py
    import report  # type: ignore[no-redef]
    from report import Row, print_rows  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "registry.json"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MLFLOW_PYTHON = HERE.parent / ".venv-mlflow" / "bin" / "python"
SEED = 0
DAY = 86_400.0
MODEL_GAP = 60.0  # seconds between two models' events within one day's round
CHAMPION_EVERY = 10  # one version in ten becomes champion (production)
TRAINER, APPROVERS, RELEASER = "trainer", ("alice", "bob"), "carol"
LINEAGE_DEPTH = 5  # Registry.lineage's default


# -- data generation -------------------------------------------------------------------------


@dataclass
class Spec:
    """The registry to generate: sizes and the time line."""

    models: int
    versions: int
    audit: int
    t0: float  # day 0: models are created just before it, version j on day j

    def name(self, i: int) -> str:
        return f"model-{i:04d}"

    def offset(self, i: int) -> int:
        """Model i's champions are the versions j with (j + offset) % CHAMPION_EVERY == 0."""
        return (i * 7) % CHAMPION_EVERY

    def is_champion(self, i: int, j: int) -> bool:
        return (j + self.offset(i)) % CHAMPION_EVERY == 0

    def champions(self, i: int) -> list[int]:
        return [j for j in range(1, self.versions + 1) if self.is_champion(i, j)]

    def when(self, i: int, j: int) -> float:
        """When version j of model i is registered (day j, model i's slot in the day)."""
        return self.t0 + j * DAY + i * MODEL_GAP

    @property
    def end(self) -> float:
        """After the last generated event."""
        return self.when(self.models, self.versions) + DAY


@dataclass
class Chain:
    """The audit chain being generated: seq, head hash, a batch of rows."""

    limit: int
    seq: int = 0
    head: str = GENESIS
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        ts: float,
        actor: str,
        action: str,
        subject: str,
        old: Any,
        new: Any,
        reason: str = "",
        request_id: str = "",
    ) -> None:
        if self.seq >= self.limit:
            return
        self.seq += 1
        old_s, new_s = canonical(old), canonical(new)
        rid = request_id or uuid.UUID(int=random.getrandbits(128)).hex
        h = record_hash(
            None, self.seq, ts, actor, action, subject, old_s, new_s, reason, rid, self.head
        )
        self.rows.append(
            {
                "seq": self.seq,
                "ts": ts,
                "actor": actor,
                "action": action,
                "subject": subject,
                "old": old_s,
                "new": new_s,
                "reason": reason,
                "request_id": rid,
                "prev_hash": self.head,
                "hash": h,
            }
        )
        self.head = h


TABLE_ORDER = (
    t.models,
    t.datasets,
    t.runs,
    t.versions,
    t.stage_history,
    t.approvals,
    t.alias_history,
    t.aliases,
    t.audit,
)


def hex64(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def natural_records(spec: Spec) -> int:
    """How many audit records the generated writes make (before padding)."""
    total = 0
    for i in range(spec.models):
        champs = len(spec.champions(i))
        superseded = sum(not spec.is_champion(i, j) for j in range(1, spec.versions))
        total += 1 + 5 * spec.versions + superseded + 4 * champs + max(0, champs - 1)
    return total


def final_stage(spec: Spec, i: int, j: int) -> tuple[str, int]:
    """Version j's stage at the end of the generated history, and its row_version."""
    if not spec.is_champion(i, j):  # staging, then archived when the next one comes
        return (Stage.STAGING.value, 2) if j == spec.versions else (Stage.ARCHIVED.value, 3)
    if j == spec.champions(i)[-1]:  # staging, production
        return Stage.PRODUCTION.value, 3
    return Stage.ARCHIVED.value, 4  # staging, production, archived when replaced


def generate(
    spec: Spec, chain: Chain, batch_rounds: int
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every row of the registry, in dependency and time order, a few days' rounds at a time.

    Per version: a dataset, a run (params, seeds, code, environment, trigger), the version
    (development, then staging); the version before it is archived unless it is champion. One
    version in ten is champion: 2 approvals for production, production, ``champion`` moves to
    it (``alias_history`` closed and opened), the previous champion is archived. The audit
    records are those writes' records, padded with approval requests and evaluations so that
    the chain holds exactly ``spec.audit`` records (outbox rows are not generated).
    """
    rng = random.Random(SEED)
    n_models, n_versions = spec.models, spec.versions
    pad_total = max(0, spec.audit - natural_records(spec))
    pad_per, pad_extra = divmod(pad_total, n_models * n_versions)
    out: dict[str, list[dict[str, Any]]] = {tab.name: [] for tab in TABLE_ORDER}

    def flush() -> dict[str, list[dict[str, Any]]]:
        out[t.audit.name] = chain.rows
        done = dict(out)
        for k in out:
            out[k] = []
        chain.rows = []
        return done

    for i in range(n_models):
        name, ts = spec.name(i), spec.t0 - DAY + i * MODEL_GAP
        out[t.models.name].append(
            {
                "id": i + 1,
                "name": name,
                "description": "",
                "created_at": ts,
                "created_by": TRAINER,
                "next_version": n_versions + 1,
            }
        )
        chain.add(ts, TRAINER, "model.create", name, None, {"name": name})
    vid = sid = aid = hid = 0
    version_ids: dict[tuple[int, int], int] = {}
    open_stage: dict[int, tuple[int, str]] = {}  # version id -> (stage_history id, stage)
    champion_of: dict[int, tuple[int, int]] = {}  # model -> (version, alias_history id)
    sh_rows: dict[int, dict[str, Any]] = {}  # open stage_history rows, written once closed
    ah_rows: dict[int, dict[str, Any]] = {}  # open alias_history rows, written once closed
    pad_index = 0

    def set_stage(i: int, j: int, stage: str, ts: float, actor: str, reason: str) -> None:
        nonlocal sid
        v = version_ids[(i, j)]
        old = open_stage.get(v)
        if old is not None:
            sh_rows[old[0]]["valid_to"] = ts
            out[t.stage_history.name].append(sh_rows.pop(old[0]))
        sid += 1
        sh_rows[sid] = {
            "id": sid,
            "version_id": v,
            "stage": stage,
            "valid_from": ts,
            "valid_to": None,
            "actor": actor,
            "reason": reason,
        }
        open_stage[v] = (sid, stage)
        if old is not None:
            subject = f"{spec.name(i)}/{j}"
            chain.add(
                ts, actor, "version.stage", subject, {"stage": old[1]}, {"stage": stage}, reason
            )

    for j in range(1, n_versions + 1):
        for i in range(n_models):
            name, t_reg = spec.name(i), spec.when(i, j)
            if j > 1 and not spec.is_champion(i, j - 1):
                set_stage(i, j - 1, Stage.ARCHIVED.value, t_reg - 1, TRAINER, "superseded")
            vid += 1
            did = vid
            window = (t_reg - 7 * DAY, t_reg - 60)
            ds = {
                "sha256": hex64(rng),
                "row_count": rng.randint(10_000, 2_000_000),
                "uri": f"s3://driftd-data/{name}/{j}.parquet",
                "window_start": window[0],
                "window_end": window[1],
                "source_offsets": {"predictions": {"0": j * 1000, "1": j * 1000 + 17}},
                "schema": {"features": {f"f{k}": "float" for k in range(8)}, "label": "int"},
            }
            out[t.datasets.name].append(
                {"id": did, "created_at": t_reg - 50, "created_by": TRAINER, **ds}
            )
            chain.add(t_reg - 50, TRAINER, "dataset.register", f"dataset:{did}", None, ds)
            run_id = uuid.UUID(int=rng.getrandbits(128)).hex
            trigger = (
                None
                if j == 1
                else {
                    "kind": "drift",
                    "detector": "psi",
                    "feature": f"f{j % 8}",
                    "score": round(rng.random(), 4),
                    "at": t_reg - 3600,
                }
            )
            run_payload = {
                "model": name,
                "params": {
                    "lr": 10 ** -rng.randint(2, 4),
                    "epochs": rng.randint(5, 50),
                    "max_depth": rng.randint(3, 12),
                },
                "seeds": {"numpy": j, "torch": j + 1, "python": j + 2},
                "code": {
                    "repo": "git@example.com:ml/fraud.git",
                    "commit": hex64(rng)[:40],
                    "dirty": False,
                },
                "environment": {
                    "python": "3.11.7",
                    "torch": "2.3.1",
                    "numpy": "1.26.4",
                    "lock_sha256": hex64(rng),
                },
                "tags": {"team": "risk", "retrain": str(j > 1).lower()},
                "dataset_id": did,
                "trigger": trigger,
            }
            metrics = {"auc": round(0.8 + rng.random() / 10, 4), "logloss": round(rng.random(), 4)}
            fields = {k: v for k, v in run_payload.items() if k != "model"}
            out[t.runs.name].append(
                {
                    "id": run_id,
                    "model_id": i + 1,
                    "status": "finished",
                    "metrics": metrics,
                    "started_at": t_reg - 40,
                    "ended_at": t_reg - 10,
                    "created_by": TRAINER,
                    **fields,
                }
            )
            chain.add(t_reg - 40, TRAINER, "run.start", f"run:{run_id}", None, run_payload)
            chain.add(
                t_reg - 10,
                TRAINER,
                "run.finish",
                f"run:{run_id}",
                {"status": "running"},
                {"run_id": run_id, "status": "finished", "metrics": metrics},
            )
            champion = spec.is_champion(i, j)
            evaluation = {"promote": champion, "auc": metrics["auc"], "baseline_auc": 0.85}
            version_payload = {
                "model": name,
                "artifact_uri": f"s3://driftd-models/{name}/{j}/model.pt",
                "artifact_sha256": hex64(rng),
                "artifact_size": rng.randint(1 << 20, 1 << 28),
                "framework": "torch",
                "signature": {
                    "inputs": [{"name": f"f{k}", "type": "double"} for k in range(8)],
                    "outputs": [{"name": "score", "type": "double"}],
                },
                "run_id": run_id,
                "parent_version": j - 1 if j > 1 else None,
                "evaluation": evaluation,
                "description": "",
                "stage": Stage.DEVELOPMENT.value,
                "aliases": [],
            }
            version_ids[(i, j)] = vid
            stage, row_version = final_stage(spec, i, j)
            vfields = {
                k: v for k, v in version_payload.items() if k not in ("model", "aliases", "stage")
            }
            out[t.versions.name].append(
                {
                    "id": vid,
                    "model_id": i + 1,
                    "version": j,
                    "stage": stage,
                    "row_version": row_version,
                    "created_at": t_reg,
                    "created_by": TRAINER,
                    **vfields,
                }
            )
            set_stage(i, j, Stage.DEVELOPMENT.value, t_reg, TRAINER, "")
            subject = f"{name}/{j}"
            chain.add(t_reg, TRAINER, "version.register", subject, None, version_payload)
            set_stage(i, j, Stage.STAGING.value, t_reg + 60, TRAINER, "evaluation passed")
            for p in range(pad_per + (pad_index < pad_extra)):  # pad: requests, evaluations
                ts = t_reg + 61 + p / 1000
                if p % 2 == 0:
                    pl = {"model": name, "version": j, "stage": "production"}
                    chain.add(ts, TRAINER, "approval.request", subject, None, pl)
                else:
                    chain.add(ts, TRAINER, "version.evaluate", subject, None, evaluation)
            pad_index += 1
            if champion:
                for k, who in enumerate(APPROVERS):
                    aid += 1
                    ts = t_reg + 120 + k
                    out[t.approvals.name].append(
                        {
                            "id": aid,
                            "version_id": vid,
                            "stage": "production",
                            "approver": who,
                            "role": "approver",
                            "comment": "lgtm",
                            "created_at": ts,
                        }
                    )
                    pl = {"model": name, "version": j, "stage": "production", "role": "approver"}
                    chain.add(ts, who, "approval.grant", subject, None, pl, "lgtm")
                ts = t_reg + 180
                set_stage(i, j, Stage.PRODUCTION.value, ts, RELEASER, "release")
                hid += 1
                prev = champion_of.get(i)
                if prev is not None:
                    ah_rows[prev[1]]["valid_to"] = ts
                    out[t.alias_history.name].append(ah_rows.pop(prev[1]))
                ah_rows[hid] = {
                    "id": hid,
                    "model_id": i + 1,
                    "alias": "champion",
                    "version": j,
                    "valid_from": ts,
                    "valid_to": None,
                    "actor": RELEASER,
                    "reason": "release",
                }
                old = {"version": prev[0] if prev else None}
                chain.add(
                    ts, RELEASER, "alias.move", f"{name}@champion", old, {"version": j}, "release"
                )
                if prev is not None:
                    set_stage(i, prev[0], Stage.ARCHIVED.value, ts, RELEASER, "replaced")
                champion_of[i] = (j, hid)
        if j == n_versions:
            for v, (sh, stage) in open_stage.items():
                assert sh_rows[sh]["stage"] == stage and sh_rows[sh]["version_id"] == v
            out[t.stage_history.name].extend(sh_rows.values())
            out[t.alias_history.name].extend(ah_rows.values())
            out[t.aliases.name].extend(
                {
                    "model_id": i + 1,
                    "alias": "champion",
                    "version": v,
                    "updated_at": ah_rows[h]["valid_from"],
                }
                for i, (v, h) in champion_of.items()
            )
        if j % batch_rounds == 0 or j == n_versions:
            yield flush()
    while chain.seq < spec.audit:  # tiny sizes: pad the chain at the end
        chain.add(
            spec.end - 1,
            TRAINER,
            "approval.request",
            f"{spec.name(0)}/1",
            None,
            {"model": spec.name(0), "version": 1, "stage": "production"},
        )
        if len(chain.rows) >= 20_000:
            yield flush()
    yield flush()


@dataclass
class Target:
    """One database under test."""

    backend: str
    url: str
    engine: sa.Engine
    conn: sa.Connection | None = None
    load_s: float = 0.0
    drop: Callable[[], None] | None = None


def load(targets: list[Target], spec: Spec, batch_rounds: int) -> dict[str, Any]:
    """Generate once, insert every batch into every target; the audit head row last."""
    gen_s = 0.0
    counts: dict[str, int] = {}
    for tg in targets:
        tg.conn = tg.engine.connect()
        tg.conn.begin()
    chain = Chain(spec.audit)
    random.seed(SEED)  # the audit records' request ids
    it = generate(spec, chain, batch_rounds)
    while True:
        t0 = time.perf_counter()
        chunk = next(it, None)
        gen_s += time.perf_counter() - t0
        if chunk is None:
            break
        for tg in targets:
            assert tg.conn is not None
            t0 = time.perf_counter()
            for tab in TABLE_ORDER:
                rows = chunk[tab.name]
                for k in range(0, len(rows), 10_000):
                    tg.conn.execute(tab.insert(), rows[k : k + 10_000])
            tg.load_s += time.perf_counter() - t0
        for k, v in chunk.items():
            counts[k] = counts.get(k, 0) + len(v)
    seq, head = chain.seq, chain.head
    for tg in targets:
        assert tg.conn is not None
        t0 = time.perf_counter()
        tg.conn.execute(
            t.audit_head.update()
            .where(t.audit_head.c.id == 1)
            .values(seq=seq, hash=head, key_check="")
        )
        if tg.backend == "postgresql":  # explicit ids were inserted: move the sequences on
            for tab in (
                t.models,
                t.datasets,
                t.versions,
                t.stage_history,
                t.approvals,
                t.alias_history,
            ):
                tg.conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{tab.name}', 'id'), "
                        f"(SELECT max(id) FROM {tab.name}))"
                    )
                )
        tg.conn.commit()
        tg.conn.close()
        if tg.backend == "postgresql":  # autovacuum would analyze soon; do it now
            with tg.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("ANALYZE")
        tg.load_s += time.perf_counter() - t0
    return {"generate_s": round(gen_s, 1), "rows": counts, "head_seq": seq}


# -- timing ----------------------------------------------------------------------------------


def latencies(fn: Callable[[Any], Any], args: list[Any], warmup: int = 20) -> np.ndarray:
    """Milliseconds per call of ``fn(a)`` for each ``a`` (after a few warm-up calls)."""
    for a in args[:warmup]:
        fn(a)
    gc.collect()
    gc.disable()
    out = np.empty(len(args))
    try:
        for k, a in enumerate(args):
            t0 = time.perf_counter()
            fn(a)
            out[k] = (time.perf_counter() - t0) * 1000
    finally:
        gc.enable()
    return out


def pct(ms: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "n": len(ms),
    }


@dataclass
class Samples:
    """The same random arguments for every backend (and MLflow)."""

    versions: list[tuple[str, int]]
    models: list[str]
    times: list[tuple[str, float]]


def samples(spec: Spec, calls: int) -> Samples:
    rng = random.Random(SEED + 1)
    ms, vs = spec.models, spec.versions
    return Samples(
        versions=[(spec.name(rng.randrange(ms)), rng.randint(1, vs)) for _ in range(calls)],
        models=[spec.name(rng.randrange(ms)) for _ in range(calls)],
        times=[
            (spec.name(rng.randrange(ms)), rng.uniform(spec.t0, spec.end)) for _ in range(calls)
        ],
    )


def check_alias_at(reg: Registry, spec: Spec, sm: Samples) -> None:
    """A few answers of ``alias_at`` against the generated schedule (the data must be right)."""
    for name, at in sm.times[:50]:
        i = int(name.split("-")[1])
        want = None
        for j in spec.champions(i):
            if spec.when(i, j) + 180 <= at:
                want = j
        got = reg.alias_at(name, "champion", at)
        assert got == want, (name, at, got, want)


def promote_cycles(reg: Registry, spec: Spec, n: int) -> dict[str, Any]:
    """register -> approve x2 -> staging -> production, ``n`` times on random models."""
    rng = random.Random(SEED + 2)
    with reg.engine.connect() as c:
        seq0 = int(c.execute(sa.select(t.audit_head.c.seq)).scalar_one())
    per_cycle: list[float] = []
    t_all = time.perf_counter()
    for _ in range(n):
        m = spec.name(rng.randrange(spec.models))
        t0 = time.perf_counter()
        latest = reg.resolve(f"models:/{m}").version
        v = reg.register_version(
            m,
            f"s3://driftd-models/{m}/{latest + 1}/model.pt",
            hex64(rng),
            123_456,
            TRAINER,
            parent_version=latest,
            evaluation={"promote": True, "auc": 0.9},
        )
        for who in APPROVERS:
            reg.approve(m, v.version, Stage.PRODUCTION, who, Role.APPROVER, "lgtm")
        reg.promote(m, v.version, Stage.STAGING, RELEASER, "bench")
        done = reg.promote(m, v.version, Stage.PRODUCTION, RELEASER, "bench")
        assert "champion" in done.aliases
        per_cycle.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    with reg.engine.connect() as c:
        seq1 = int(c.execute(sa.select(t.audit_head.c.seq)).scalar_one())
    ms = np.array(per_cycle) * 1000
    return {
        "cycles": n,
        "total_s": total,
        "per_s": n / total,
        "tx_per_cycle": 5,
        "audit_per_cycle": (seq1 - seq0) / n,
        **pct(ms),
    }


def bench_backend(
    tg: Target, spec: Spec, sm: Samples, args: argparse.Namespace
) -> tuple[list[Row], dict[str, Any]]:
    reg = Registry(tg.engine)
    b = tg.backend
    info: dict[str, Any] = {"load_s": round(tg.load_s, 1)}
    rows: list[Row] = []
    # verify first, on exactly the generated chain
    t0 = time.perf_counter()
    res = reg.verify_audit()
    verify_s = time.perf_counter() - t0
    assert res.ok and res.records == spec.audit, res
    rows.append(
        Row(
            f"audit verify, {b} ({res.records:,} records)",
            verify_s,
            "s",
            target={"op": "<=", "value": 10, "of": "value"},
            note=f"{res.records / verify_s:,.0f} records/s",
        )
    )
    check_alias_at(reg, spec, sm)

    timed: list[tuple[str, str, Callable[[Any], Any], list[Any], float | None, str]] = [
        (
            "lineage",
            "lineage (default depth 5)",
            lambda a: reg.lineage(f"models:/{a[0]}/{a[1]}"),
            sm.versions,
            20.0,
            "version + run + dataset + approvals + history, and up to 5 parents",
        ),
        (
            "lineage0",
            "lineage depth=0",
            lambda a: reg.lineage(f"models:/{a[0]}/{a[1]}", depth=0),
            sm.versions,
            None,
            "one version's node, no parents",
        ),
        (
            "alias_at",
            "alias_at(champion, T)",
            lambda a: reg.alias_at(a[0], "champion", a[1]),
            sm.times,
            10.0,
            f"T uniform over {spec.versions} days, ~{len(spec.champions(0))} moves",
        ),
        (
            "resolve",
            "resolve(m@champion)",
            lambda m: reg.resolve(f"models:/{m}@champion"),
            sm.models,
            None,
            "VersionInfo with aliases",
        ),
        (
            "list_versions",
            f"list_versions(m) ({spec.versions} versions)",
            reg.list_versions,
            sm.models[: max(20, len(sm.models) // 5)],
            None,
            "newest first, with aliases",
        ),
    ]
    for key, label, fn, a, target, note in timed:
        p = pct(latencies(fn, a))
        info[key] = p
        rows.append(
            Row(
                f"{label} p99, {b}",
                p["p99_ms"],
                "ms",
                target=None if target is None else {"op": "<=", "value": target, "of": "value"},
                note=f"p50 {p['p50_ms']:.2f} ms, n={p['n']}; {note}",
            )
        )
    reg.set_gates({Stage.PRODUCTION: Gate(approvals=2, role=Role.APPROVER)}, actor="admin")
    pr = promote_cycles(reg, spec, args.promotes)
    info["promote"] = pr
    rows.append(
        Row(
            f"promote cycle, {b}",
            pr["per_s"],
            "cycles/s",
            note=f"1 cycle = register + 2 approvals + staging + production "
            f"(5 write tx, {pr['audit_per_cycle']:.0f} audit records, "
            f"champion moved, old champion archived); p50 {pr['p50_ms']:.0f} ms, "
            f"n={pr['cycles']}",
        )
    )
    rows.append(
        Row(
            f"promote write tx, {b}",
            pr["per_s"] * 5,
            "tx/s",
            note="gate: 2 approvals (role approver) for production",
        )
    )
    t0 = time.perf_counter()
    res = reg.verify_audit()
    info["verify_after_writes"] = {
        "ok": res.ok,
        "records": res.records,
        "s": round(time.perf_counter() - t0, 2),
    }
    assert res.ok, res
    info["verify_s"] = verify_s
    return rows, info


# -- MLflow ----------------------------------------------------------------------------------


def mlflow_rows(
    sqlite_path: Path, sm: Samples, driftd: dict[str, Any], tmp: Path, python: Path
) -> tuple[list[Row], dict[str, Any]]:
    """Run ``registry_mlflow.py`` in MLflow's virtualenv on the same data and arguments."""
    if not python.exists():
        msg = f"MLflow not installed: no {python} (see benchmarks/registry_mlflow.py)"
        return [Row("mlflow comparison", None, "ms", note=msg)], {"available": False, "why": msg}
    plan = tmp / "mlflow_plan.json"
    plan.write_text(json.dumps({"versions": sm.versions, "models": sm.models}))
    out = tmp / "mlflow_out.json"
    cmd = [
        str(python),
        str(HERE / "registry_mlflow.py"),
        "--driftd-db",
        str(sqlite_path),
        "--plan",
        str(plan),
        "--out",
        str(out),
        "--workdir",
        str(tmp / "mlflow"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        msg = f"MLflow run failed (rc {proc.returncode}): {' | '.join(tail)[:300]}"
        return [Row("mlflow comparison", None, "ms", note=msg)], {"available": False, "why": msg}
    ml = json.loads(out.read_text())
    pairs = [
        ("list_versions", "search_model_versions(name=m)", "list_versions(m)"),
        ("resolve", "get_model_version_by_alias(m, champion)", "resolve(m@champion)"),
        ("lineage0", "get_model_version + get_run", "lineage(m/v, depth=0)"),
    ]
    rows = []
    for key, theirs, ours in pairs:
        d, m = driftd[key], ml["timings"][key]
        rows.append(
            Row(
                f"vs MLflow: {ours} p50, sqlite",
                d["p50_ms"],
                "ms",
                baseline=m["p50_ms"],
                ratio=m["p50_ms"] / d["p50_ms"],
                note=f"MLflow {theirs}; ratio = driftd speed / MLflow speed "
                f"(p50); p99 {d['p99_ms']:.2f} vs {m['p99_ms']:.2f} ms",
            )
        )
    return rows, {"available": True, **ml}


# -- main ------------------------------------------------------------------------------------


def sqlite_target(tmp: Path) -> Target:
    path = tmp / "registry.db"
    url = f"sqlite:///{path}"
    return Target("sqlite", url, make_engine(url))


def pg_target(admin_url: str) -> Target:
    name = f"driftd_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    tg = Target("postgresql", url, make_engine(url))

    def drop() -> None:
        tg.engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()

    tg.drop = drop
    return tg


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small run for smoke tests")
    ap.add_argument("--models", type=int, help="models (default 1,000)")
    ap.add_argument("--versions", type=int, help="versions per model (default 100)")
    ap.add_argument("--audit", type=int, help="audit records (default 1,000,000)")
    ap.add_argument("--calls", type=int, help="timed calls per read query (default 1,000)")
    ap.add_argument("--promotes", type=int, help="promote cycles timed (default 50)")
    ap.add_argument(
        "--pg-url",
        default=PG_ADMIN_URL,
        help="PostgreSQL admin URL (a fresh database is made); 'none' skips it",
    )
    ap.add_argument(
        "--mlflow-python",
        type=Path,
        default=MLFLOW_PYTHON,
        help="python of the virtualenv with MLflow; 'none' skips MLflow",
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = ap.parse_args(argv)
    q = args.quick
    args.models = args.models or (50 if q else 1_000)
    args.versions = args.versions or (20 if q else 100)
    args.audit = args.audit or (20_000 if q else 1_000_000)
    args.calls = args.calls or (100 if q else 1_000)
    args.promotes = args.promotes or (5 if q else 50)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import msgspec

    machine = report.machine_info(sqlalchemy=sa.__version__, msgspec=msgspec.__version__)
    t_start = time.perf_counter()
    now = time.time()
    spec = Spec(args.models, args.versions, args.audit, t0=now - (args.versions + 3) * DAY)
    rows: list[Row] = []
    params: dict[str, Any] = {
        "quick": args.quick,
        "seed": SEED,
        "models": args.models,
        "versions_per_model": args.versions,
        "audit": args.audit,
        "calls": args.calls,
        "promotes": args.promotes,
    }
    with tempfile.TemporaryDirectory(prefix="driftd-bench-registry-") as tmpd:
        tmp = Path(tmpd)
        targets = [sqlite_target(tmp)]
        if args.pg_url != "none":
            try:
                targets.append(pg_target(args.pg_url))
            except Exception as exc:  # no server: a row says so
                note = f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}"
                rows.append(Row("postgresql", None, "", note=note))
        try:
            for tg in targets:
                upgrade(tg.engine)
            print(
                f"loading {args.models:,} models x {args.versions} versions, "
                f"{args.audit:,} audit records into {', '.join(x.backend for x in targets)}",
                flush=True,
            )
            params["load"] = load(targets, spec, batch_rounds=5)
            params["load"]["load_s"] = {x.backend: round(x.load_s, 1) for x in targets}
            print(f"loaded: {json.dumps(params['load'])}", flush=True)
            sm = samples(spec, args.calls)
            results: dict[str, Any] = {}
            for tg in targets:
                print(f"timing {tg.backend}", flush=True)
                r, info = bench_backend(tg, spec, sm, args)
                rows += r
                results[tg.backend] = info
            params["results"] = results
            if str(args.mlflow_python) != "none":
                print("timing MLflow", flush=True)
                mr, params["mlflow"] = mlflow_rows(
                    tmp / "registry.db", sm, results["sqlite"], tmp, args.mlflow_python
                )
                rows += mr
            else:
                params["mlflow"] = {"available": False, "why": "--mlflow-python none"}
        finally:
            for tg in targets:
                tg.engine.dispose()
                if tg.drop is not None:
                    tg.drop()
    for r in rows:
        r.judge()
    params["total_s"] = round(time.perf_counter() - t_start, 1)
    machine["loadavg_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print_rows(rows, f"driftd registry benchmark ({'quick' if args.quick else 'full'})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine, "rows": [r.as_json() for r in rows], "params": params}
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}; {params['total_s']} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
