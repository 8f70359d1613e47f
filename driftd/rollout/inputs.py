"""Do the canary's inputs look like the champion's? An always-valid test per numeric feature.

The traffic split is random, so both arms should see one input distribution; a difference means
sticky routing, a client-side bug or a broken canary deployment, and then no comparison of the
two is meaningful. Per feature, the difference of means is tested with the normal-mixture
sequential probability ratio (Robbins; Johari et al. 2017): with the mean difference d, its
plug-in variance V and a mixing variance τ²·s² (s the pooled standard deviation),

    Λ = sqrt(V / (V + τ²s²)) · exp(τ²s² d² / (2 V (V + τ²s²)))

is a nonnegative martingale under "no difference", so p = min(1, 1/Λ) is an always-valid
p-value (Ville's inequality): checking it after every batch does not inflate the false-halt
rate. Features are combined with Bonferroni.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def drift_pvalue(
    canary: F64, champion: F64, tau: float = 0.1, min_count: int = 30
) -> tuple[float, float] | None:
    """(largest |z| over features, Bonferroni always-valid p-value) from (k, 3) moment tables
    of count, sum and sum of squares; None until both arms have ``min_count`` values."""
    if canary.size == 0 or champion.size == 0 or canary.shape != champion.shape:
        return None
    n_c, n_b = canary[:, 0], champion[:, 0]
    ok = (n_c >= min_count) & (n_b >= min_count)
    if not ok.any():
        return None
    n_c, n_b = n_c[ok], n_b[ok]
    m_c, m_b = canary[ok, 1] / n_c, champion[ok, 1] / n_b
    v_c = np.maximum(canary[ok, 2] / n_c - m_c**2, 0.0)
    v_b = np.maximum(champion[ok, 2] / n_b - m_b**2, 0.0)
    s2 = np.maximum((v_c * n_c + v_b * n_b) / (n_c + n_b), 1e-12)
    var = np.maximum(v_c / n_c + v_b / n_b, 1e-18)
    d = m_c - m_b
    t2 = tau**2 * s2
    log_lr = 0.5 * np.log(var / (var + t2)) + t2 * d**2 / (2.0 * var * (var + t2))
    p = float(min(1.0, np.exp(-log_lr.max()) * int(ok.sum())))
    return float(np.max(np.abs(d) / np.sqrt(var))), p
