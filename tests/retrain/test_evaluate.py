"""Champion/challenger statistics: metrics, paired bootstrap, McNemar, DeLong and the gate.

The statistics are checked against scikit-learn, scipy and direct (slow) formulas; the gate on
generated data where the candidate is truly better, equal or worse, with its false-promotion
rate over many seeds of the equal case and the coverage of its intervals measured.
"""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from sklearn import metrics as skm

from driftd.retrain.evaluate import (
    METRICS,
    GateSpec,
    applicable_metrics,
    delong,
    evaluate,
    fingerprint,
    mcnemar,
    metric_value,
    paired_bootstrap,
    per_row,
)
from driftd.retrain.paired import _resample_counts
from driftd.retrain.scores import _auc_weighted

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# A check that holds with probability >= 1 - TAIL when the claim is exactly true.
TAIL = 0.001


# --------------------------------------------------------------------------------------------
# Generators with known truth
# --------------------------------------------------------------------------------------------


def binormal(
    rng: np.random.Generator, n: int, mu_a: float, mu_b: float, rho: float = 0.5
) -> tuple[I64, F64, F64]:
    """Binary labels (P(y=1) = 1/2) and calibrated P(y=1) of two correlated models.

    Model k scores ``s_k = mu_k * y + e_k`` with standard normal noise of correlation ``rho``;
    its exact posterior is ``sigmoid(mu_k * s_k - mu_k^2 / 2)``, so a larger ``mu`` is better on
    every metric: ``AUC = Phi(mu / sqrt 2)`` and ``accuracy = Phi(mu / 2)``. Equal ``mu`` means
    the two models are exchangeable, hence truly equal on every metric.
    """
    y = rng.integers(0, 2, n)
    e_a = rng.standard_normal(n)
    e_b = rho * e_a + math.sqrt(1 - rho**2) * rng.standard_normal(n)
    s_a, s_b = mu_a * y + e_a, mu_b * y + e_b
    p_a = 1 / (1 + np.exp(-(mu_a * s_a - mu_a**2 / 2)))
    p_b = 1 / (1 + np.exp(-(mu_b * s_b - mu_b**2 / 2)))
    return y, p_a, p_b


def regression(rng: np.random.Generator, n: int, sd_a: float, sd_b: float) -> tuple[F64, F64, F64]:
    """Targets and two predictions with independent normal errors: ``MAE = sd * sqrt(2/pi)``."""
    f = rng.standard_normal(n)
    y = f + 0.3 * rng.standard_normal(n)
    return y, y + sd_a * rng.standard_normal(n), y + sd_b * rng.standard_normal(n)


def multiclass(
    rng: np.random.Generator, n: int, k: int, noise_a: float, noise_b: float
) -> tuple[I64, F64, F64]:
    """Class codes and two softmax probability matrices; more logit noise is worse."""
    y = rng.integers(0, k, n)
    base = 2.0 * np.eye(k)[y]

    def proba(noise: float) -> F64:
        z = base + noise * rng.standard_normal((n, k))
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    return y, proba(noise_a), proba(noise_b)


def upper_count(n: int, rate: float) -> int:
    """Most events out of ``n`` at ``rate`` that a (1 - TAIL) one-sided binomial check allows."""
    return int(stats.binom.isf(TAIL, n, rate))


# --------------------------------------------------------------------------------------------
# Metrics against scikit-learn
# --------------------------------------------------------------------------------------------


