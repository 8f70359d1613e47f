"""Scoring a candidate against the champion: both predict the snapshot's holdout, and the
configured gate decides. The only place a retrain loads predictor code and champion artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from driftd.config.retrain import ModelRetrainSettings
from driftd.registry import VersionInfo
from driftd.registry.artifacts import ArtifactPolicy, InvalidArtifact
from driftd.retrain.evaluate import GateSpec, evaluate, fingerprint
from driftd.retrain.snapshot import Snapshot
from driftd.retrain.trainer import TrainResult, load_callable

DEFAULT_PRIMARY = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def gate_of(rs: ModelRetrainSettings, task: str) -> GateSpec:
    """The evaluation gate from the config; the primary metric defaults by task."""
    g = rs.gate
    return GateSpec(
        primary=g.primary or DEFAULT_PRIMARY[task],
        min_gain=g.min_gain,
        margin=g.margin,
        alpha=g.alpha,
        guards={str(k): v for k, v in g.guards.items()},
        min_samples=g.min_samples,
        n_boot=g.n_boot,
    )


def champion_artifact_path(v: VersionInfo, artifacts: ArtifactPolicy) -> Path:
    """The champion's local artifact, checked again against the policy before it is loaded."""
    try:
        return artifacts.local_path(v.artifact_uri)
    except InvalidArtifact as exc:
        raise InvalidArtifact(f"{v.uri}: {exc}") from None


def evaluate_candidate(
    snap: Snapshot,
    task: str,
    rs: ModelRetrainSettings,
    result: TrainResult,
    champion: VersionInfo | None,
    artifacts: ArtifactPolicy,
) -> dict[str, Any]:
    """Score candidate and champion on the snapshot's holdout and apply the gate."""
    predict = load_callable(
        rs.predictor,
        "expected 'package.module:function' naming predict(artifact, arrays)",
        "predictor",
    )
    holdout = snap.arrays("holdout")
    holdout_hash = str(snap.manifest["splits"]["holdout"]["sha256"])
    candidate = np.asarray(predict(result.artifact, holdout))
    if champion is None:
        return {
            "promote": True,
            "reasons": [],
            "test": "none",
            "note": "no champion to compare with: the first model is accepted on its own",
            "n": len(holdout.label),
            "holdout_hash": holdout_hash,
        }
    reference = np.asarray(predict(champion_artifact_path(champion, artifacts), holdout))
    spec = gate_of(rs, task)
    ev = evaluate(
        task, holdout.label, reference, candidate, spec, rs.seed, holdout_hash=holdout_hash
    )
    out = ev.to_dict()
    out["primary"] = out["metrics"][spec.primary]
    out["champion_version"] = champion.version
    out["holdout_fingerprint"] = fingerprint(holdout.label)
    return out
