"""The events of one model that are refused before the join, and why.

First what each event says on its own (``validity``: a target or score that contradicts the
model's task), then when it says it happened (``timeguard``: times that would corrupt the
watermark), in arrival order, so that a refused event never moves the stream's time.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from driftd.contracts.events import EventHead
from driftd.daemon.state import ModelState
from driftd.daemon.timeguard import Rejection
from driftd.daemon.validity import invalid_labels, invalid_predictions

_TS = operator.attrgetter("ts")
_ID = operator.attrgetter("id")


def screen(
    model: ModelState,
    heads: Sequence[EventHead | None],
    pidx: list[int],
    lidx: list[int],
    now: float | None,
) -> tuple[list[int], list[int], list[Rejection]]:
    """The prediction and label indices that pass, and the refused ones with their reasons."""
    task, name = model.schema.settings.task, model.schema.name
    out: list[Rejection] = []
    for idx, problems in (
        (pidx, invalid_predictions(task, name, [heads[k] for k in pidx])),  # type: ignore[misc]
        (lidx, invalid_labels(task, name, [heads[k] for k in lidx])),  # type: ignore[misc]
    ):
        out += [(idx[i], "invalid_value", detail) for i, detail in problems]
    if out:
        pidx, lidx = _without(pidx, lidx, out)
    order = sorted(pidx + lidx) if pidx and lidx else pidx or lidx  # arrival order
    events = [heads[k] for k in order]
    ts = np.fromiter(map(_TS, events), dtype=np.float64, count=len(events))
    late = model.store.screen(ts, list(map(_ID, events)), now)
    if late:
        late = [(order[i], reason, detail) for i, reason, detail in late]
        pidx, lidx = _without(pidx, lidx, late)
        out += late
    out.sort(key=lambda r: r[0])
    return pidx, lidx, out


def _without(
    pidx: list[int], lidx: list[int], refused: list[Rejection]
) -> tuple[list[int], list[int]]:
    gone = {k for k, _, _ in refused}
    return [k for k in pidx if k not in gone], [k for k in lidx if k not in gone]