def test_binary_metrics_match_sklearn() -> None:
    y, p, _ = binormal(np.random.default_rng(1), 500, 1.0, 1.0)
    p = np.round(p, 2)  # ties, and scores of exactly 0.5
    assert metric_value("accuracy", "binary", y, p) == pytest.approx(
        skm.accuracy_score(y, (p >= 0.5).astype(int))
    )
    assert metric_value("roc_auc", "binary", y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert metric_value("log_loss", "binary", y, p) == pytest.approx(skm.log_loss(y, p))
    assert metric_value("brier", "binary", y, p) == pytest.approx(skm.brier_score_loss(y, p))


def test_multiclass_and_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(2)
    y, pa, _ = multiclass(rng, 400, 4, 1.0, 1.0)
    codes = pa.argmax(axis=1)
    assert metric_value("accuracy", "multiclass", y, pa) == pytest.approx(
        skm.accuracy_score(y, codes)
    )
    assert metric_value("accuracy", "multiclass", y, codes) == pytest.approx(
        skm.accuracy_score(y, codes)
    )
    assert metric_value("log_loss", "multiclass", y, pa) == pytest.approx(
        skm.log_loss(y, pa, labels=range(4))
    )
    assert metric_value("brier", "multiclass", y, pa) == pytest.approx(
        skm.brier_score_loss(y, pa, labels=range(4), scale_by_half=False)
    )
    yr, ra, _ = regression(rng, 300, 1.0, 1.0)
    assert metric_value("rmse", "regression", yr, ra) == pytest.approx(
        skm.root_mean_squared_error(yr, ra)
    )
    assert metric_value("mae", "regression", yr, ra) == pytest.approx(
        skm.mean_absolute_error(yr, ra)
    )
    assert per_row("rmse", "regression", yr, ra) == pytest.approx((ra - yr) ** 2)


def test_applicable_metrics_and_directions() -> None:
    assert applicable_metrics("binary", [0.2]) == ("accuracy", "roc_auc", "log_loss", "brier")
    assert applicable_metrics("multiclass", np.array([1, 2])) == ("accuracy",)
    assert applicable_metrics("regression", [1.0]) == ("rmse", "mae")
    higher = {m for m, info in METRICS.items() if info.higher_is_better}
    assert higher == {"accuracy", "roc_auc"}


def test_resampled_auc_matches_sklearn_on_each_resample() -> None:
    """The vectorised rank AUC over a block of resamples equals sklearn's AUC of each one."""
    rng = np.random.default_rng(3)
    y, p, _ = binormal(rng, 80, 1.0, 1.0)
    p = np.round(p, 1)  # many ties
    counts = _resample_counts(rng, 80, 25)
    assert np.all(counts.sum(axis=1) == 80)
    got = _auc_weighted(y, p, counts)
    for row, auc in zip(counts.astype(int), got, strict=True):
        idx = np.repeat(np.arange(80), row)
        assert auc == pytest.approx(skm.roc_auc_score(y[idx], p[idx]), abs=1e-12)


# --------------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a_only", "b_only", "both"), [(3, 9, 40), (7, 7, 10), (0, 5, 3)])
def test_mcnemar_exact_matches_binomtest(a_only: int, b_only: int, both: int) -> None:
    ca = np.array([1] * a_only + [0] * b_only + [1] * both + [0] * 6)
    cb = np.array([0] * a_only + [1] * b_only + [1] * both + [0] * 6)
    r = mcnemar(ca, cb)
    m = a_only + b_only
    assert r.exact and (r.a_only, r.b_only) == (a_only, b_only)
    assert r.p_value == pytest.approx(stats.binomtest(b_only, m, 0.5).pvalue)
    assert r.p_value_greater == pytest.approx(
        stats.binomtest(b_only, m, 0.5, alternative="greater").pvalue
    )


def test_mcnemar_chi_square_matches_closed_form() -> None:
    rng = np.random.default_rng(4)
    ca = rng.random(2000) < 0.7
    cb = np.where(rng.random(2000) < 0.3, rng.random(2000) < 0.75, ca)
    b = int(np.sum(ca & ~cb))
    c = int(np.sum(~ca & cb))
    r = mcnemar(ca, cb)
    assert not r.exact and b + c >= 25
    stat = (abs(b - c) - 1) ** 2 / (b + c)
    assert r.statistic == pytest.approx(stat)
    assert r.p_value == pytest.approx(stats.chi2.sf(stat, 1))
    # the continuity-corrected one-sided normal approximation is close to the exact tail
    exact = stats.binomtest(c, b + c, 0.5, alternative="greater").pvalue
    assert r.p_value_greater == pytest.approx(exact, rel=0.1, abs=1e-3)
    assert mcnemar(ca, ca).p_value == 1.0


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------


def delong_direct(y: I64, sa: F64, sb: F64) -> tuple[float, float, float]:
    """O(n^2) DeLong: kernel psi(x, y) = 1[x > y] + 1/2 [x = y]; returns AUCs and var(diff)."""
    pos, neg = y == 1, y == 0
    comps = []
    for s in (sa, sb):
        x, z = s[pos][:, None], s[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    s10 = np.cov(np.vstack([comps[0][1], comps[1][1]]))
    s01 = np.cov(np.vstack([comps[0][2], comps[1][2]]))
    s = s10 / pos.sum() + s01 / neg.sum()
    return comps[0][0], comps[1][0], s[0, 0] + s[1, 1] - 2 * s[0, 1]


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_delong_matches_sklearn_and_direct_variance(seed: int) -> None:
    y, pa, pb = binormal(np.random.default_rng(seed), 90, 0.8, 1.2, rho=0.6)
    pa, pb = np.round(pa, 1), np.round(pb, 2)  # ties within and across classes
    r = delong(y, pa, pb)
    assert r.auc_a == pytest.approx(skm.roc_auc_score(y, pa))
    assert r.auc_b == pytest.approx(skm.roc_auc_score(y, pb))
    auc_a, auc_b, var = delong_direct(y, pa, pb)
    assert (r.auc_a, r.auc_b) == pytest.approx((auc_a, auc_b))
    assert r.se**2 == pytest.approx(var, rel=1e-10)
    assert r.z == pytest.approx((auc_b - auc_a) / math.sqrt(var))
    assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(r.z)))
    assert r.lower_bound == pytest.approx(r.diff - stats.norm.ppf(0.95) * r.se)


