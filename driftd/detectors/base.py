"""What every detector shares: the Alarm it returns, its interface, its state envelope.

Detectors are pure: no I/O, no clock, no logging. Time, when a detector needs it, arrives as
an argument; state is plain numbers and numpy arrays that round-trip through
``state_dict()`` / ``load_state_dict()`` inside a versioned envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from driftd.contracts.versioning import require_state_version

__all__ = ["Alarm", "Detector", "as_scalar", "envelope", "open_envelope"]


@dataclass(frozen=True, slots=True)
class Alarm:
    """A detector fired: where in the batch, on what statistic, against which threshold."""

    detector: str
    index: int  # position in the batch passed to update() where it fired
    statistic: float
    threshold: float
    kind: Literal["drift", "warning"] = "drift"


class Detector(Protocol):
    """A streaming change detector over a scalar stream, processed in batches."""

    def update(self, values: npt.ArrayLike) -> list[Alarm]:
        """Consume a batch in order; return the alarms, each with its index in the batch.

        After a drift alarm the detector resets itself as its algorithm prescribes and goes on
        with the rest of the batch.
        """
        ...

    def reset(self) -> None:
        """Forget everything seen (parameters stay)."""
        ...

    @property
    def statistic(self) -> float:
        """The live test statistic: what the drift rule compares with ``threshold`` now.

        Computed lazily from the state (nothing per update); NaN while the detector has too
        little data for its test (warm-up, and again right after each reset).
        A drift Alarm's statistic/threshold are these properties on the state holding the
        alarming value, just before the reset; after the alarm they describe the fresh state.
        """
        ...

    @property
    def threshold(self) -> float:
        """The drift threshold ``statistic`` is compared with now (it may move with the state,
        e.g. DDM's ``p_min + d·s_min``); NaN while undefined. Read-only (a parameter where it
        is constant, e.g. PageHinkley's and CUSUM's ``threshold``)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers and arrays, in a versioned envelope."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state_dict(); raises StateVersionError on a foreign or newer state."""
        ...


def envelope(kind: str, version: int, state: dict[str, Any]) -> dict[str, Any]:
    """Wrap a detector's state with its kind and version."""
    return {"kind": kind, "v": version, "state": state}


def open_envelope(obj: Mapping[str, Any], kind: str, version: int) -> dict[str, Any]:
    """The state inside an envelope, after checking kind and version."""
    require_state_version(obj, kind, version)
    state: dict[str, Any] = dict(obj["state"])
    return state


def as_float_array(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A float64 view or copy of the input; never aliases a caller's array for writing."""
    return np.asarray(values, dtype=np.float64)


def as_scalar(values: object) -> float | None:
    """``values`` as a Python float when it is one real number (a 0-d or size-1 array too), else
    None; the detectors' scalar fast path takes it, the batch path everything else."""
    if type(values) is float or type(values) is int or type(values) is bool:
        return float(values)
    if isinstance(values, np.ndarray | np.generic) and values.size == 1:
        if values.dtype.kind in "biuf":
            return float(np.asarray(values, dtype=np.float64).reshape(-1)[0])
    elif isinstance(values, float | int):  # subclasses, e.g. np.float64
        return float(values)
    return None
