"""Contracts shared by every part of driftd: wire events, batch columns, monitors and alarms,
and the versioned-state check. The bottom layer: imports numpy, msgspec and ``driftd.errors``
only, so that detectors, retraining, rollout and the daemon can all depend on it.
"""