def test_auc_needs_both_classes() -> None:
    y = np.ones(50, dtype=int)
    p = np.linspace(0.1, 0.9, 50)
    with pytest.raises(ValueError, match="only class 1"):
        delong(y, p, p[::-1])
    with pytest.raises(ValueError, match="only class 1"):
        metric_value("roc_auc", "binary", y, p)
    spec = GateSpec("roc_auc", min_samples=10, n_boot=200)
    ev = evaluate("binary", y, p, p[::-1], spec, extra_metrics=())
    assert not ev.promote
    assert "not computable" in ev.reasons[0] and "only class 1" in ev.reasons[0]
    assert math.isnan(ev.primary.diff)
    json.dumps(ev.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------------------------
# Paired bootstrap: pairing, direction and coverage
# --------------------------------------------------------------------------------------------


def test_bootstrap_direction_pairing_and_reproducibility() -> None:
    y, pa, pb = regression(np.random.default_rng(8), 400, 1.0, 0.8)
    r = paired_bootstrap("mae", y, pa, pb, 1000, 1, 0.05, task="regression")
    assert r.method == "percentile" and r.n == 400 and r.n_boot == 1000
    # mae is a loss: the difference is champion - candidate, positive = candidate better
    assert r.diff == pytest.approx(np.abs(pa - y).mean() - np.abs(pb - y).mean())
    assert r.diff > 0 and r.ci_low < r.lower_bound < r.diff < r.ci_high
    assert r == paired_bootstrap("mae", y, pa, pb, 1000, 1, 0.05, task="regression")
    swapped = paired_bootstrap("mae", y, pb, pa, 1000, 1, 0.05, task="regression")
    assert swapped.ci_low == pytest.approx(-r.ci_high) and swapped.diff == pytest.approx(-r.diff)
    # pairing: the SD of the paired difference is the SE of the mean per-row difference
    d = np.abs(pa - y) - np.abs(pb - y)
    assert r.se == pytest.approx(d.std() / math.sqrt(400), rel=0.1)


def test_bootstrap_memory_chunks_give_same_distribution_as_one_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunking bounds memory only: a tiny block size still yields a valid interval."""
    import driftd.retrain.paired as paired

    y, pa, pb = binormal(np.random.default_rng(9), 300, 1.0, 1.2)
    full = paired_bootstrap("roc_auc", y, pa, pb, 600, 2)
    monkeypatch.setattr(paired, "_BLOCK_ELEMENTS", 1000)  # 3 resamples per chunk
    small = paired_bootstrap("roc_auc", y, pa, pb, 600, 2)
    assert small.diff == full.diff
    assert small.se == pytest.approx(full.se, rel=0.2)


def coverage_ok(hits: int, reps: int, level: float) -> bool:
    """Coverage within the central (1 - 2 TAIL) binomial range of ``reps`` at ``level``."""
    lo, hi = stats.binom.ppf(TAIL, reps, level), stats.binom.isf(TAIL, reps, level)
    return bool(lo <= hits <= hi)


def test_bootstrap_and_delong_ci_coverage() -> None:
    """95% intervals cover a known true difference in about 95% of repetitions."""
    reps = 400
    mu_a, mu_b = 1.0, 1.3
    true_auc = stats.norm.cdf(mu_b / math.sqrt(2)) - stats.norm.cdf(mu_a / math.sqrt(2))
    true_acc = stats.norm.cdf(mu_b / 2) - stats.norm.cdf(mu_a / 2)
    true_mae = (1.0 - 0.8) * math.sqrt(2 / math.pi)
    hits = dict.fromkeys(["auc_boot", "auc_delong", "accuracy", "mae"], 0)
    for rep in range(reps):
        rng = np.random.default_rng(1000 + rep)
        y, pa, pb = binormal(rng, 300, mu_a, mu_b, rho=0.5)
        b = paired_bootstrap("roc_auc", y, pa, pb, 500, rep)
        d = delong(y, pa, pb)
        acc = paired_bootstrap("accuracy", y, pa, pb, 500, rep)
        yr, ra, rb = regression(rng, 300, 1.0, 0.8)
        m = paired_bootstrap("mae", yr, ra, rb, 500, rep, task="regression")
        hits["auc_boot"] += b.ci_low <= true_auc <= b.ci_high
        hits["auc_delong"] += d.ci_low <= true_auc <= d.ci_high
        hits["accuracy"] += acc.ci_low <= true_acc <= acc.ci_high
        hits["mae"] += m.ci_low <= true_mae <= m.ci_high
    print({k: v / reps for k, v in hits.items()})
    for k, v in hits.items():
        assert coverage_ok(v, reps, 0.95), f"{k}: coverage {v / reps:.3f} over {reps} reps"


# --------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------

CASES = {"better": (1.0, 1.4), "equal": (1.0, 1.0), "worse": (1.0, 0.6)}
# The required gain; the accuracy difference is noisier, so it asks for more.
MIN_GAIN = {"roc_auc": 0.01, "accuracy": 0.025, "log_loss": 0.01, "brier": 0.01}
TEST_OF = {
    "roc_auc": "delong",
    "accuracy": "mcnemar",
    "log_loss": "bootstrap",
    "brier": "bootstrap",
}


@pytest.mark.parametrize("primary", ["roc_auc", "accuracy", "log_loss", "brier"])
@pytest.mark.parametrize(("case", "expect"), [("better", True), ("equal", False), ("worse", False)])
def test_gate_promotes_better_refuses_equal_and_worse(
    primary: str, case: str, expect: bool
) -> None:
    """Truly better by well over min_gain: promote; equal or worse: refuse, naming the primary."""
    guards = {"brier": 0.01} if primary == "log_loss" else {"log_loss": 0.02}
    spec = GateSpec(primary, min_gain=MIN_GAIN[primary], guards=guards, n_boot=1000)
    for seed in range(3):
        y, pa, pb = binormal(np.random.default_rng(seed), 4000, *CASES[case], rho=0.8)
        ev = evaluate("binary", y, pa, pb, spec, seed, extra_metrics=())
        assert ev.promote is expect, (seed, ev.reasons)
        assert ev.n == 4000 and ev.primary.test == TEST_OF[primary]
        if not expect:
            assert any(r.startswith(f"primary {primary}") for r in ev.reasons)


def test_gate_refuses_on_guard_and_names_it() -> None:
    """Better ranking but over-confident probabilities: AUC improves, log loss gets worse."""
    y, pa, pb = binormal(np.random.default_rng(10), 3000, 1.0, 1.4)
    logit = np.log(pb / (1 - pb))
    pb_bad = 1 / (1 + np.exp(-4 * logit))  # monotone: same ranking, much worse calibration
    spec = GateSpec(
        "roc_auc",
        min_gain=0.01,
        guards={"log_loss": 0.05, "accuracy": None},
        margin=0.02,
        n_boot=500,
    )
    ev = evaluate("binary", y, pa, pb_bad, spec, 0)
    assert not ev.promote
    assert len(ev.reasons) == 1 and ev.reasons[0].startswith("guard log_loss")
    assert ev.metrics["roc_auc"].lower_bound > 0.01
    good = evaluate("binary", y, pa, pb, spec, 0)
    assert good.promote and good.reasons == ()
    assert set(good.metrics) == {"roc_auc", "log_loss", "accuracy", "brier"}


def test_guard_compares_its_lower_bound_not_its_estimate_with_the_margin() -> None:
    """A guard whose estimated change is inside the margin but whose lower bound is outside it
    refuses promotion: non-inferiority must be shown, not merely estimated."""
    y, pa, pb = binormal(np.random.default_rng(15), 2000, 1.0, 1.4)
    logit = np.log(pb / (1 - pb))
    pb_sharp = 1 / (1 + np.exp(-2.2 * logit))  # same ranking, log loss about equal
    spec = GateSpec("roc_auc", min_gain=0.01, guards={"log_loss": 0.025}, n_boot=500)
    ev = evaluate("binary", y, pa, pb_sharp, spec, 0, extra_metrics=())
    guard = ev.metrics["log_loss"]
    assert guard.diff > -0.025 > guard.lower_bound, (guard.diff, guard.lower_bound)
    assert ev.metrics["roc_auc"].lower_bound > 0.01
    assert not ev.promote
    assert len(ev.reasons) == 1 and ev.reasons[0].startswith("guard log_loss")
    wide = GateSpec(
        "roc_auc", min_gain=0.01, guards={"log_loss": -guard.lower_bound + 0.01}, n_boot=500
    )
    assert evaluate("binary", y, pa, pb_sharp, wide, 0, extra_metrics=()).promote


def test_gate_refuses_too_few_samples() -> None:
    y, pa, pb = binormal(np.random.default_rng(11), 150, 0.5, 2.5)
    ev = evaluate("binary", y, pa, pb, GateSpec("roc_auc", n_boot=200, min_samples=200))
    assert not ev.promote
    assert ev.reasons == ("too few holdout rows: n=150 < min_samples=200",)


def test_gate_on_regression_and_multiclass() -> None:
    rng = np.random.default_rng(12)
    y, ra, rb = regression(rng, 1500, 1.0, 0.7)
    spec = GateSpec("rmse", min_gain=0.05, guards={"mae": 0.0}, n_boot=500)
    assert evaluate("regression", y, ra, rb, spec).promote
    assert not evaluate("regression", y, rb, ra, spec).promote
    ym, ma, mb = multiclass(rng, 1500, 3, 2.0, 1.0)
    spec_m = GateSpec("log_loss", min_gain=0.02, guards={"accuracy": 0.0}, n_boot=500)
    ev = evaluate("multiclass", ym, ma, mb, spec_m)
    assert ev.promote, ev.reasons
    codes = evaluate("multiclass", ym, ma.argmax(1), mb.argmax(1), GateSpec("accuracy"))
    assert codes.promote and set(codes.metrics) == {"accuracy"}
    with pytest.raises(ValueError, match="does not apply"):
        evaluate("multiclass", ym, ma.argmax(1), mb, spec_m)


@pytest.mark.parametrize("primary", ["roc_auc", "accuracy", "log_loss"])
def test_false_promotion_rate_of_equal_models_is_at_most_alpha(primary: str) -> None:
    """Truly equal models (exchangeable), min_gain = 0: promotions over many seeds <= alpha.

    ``margin`` is set so that the weak reading of the rule (lower bound > -margin) would fail.
    """
    seeds, alpha = 500, 0.05
    spec = GateSpec(primary, alpha=alpha, margin=0.02, n_boot=400)
    promoted = 0
    for seed in range(seeds):
        y, pa, pb = binormal(np.random.default_rng(10_000 + seed), 300, 1.0, 1.0)
        promoted += evaluate("binary", y, pa, pb, spec, seed, extra_metrics=()).promote
    print(f"{primary}: false-promotion rate {promoted / seeds:.3f} over {seeds} seeds")
    assert promoted <= upper_count(seeds, alpha), promoted / seeds


# --------------------------------------------------------------------------------------------
# Inputs, spec and storage
# --------------------------------------------------------------------------------------------


def test_mismatched_lengths_name_the_arrays() -> None:
    y, pa, pb = binormal(np.random.default_rng(13), 100, 1.0, 1.0)
    with pytest.raises(ValueError, match="candidate_pred has 99 rows"):
        evaluate("binary", y, pa, pb[:99], GateSpec("roc_auc"))
    with pytest.raises(ValueError, match="pred_a has 98 rows"):
        paired_bootstrap("brier", y, pa[:98], pb)
    with pytest.raises(ValueError, match="score_b has 10 rows"):
        delong(y, pa, pb[:10])
    with pytest.raises(ValueError, match="correct_b has 3 rows"):
        mcnemar([1, 0], [1, 0, 1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"primary": "f1"}, "unknown metric"),
        ({"primary": "roc_auc", "min_gain": -0.1}, "min_gain"),
        ({"primary": "roc_auc", "margin": math.nan}, "margin"),
        ({"primary": "roc_auc", "alpha": 0.5}, "alpha"),
        ({"primary": "roc_auc", "guards": {"roc_auc": 0.1}}, "also the primary"),
        ({"primary": "roc_auc", "guards": {"brier": -1.0}}, "guard margin"),
        ({"primary": "roc_auc", "min_samples": 1}, "min_samples"),
    ],
)
def test_gate_spec_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GateSpec(**kwargs)  # type: ignore[arg-type]


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        metric_value("log_loss", "binary", [0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="class code 2"):
        metric_value("brier", "binary", [0, 2], [0.2, 0.5])
    with pytest.raises(ValueError, match="does not apply"):
        metric_value("rmse", "binary", [0, 1], [0.2, 0.5])
    with pytest.raises(ValueError, match="task"):
        metric_value("rmse", "ranking", [0, 1], [0.2, 0.5])
    with pytest.raises(ValueError, match="sum to 1"):
        metric_value("log_loss", "multiclass", [0, 1], [[0.2, 0.5], [0.5, 0.5]])


def test_to_dict_is_plain_json_with_decision_numbers_test_and_n() -> None:
    y, pa, pb = binormal(np.random.default_rng(14), 500, 1.0, 1.5)
    spec = GateSpec("accuracy", guards={"brier": 0.01}, n_boot=300)
    ev = evaluate("binary", y, pa, pb, spec, 3, holdout_hash="abc")
    d = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert d["promote"] is ev.promote and d["n"] == 500 and d["holdout_hash"] == "abc"
    assert d["test"] == "mcnemar" and d["spec"]["guards"] == {"brier": 0.01}
    acc = d["metrics"]["accuracy"]
    assert acc["p_value_greater"] == ev.primary.p_value_greater
    assert acc["bootstrap_ci"] == list(ev.primary.bootstrap_ci)
    assert evaluate("binary", y, pa, pb, spec, 3).holdout_hash == fingerprint(y)
    assert fingerprint(y) != fingerprint(y[::-1]) and len(fingerprint(y)) == 64
