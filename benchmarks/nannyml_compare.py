"""Label-free performance estimation side by side: driftd CBPE / MulticlassCBPE / DLE vs NannyML.

NannyML runs in its own virtualenv (``.venv-nannyml``, made by ``make bench-nannyml``) as a
subprocess on its bundled datasets: it fits on the reference, estimates the analysis chunks, and
exports the data, its chunks (``chunk_size`` rows, as NannyML cut them) and its estimates. driftd
then estimates the same chunks from the same reference in this venv. Per metric: the mean
absolute error of the estimate against the metric the analysis labels realise (scikit-learn,
the same for both), the fraction of chunks whose realised value lies in the band (driftd: 95%
interval; NannyML: estimate +-3 sampling-error sigma), and the time to fit and estimate every
chunk (data loading, imports and the one-off numba compilation excluded). Targets: driftd's
MAE and time at most NannyML's. An MAE within ``TIE`` (relative) of NannyML's is a tie, not a
loss: both fit the same isotonic calibrator and compute the same expected confusion matrix, so
on the binary tasks the estimates agree to ~1e-9 (NannyML rounds its ROC counts to 5 decimals;
the sums run in another order).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    from benchmarks.report import Row, machine_info, print_rows
except ImportError:  # run as a script: python benchmarks/nannyml_compare.py
    from report import (  # type: ignore[no-redef,import-not-found]
        Row,
        machine_info,
        print_rows,
    )

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "nannyml_compare.json"
NML_PYTHON = HERE.parent / ".venv-nannyml" / "bin" / "python"
TIE = 1e-6  # MAE ratios within this of 1 are floating-point ties

# Runs inside .venv-nannyml: python -c NML_SCRIPT OUT_DIR QUICK. Writes one npz per task and
# tasks.json; times NannyML's fit + estimate only.
NML_SCRIPT = r"""
import json, os, sys, time, warnings
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
warnings.filterwarnings("ignore")
import numpy as np
import nannyml as nml

out, quick = sys.argv[1], sys.argv[2] == "1"

def load(fn, key="id"):
    ref, ana, tgt = getattr(nml, fn)()
    return ref, ana.merge(tgt, on=key)

def run(est, ref, ana, metrics):
    t0 = time.perf_counter()
    est.fit(ref)
    res = est.estimate(ana)
    seconds = time.perf_counter() - t0
    df = res.filter(period="analysis").to_df()
    got = {"start": df[("chunk", "start_index")].to_numpy(int),
           "end": df[("chunk", "end_index")].to_numpy(int) + 1}
    for m in metrics:
        for col, key in (("value", "est"), ("lower_confidence_boundary", "lo"),
                         ("upper_confidence_boundary", "hi")):
            got[f"nml_{m}_{key}"] = df[(m, col)].to_numpy(float)
    return got, seconds

tasks = []
binary = [("synthetic binary", "load_synthetic_binary_classification_dataset", "work_home_actual",
           "y_pred_proba", "y_pred", 5000),
          ("car loan", "load_synthetic_car_loan_dataset", "repaid", "y_pred_proba", "y_pred", 5000),
          ("california housing", "load_modified_california_housing_dataset", "clf_target",
           "y_pred_proba", "y_pred", 1000)]
if not quick:
    binary.append(("us census employment", "load_us_census_ma_employment_data", "employed",
                   "predicted_probability", "prediction", 20000))
metrics = ["roc_auc", "accuracy", "f1"]
for name, fn, y, proba, pred, size in binary:
    ref, ana = load(fn)
    est = nml.CBPE(y_pred_proba=proba, y_pred=pred, y_true=y, metrics=metrics, chunk_size=size,
                   problem_type="classification_binary")
    got, seconds = run(est, ref, ana, metrics)
    for part, df in (("ref", ref), ("ana", ana)):
        got[f"{part}_s"] = df[proba].to_numpy(float)
        got[f"{part}_y"] = df[y].to_numpy(float)
        got[f"{part}_pred"] = df[pred].to_numpy(float)
    np.savez(f"{out}/{len(tasks)}.npz", **got)
    tasks.append({"name": name, "kind": "binary", "metrics": metrics, "seconds": seconds,
                  "chunk_size": size})

ref, ana = load("load_synthetic_multiclass_classification_dataset")
classes = ["prepaid_card", "highstreet_card", "upmarket_card"]
proba = {c: f"y_pred_proba_{c}" for c in classes}
metrics = ["accuracy", "f1"]
est = nml.CBPE(y_pred_proba=proba, y_pred="y_pred", y_true="y_true", metrics=metrics,
               chunk_size=6000, problem_type="classification_multiclass")
