"""TimeGuard: which event times are refused, and that batching never changes a verdict."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftd.daemon.timeguard import RESYNC_EVENTS, TimeGuard

T0 = 1_767_225_600.0
F = 3600.0


def guard() -> TimeGuard:
    return TimeGuard(F, 946_684_800.0)


def refused(g: TimeGuard, ts: list[float], progress: float, now: float | None = None) -> list:
    ids = [f"e{i}" for i in range(len(ts))]
    return [(i, r) for i, r, _ in g.screen(np.array(ts), ids, progress, now)]


def test_events_within_max_future_of_the_stream_pass_and_move_it() -> None:
    g = guard()
    # Each event is within F of the largest time before it, so the stream walks forward.
    assert refused(g, [T0 + 3000, T0 + 6000, T0 + 9000], T0) == []


def test_an_event_beyond_max_future_is_refused_and_does_not_move_the_stream() -> None:
    g = guard()
    assert refused(g, [T0 + 10, T0 + 1e7, T0 + 20, T0 + 3610], T0) == [(1, "future_timestamp")]


def test_a_fresh_stream_takes_its_first_time_on_trust_unless_a_clock_says_otherwise() -> None:
    assert refused(guard(), [T0 + 1e7, T0 + 1e7 + 1], -np.inf) == []
    assert refused(guard(), [T0 + 1e7, T0], -np.inf, now=T0) == [(0, "future_timestamp")]


def test_before_min_ts_is_an_invalid_value_and_never_moves_the_stream() -> None:
    assert refused(guard(), [0.0, T0, 946_684_799.9, T0 + 1], -np.inf) == [
        (0, "invalid_value"),
        (2, "invalid_value"),
    ]


def test_a_run_of_distinct_events_resyncs_and_an_accepted_event_breaks_the_run() -> None:
    g = guard()
    gap = [T0 + 7200 + i for i in range(RESYNC_EVENTS + 1)]
    assert refused(g, gap, T0) == [(i, "future_timestamp") for i in range(RESYNC_EVENTS - 1)]
    g = guard()
    broken = [T0 + 7200, T0 + 7201, T0 + 5, T0 + 7202, T0 + 7203]
    assert refused(g, broken, T0) == [(i, "future_timestamp") for i in (0, 1, 3, 4)]


def test_one_id_sent_again_does_not_count_twice_towards_a_resync() -> None:
    g = guard()
    out = g.screen(np.full(RESYNC_EVENTS, T0 + 1e6), ["same"] * RESYNC_EVENTS, T0, None)
    assert len(out) == RESYNC_EVENTS


def test_state_round_trip_keeps_a_run_under_way() -> None:
    g = guard()
    refused(g, [T0 + 7200] * (RESYNC_EVENTS - 1), T0)
    h = guard()
    h.load_state_dict(g.state_dict())
    assert h.screen(np.array([T0 + 7201]), ["last"], T0, None) == []


times = st.lists(
    st.one_of(
        st.floats(0, 100),  # the normal pace
        st.floats(3000, 4000),  # near the bound
        st.floats(5000, 1e7),  # outliers and gaps
        st.floats(-1e7, 0),  # late events
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(offsets=times, cuts=st.lists(st.integers(1, 40), max_size=5), live=st.booleans())
def test_verdicts_do_not_depend_on_batching(
    offsets: list[float], cuts: list[int], live: bool
) -> None:
    ts = np.array([T0 + o for o in offsets])
    ids = [f"e{i % 7}" for i in range(len(ts))]  # some ids repeat
    now = T0 + 5000 if live else None

    def run(bounds: list[int]) -> list[tuple[int, str]]:
        g, progress, out = guard(), T0, []
        for lo, hi in zip([0, *bounds], [*bounds, len(ts)], strict=True):
            got = g.screen(ts[lo:hi], ids[lo:hi], progress, now)
            out += [(lo + i, r) for i, r, _ in got]
            gone = {i for i, _, _ in got}
            kept = [t for i, t in enumerate(ts[lo:hi].tolist()) if i not in gone]
            progress = max([progress, *kept])
        return out

    bounds = sorted({c for c in cuts if c < len(ts)})
    assert run(bounds) == run([])
    assert run(list(range(1, len(ts)))) == run([])
