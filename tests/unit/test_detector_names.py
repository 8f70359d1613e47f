"""The detector names are written twice (config's choices, the calibration table) because
config may not import detectors: this keeps the two lists and the package equal."""

from __future__ import annotations

import driftd.detectors as detectors
from driftd.config.settings import DETECTORS
from driftd.detectors.calibrate import THRESHOLDS


def test_config_offers_exactly_the_calibrated_detectors() -> None:
    assert set(DETECTORS) == set(THRESHOLDS)


def test_every_configurable_name_is_a_streaming_detector_of_the_package() -> None:
    for name in DETECTORS:
        detector = getattr(detectors, name)()
        for method in ("update", "state_dict", "load_state_dict", "reset"):
            assert callable(getattr(detector, method, None)), (name, method)