got, seconds = run(est, ref, ana, metrics)
code = {c: i for i, c in enumerate(classes)}
for part, df in (("ref", ref), ("ana", ana)):
    got[f"{part}_s"] = df[[proba[c] for c in classes]].to_numpy(float)
    got[f"{part}_y"] = df["y_true"].map(code).to_numpy(int)
    got[f"{part}_pred"] = df["y_pred"].map(code).to_numpy(int)
np.savez(f"{out}/{len(tasks)}.npz", **got)
tasks.append({"name": "synthetic multiclass", "kind": "multiclass", "metrics": metrics,
              "seconds": seconds, "chunk_size": 6000})

ref, ana = load("load_synthetic_car_price_dataset")
features = ["car_age", "km_driven", "price_new", "accident_count", "door_count", "fuel",
            "transmission"]
for c in ("fuel", "transmission"):
    cats = sorted(ref[c].astype(str).unique())
    for df in (ref, ana):
        df[c] = df[c].astype("category").cat.set_categories(cats)
metrics = ["mae", "rmse"]
est = nml.DLE(feature_column_names=features, y_pred="y_pred", y_true="y_true", metrics=metrics,
              chunk_size=6000)
got, seconds = run(est, ref, ana, metrics)
for part, df in (("ref", ref), ("ana", ana)):
    x = df[features].copy()
    for c in ("fuel", "transmission"):
        x[c] = x[c].cat.codes.astype(float).where(x[c].cat.codes >= 0)
    got[f"{part}_x"] = x.to_numpy(float)
    got[f"{part}_y"] = df["y_true"].to_numpy(float)
    got[f"{part}_pred"] = df["y_pred"].to_numpy(float)
np.savez(f"{out}/{len(tasks)}.npz", **got)
tasks.append({"name": "synthetic car price", "kind": "regression", "metrics": metrics,
              "seconds": seconds, "chunk_size": 6000})
json.dump({"tasks": tasks, "nannyml": nml.__version__}, open(f"{out}/tasks.json", "w"))
"""


def _realised(kind: str, metric: str, y: np.ndarray, s: np.ndarray, pred: np.ndarray) -> float:
    """The metric the chunk's labels realise (scikit-learn, as NannyML computes it)."""
    from sklearn import metrics as skm

    if kind == "regression":
        err = y - pred
        return float(np.abs(err).mean() if metric == "mae" else np.sqrt((err**2).mean()))
    if metric == "accuracy":
        return float(skm.accuracy_score(y, pred))
    if metric == "f1":
        avg = "binary" if kind == "binary" else "macro"
        return float(skm.f1_score(y, pred, average=avg, zero_division=0))
    if metric == "roc_auc":
        if kind == "binary":
            return float(skm.roc_auc_score(y, s))
        return float(skm.roc_auc_score(y, s, multi_class="ovr", average="macro"))
    raise ValueError(metric)


def _driftd(kind: str, d: Any) -> tuple[dict[str, np.ndarray], float]:
    """driftd's estimate, lower and upper bound per chunk and metric, and the seconds it took."""
    from driftd.detectors import CBPE, DLE, MulticlassCBPE

    if kind == "regression":  # load DLE's numba kernels (compiled once, then cached on disk)
        rng = np.random.default_rng(0)
        DLE(rng.normal(size=(200, 2)), np.zeros(200), rng.normal(size=200), n_trees=1)
    t0 = time.perf_counter()
    out: dict[str, list[tuple[float, float, float]]] = {}
    chunks = list(zip(d["start"], d["end"], strict=True))
    if kind == "regression":
        dle = DLE(d["ref_x"], d["ref_pred"], d["ref_y"])
        for a, b in chunks:
            e = dle.estimate(d["ana_x"][a:b], d["ana_pred"][a:b])
            for m in ("mae", "rmse"):
                v = getattr(e, m)
                out.setdefault(m, []).append((v.value, v.lower, v.upper))
    else:
        est: CBPE | MulticlassCBPE = (
            CBPE(d["ref_s"], d["ref_y"])
            if kind == "binary"
            else MulticlassCBPE(d["ref_s"], d["ref_y"], classes=[0, 1, 2])
        )
        for a, b in chunks:
            pe = est.estimate(d["ana_s"][a:b], d["ana_pred"][a:b])
            for m in ("roc_auc", "accuracy", "f1"):
                v = getattr(pe, m)
                out.setdefault(m, []).append((v.value, v.lower, v.upper))
    seconds = time.perf_counter() - t0
    return {m: np.array(v) for m, v in out.items()}, seconds


