"""Pure statistics for driftd: streaming change detectors, window tests, quality metrics.

Nothing here does I/O, reads a clock or logs; see ``base`` for the shared interface.
"""

from driftd.detectors.base import Alarm, Detector

__all__ = ["Alarm", "Detector"]
