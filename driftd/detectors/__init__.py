"""Pure statistics for driftd: streaming change detectors, window tests, quality metrics,
data-quality checks and label-free performance estimation.

Nothing here does I/O, reads a clock or logs; see ``base`` for the shared interface. The
multivariate tests (``driftd.detectors.multivariate``: MMD, domain classifier) need torch and
are imported from their module, so that importing this package stays light; ``OnlineMMD``
(numpy only) is exported here.
"""

from driftd.detectors.adwin import ADWIN
from driftd.detectors.base import Alarm, Detector
from driftd.detectors.calibrate import THRESHOLDS, Calibration, ThresholdSpec, calibrate
from driftd.detectors.cbpe import CBPE, Estimate, PerformanceEstimate
from driftd.detectors.cbpe_multiclass import MulticlassCBPE
from driftd.detectors.cusum import CUSUM
from driftd.detectors.data_quality import MissingRate, OutOfRange, TypeErrorRate, UnseenCategories
from driftd.detectors.ddm import DDM, EDDM
from driftd.detectors.dle import DLE, RegressionEstimate
from driftd.detectors.hddm import HDDM_A, HDDM_W
from driftd.detectors.kswin import KSWIN
from driftd.detectors.multitest import benjamini_hochberg, holm
from driftd.detectors.online_mmd import OnlineMMD
from driftd.detectors.page_hinkley import PageHinkley
from driftd.detectors.quality import (
    ROCAUC,
    BrierScore,
    CalibrationError,
    ClassificationScores,
    ConfusionMatrix,
    LogLoss,
    RegressionErrors,
    RegressionScores,
)
from driftd.detectors.sketch import WindowHistogram
from driftd.detectors.window import DriftReport, FeatureResult, WindowDrift

__all__ = [
    "ADWIN",
    "CBPE",
    "CUSUM",
    "DDM",
    "DLE",
    "EDDM",
    "HDDM_A",
    "HDDM_W",
    "KSWIN",
    "ROCAUC",
    "THRESHOLDS",
    "Alarm",
    "BrierScore",
    "Calibration",
    "CalibrationError",
    "ClassificationScores",
    "ConfusionMatrix",
    "Detector",
    "DriftReport",
    "Estimate",
    "FeatureResult",
    "LogLoss",
    "MissingRate",
    "MulticlassCBPE",
    "OnlineMMD",
    "OutOfRange",
    "PageHinkley",
    "PerformanceEstimate",
    "RegressionErrors",
    "RegressionEstimate",
    "RegressionScores",
    "ThresholdSpec",
    "TypeErrorRate",
    "UnseenCategories",
    "WindowDrift",
    "WindowHistogram",
    "benjamini_hochberg",
    "calibrate",
    "holm",
]