def _run_nannyml(python: Path, tmp: Path, quick: bool) -> dict[str, Any]:
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    cmd = [str(python), "-c", NML_SCRIPT, str(tmp), "1" if quick else "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0 or not (tmp / "tasks.json").exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"NannyML run failed (rc {proc.returncode}): {' | '.join(tail)[:300]}")
    doc: dict[str, Any] = json.loads((tmp / "tasks.json").read_text())
    return doc


def nannyml_rows(quick: bool, python: Path = NML_PYTHON) -> list[Row]:
    """Rows comparing driftd's and NannyML's estimates on NannyML's bundled datasets.

    ``quick`` leaves out the largest dataset (US census, 209k analysis rows). Without
    ``.venv-nannyml`` the single row says so instead of failing.
    """
    rows, _ = _compare(quick, python)
    return rows


def _compare(quick: bool, python: Path) -> tuple[list[Row], dict[str, Any]]:
    if not python.exists():
        msg = f"NannyML not installed: no {python} (make bench-nannyml)"
        return [Row("nannyml comparison", None, "abs", note=msg)], {"available": False}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        try:
            doc = _run_nannyml(python, tmp, quick)
        except RuntimeError as exc:
            return [Row("nannyml comparison", None, "abs", note=str(exc))], {"available": False}
        rows: list[Row] = []
        params: dict[str, Any] = {"nannyml": doc["nannyml"], "tasks": []}
        for i, task in enumerate(doc["tasks"]):
            with np.load(tmp / f"{i}.npz") as z:
                d = {k: z[k] for k in z.files}
            ours, seconds = _driftd(task["kind"], d)
            family = {"binary": "CBPE", "multiclass": "CBPE multiclass", "regression": "DLE"}
            label = f"{family[task['kind']]} {task['name']}"
            chunks = len(d["start"])
            info: dict[str, Any] = {**task, "chunks": chunks, "driftd_seconds": seconds}
            for m in task["metrics"]:
                real = np.array(
                    [
                        _realised(
                            task["kind"],
                            m,
                            d["ana_y"][a:b],
                            d["ana_s" if "ana_s" in d else "ana_x"][a:b],
                            d["ana_pred"][a:b],
                        )
                        for a, b in zip(d["start"], d["end"], strict=True)
                    ]
                )
                theirs = np.column_stack([d[f"nml_{m}_{k}"] for k in ("est", "lo", "hi")])
                mae_d = float(np.abs(ours[m][:, 0] - real).mean())
                mae_n = float(np.abs(theirs[:, 0] - real).mean())
                cov_d = float(((ours[m][:, 1] <= real) & (real <= ours[m][:, 2])).mean())
                cov_n = float(((theirs[:, 1] <= real) & (real <= theirs[:, 2])).mean())
                width_d = float((ours[m][:, 2] - ours[m][:, 1]).mean())
                width_n = float((theirs[:, 2] - theirs[:, 1]).mean())
                name = "f1 macro" if task["kind"] == "multiclass" and m == "f1" else m
                rows.append(
                    Row(
                        f"{label}: {name} MAE vs realised",
                        mae_d,
                        "abs",
                        baseline=mae_n,
                        ratio=mae_d / mae_n if mae_n > 0 else None,
                        target={"op": "<=", "value": 1.0 + TIE, "of": "ratio"},
                        note=f"MAE difference {mae_d - mae_n:+.1e}; band coverage driftd"
                        f" {cov_d:.2f} (95%) / NannyML {cov_n:.2f} (+-3 sigma); width"
                        f" {width_d:.3g} / {width_n:.3g}; {chunks} chunks",
                    )
                )
                info[m] = {"mae": [mae_d, mae_n], "coverage": [cov_d, cov_n]}
                info[m] |= {"width": [width_d, width_n]}
            rows.append(
                Row(
                    f"{label}: fit + estimate {chunks} chunks",
                    seconds,
                    "s",
                    baseline=task["seconds"],
                    ratio=seconds / task["seconds"],
                    target={"op": "<=", "value": 1.0, "of": "ratio"},
                    note=f"{len(d['ana_y']):,} analysis rows, chunks of {task['chunk_size']:,}",
                )
            )
            params["tasks"].append(info)
    return [r.judge() for r in rows], params


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="leave out the US census dataset")
    ap.add_argument("--nannyml-python", type=Path, default=NML_PYTHON)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    machine = machine_info()
    t0 = time.perf_counter()
    rows, params = _compare(args.quick, args.nannyml_python)
    params["total_s"] = round(time.perf_counter() - t0, 1)
    mode = "quick" if args.quick else "full"
    print_rows(rows, f"driftd vs NannyML performance estimation ({mode})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine, "rows": [r.as_json() for r in rows], "params": params}
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {args.out}; {params['total_s']} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
