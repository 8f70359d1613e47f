"""MLflow's side of ``benchmarks/registry.py``: run in MLflow's own virtualenv, not driftd's.

``registry.py`` calls it as a subprocess (``.venv-mlflow/bin/python``) so that MLflow and its
pins never meet driftd's. It reads the models, versions, runs and ``champion`` aliases from the
driftd SQLite file the main benchmark just filled (stdlib ``sqlite3``), loads the same data into
an MLflow SQLite tracking + registry store, and times MLflow's equivalents of driftd's reads on
the same arguments:

- ``search_model_versions("name='m'")``           vs ``list_versions(m)``
- ``get_model_version_by_alias(m, "champion")``   vs ``resolve(m@champion)``
- ``get_model_version(m, v)`` + ``get_run(run_id)`` vs ``lineage(m/v, depth=0)``

The store's schema comes from MLflow itself (its client creates and migrates the database);
one run, model, version and alias are created through ``MlflowClient`` and their rows are the
templates for the bulk load (SQLAlchemy Core executemany), so every column MLflow sets is set.
Install: ``python3 -m venv .venv-mlflow && .venv-mlflow/bin/pip install mlflow``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sqlite3
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMPLATE = "bench-template"
BATCH = 10_000


def driftd_data(path: Path) -> dict[str, Any]:
    """Models, versions, runs and champion aliases from a driftd registry SQLite file."""
    db = sqlite3.connect(path)
    models = dict(db.execute("SELECT id, name FROM registry_models"))
    versions = db.execute(
        "SELECT model_id, version, artifact_uri, run_id, created_at, created_by, stage "
        "FROM registry_versions"
    ).fetchall()
    runs = db.execute(
        "SELECT id, params, metrics, tags, started_at, ended_at, created_by FROM registry_runs"
    ).fetchall()
    aliases = db.execute("SELECT model_id, alias, version FROM registry_aliases").fetchall()
    db.close()
    return {"models": models, "versions": versions, "runs": runs, "aliases": aliases}


def rows_of(conn: Any, table: Any, **where: Any) -> list[dict[str, Any]]:
    q = table.select()
    for k, v in where.items():
        q = q.where(table.c[k] == v)
    return [dict(zip(r._fields, r, strict=True)) for r in conn.execute(q)]


def load(uri: str, data: dict[str, Any]) -> dict[str, Any]:
    """Create the MLflow store and bulk-load ``data`` into it; the counts and seconds."""
    import sqlalchemy as sa
    from mlflow import MlflowClient

    t0 = time.perf_counter()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("driftd-bench")
    run = client.create_run(exp)
    rid = run.info.run_id
    client.log_param(rid, "p", "1")
    client.log_metric(rid, "m", 1.0, timestamp=1, step=0)
    client.set_terminated(rid)
    client.create_registered_model(TEMPLATE)
    client.create_model_version(TEMPLATE, source="s3://template/model.pt", run_id=rid)
    client.set_registered_model_alias(TEMPLATE, "champion", "1")
    schema_s = time.perf_counter() - t0

    engine = sa.create_engine(uri)
    md = sa.MetaData()
    md.reflect(engine)
    tb = md.tables
    with engine.connect() as conn:
        tpl = {
            "runs": rows_of(conn, tb["runs"], run_uuid=rid)[0],
            "tags": rows_of(conn, tb["tags"], run_uuid=rid),
            "params": rows_of(conn, tb["params"], run_uuid=rid)[0],
            "metrics": rows_of(conn, tb["metrics"], run_uuid=rid)[0],
            "latest_metrics": rows_of(conn, tb["latest_metrics"], run_uuid=rid)[0],
            "registered_models": rows_of(conn, tb["registered_models"], name=TEMPLATE)[0],
            "model_versions": rows_of(conn, tb["model_versions"], name=TEMPLATE)[0],
            "registered_model_aliases": rows_of(
                conn, tb["registered_model_aliases"], name=TEMPLATE
            )[0],
        }
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in tpl}
    run_model: dict[str, str] = {}
    art_root = tpl["runs"]["artifact_uri"].rsplit("/", 2)[0]
    models = data["models"]
    for model_id, version, uri_, run_id, created_at, created_by, _stage in data["versions"]:
        ms = int(created_at * 1000)
        name = models[model_id]
        out["model_versions"].append(
            {
                **tpl["model_versions"],
                "name": name,
                "version": version,
                "creation_time": ms,
                "last_updated_time": ms,
                "source": uri_,
                "storage_location": uri_,
                "run_id": run_id,
                "user_id": created_by,
            }
        )
        if run_id is not None:
            run_model[run_id] = name
    for run_id, params, metrics, tags, started, ended, created_by in data["runs"]:
        start, end = int(started * 1000), int(ended * 1000) if ended else None
        out["runs"].append(
            {
                **tpl["runs"],
                "run_uuid": run_id,
                "name": run_id[:12],
                "start_time": start,
                "end_time": end,
                "user_id": created_by,
                "artifact_uri": f"{art_root}/{run_id}/artifacts",
            }
        )
        for row in tpl["tags"]:
            value = run_id[:12] if row["key"] == "mlflow.runName" else row["value"]
            out["tags"].append({**row, "run_uuid": run_id, "value": value})
        out["tags"] += [
            {**tpl["tags"][0], "run_uuid": run_id, "key": k, "value": str(v)}
            for k, v in json.loads(tags).items()
        ]
        out["params"] += [
            {**tpl["params"], "run_uuid": run_id, "key": k, "value": str(v)}
            for k, v in json.loads(params).items()
        ]
        for k, v in json.loads(metrics).items():
            m = {"run_uuid": run_id, "key": k, "value": float(v), "timestamp": end or start}
            out["metrics"].append({**tpl["metrics"], **m, "step": 0})
            out["latest_metrics"].append({**tpl["latest_metrics"], **m, "step": 0})
    for name in models.values():
        out["registered_models"].append(
            {**tpl["registered_models"], "name": name, "creation_time": 0, "last_updated_time": 0}
        )
    for model_id, alias, version in data["aliases"]:
        out["registered_model_aliases"].append(
            {
                **tpl["registered_model_aliases"],
                "name": models[model_id],
                "alias": alias,
                "version": version,
            }
        )
    with engine.begin() as conn:
        for name in (
            "registered_models",
            "runs",
            "tags",
            "params",
            "metrics",
            "latest_metrics",
            "model_versions",
            "registered_model_aliases",
        ):
            rows = out[name]
            for k in range(0, len(rows), BATCH):
                conn.execute(tb[name].insert(), rows[k : k + BATCH])
    engine.dispose()
    return {
        "schema_s": round(schema_s, 1),
        "load_s": round(time.perf_counter() - t0 - schema_s, 1),
        "rows": {k: len(v) for k, v in out.items()},
        "client": client,
    }


def latencies(fn: Callable[[Any], Any], args: list[Any], warmup: int = 20) -> list[float]:
    """Milliseconds per call (the same method as registry.py's)."""
    for a in args[:warmup]:
        fn(a)
    gc.collect()
    gc.disable()
    out = []
    try:
        for a in args:
            t0 = time.perf_counter()
            fn(a)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        gc.enable()
    return out


def pct(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)

    def q(p: float) -> float:  # numpy's default (linear) percentile
        x = (len(s) - 1) * p
        lo = int(x)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (x - lo)

    return {"p50_ms": q(0.5), "p99_ms": q(0.99), "mean_ms": statistics.fmean(s), "n": len(s)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--driftd-db", type=Path, required=True, help="driftd registry SQLite file")
    ap.add_argument("--plan", type=Path, required=True, help="JSON: versions, models to query")
    ap.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    ap.add_argument("--workdir", type=Path, required=True, help="where the MLflow store goes")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    import mlflow

    args.workdir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{args.workdir / 'mlflow.db'}"
    plan = json.loads(args.plan.read_text())
    loaded = load(uri, driftd_data(args.driftd_db))
    client = loaded.pop("client")
    versions = [tuple(v) for v in plan["versions"]]
    models = plan["models"]

    # the answers must be the ones driftd gives (same data)
    m0 = models[0]
    assert len(client.search_model_versions(f"name='{m0}'")) > 0
    mv = client.get_model_version_by_alias(m0, "champion")
    assert client.get_run(mv.run_id).info.run_id == mv.run_id

    def lineage(a: tuple[str, int]) -> None:
        v = client.get_model_version(a[0], str(a[1]))
        client.get_run(v.run_id)

    timings = {
        "list_versions": pct(
            latencies(
                lambda m: client.search_model_versions(f"name='{m}'"),
                models[: max(20, len(models) // 5)],
            )
        ),
        "resolve": pct(
            latencies(lambda m: client.get_model_version_by_alias(m, "champion"), models)
        ),
        "lineage0": pct(latencies(lineage, versions)),
    }
    n_list = len(client.search_model_versions(f"name='{m0}'"))
    doc = {
        "mlflow": mlflow.__version__,
        "uri": "sqlite (MLflow SqlAlchemyStore, in-process client)",
        "load": loaded,
        "versions_per_search": n_list,
        "timings": timings,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc["timings"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
