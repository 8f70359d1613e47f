"""Compiled kernels for the sequential detectors, the batch-scanning loop, parameter checks.

ADWIN, HDDM_W and KSWIN cannot be written as cumulative sums; their per-sample loops are
numba kernels over plain arrays, so that their whole state round-trips through
``state_dict()``. Each kernel stops when its alarm buffer is full and reports how far it got.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit

from driftd.detectors.base import Alarm

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def _jit(fn: _Fn) -> _Fn:
    """``njit(cache=True)``, typed for mypy."""
    return cast(_Fn, njit(cache=True)(fn))


def _jit_unchecked(fn: _Fn) -> _Fn:
    """``_jit`` without numba's zero-division checks (numpy's error model), for kernels whose
    every divisor is nonzero by construction: same results, and the checks' branches cost
    ADWIN about 60 ns per call."""
    return cast(_Fn, njit(cache=True, error_model="numpy")(fn))


def _jit_unchecked_inline(fn: _Fn) -> _Fn:
    """``_jit_unchecked``, inlined into the compiled functions that call it (no call, and no
    reference counting of the arrays passed)."""
    return cast(_Fn, njit(cache=True, error_model="numpy", inline="always")(fn))


# An advance step consumes a prefix of the chunk: (values consumed, alarms at local indices).
Hit = tuple[int, float, float, Literal["drift", "warning"]]
Advance = Callable[[F64], tuple[int, list[Hit]]]


def check(name: str, value: object, ok: bool, valid: str) -> None:
    """Raise a ValueError naming the parameter, its value and the valid range."""
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid; valid: {valid}")


def scan(name: str, x: F64, advance: Advance, first_chunk: int = 4096) -> list[Alarm]:
    """Feed ``x`` to ``advance`` in growing chunks; re-start small after each drift.

    ``advance`` processes a chunk up to and including its first drift (after which the
    detector has reset itself) and returns how many values it consumed. Growing chunks keep
    the work after a drift proportional to the distance to the next one.
    """
    alarms: list[Alarm] = []
    pos, chunk, n = 0, first_chunk, len(x)
    while pos < n:
        end = min(n, pos + chunk)
        used, hits = advance(x[pos:end])
        for i, stat, thr, kind in hits:
            alarms.append(Alarm(name, pos + i, stat, thr, kind))
        drifted = any(h[3] == "drift" for h in hits)
        # after a drift, guess the next one is about as far away as this one was
        chunk = max(256, 2 * used) if drifted else chunk * 2
        chunk = min(chunk, 1 << 20)
        pos += used
    return alarms


def last_true_index(mask: npt.NDArray[np.bool_]) -> I64:
    """For each position, the index of the last True at or before it (-1 if none)."""
    idx = np.where(mask, np.arange(mask.size, dtype=np.int64), np.int64(-1))
    out: I64 = np.maximum.accumulate(idx) if idx.size else idx
    return out


# --------------------------------------------------------------------------------------- ADWIN

ADWIN_LEVELS = 64  # bucket rows of 2**i values; 64 rows hold more values than any stream has

# The whole state lives in two flat blocks, so that a test on single values costs one compiled
# call with two arguments (numba's dispatch is paid per argument). Each row of b =
# max_buckets + 1 slots is a ring: its k-th oldest bucket sits in slot (start + k) mod b, so
# merging the two oldest moves ``start`` instead of shifting the row (the shifts took half of
# the insert time). With H = ADWIN_LEVELS * b:
# floats: totals [0, H) (row r's slots from r*b), variances [H, 2H), then from 2H: total,
# variance (sum of squares), width, delta, min_window_length, grace_period, the last alarm's
# statistic and threshold, and ``clock`` slots for single values waiting for their test;
# ints: bucket counts per row [0, L), ring starts per row [L, 2L), then tick modulo clock,
# rows in use, clock, max_buckets (L = ADWIN_LEVELS).
ADWIN_FS, ADWIN_PARAMS, ADWIN_OUT, ADWIN_PENDING = 0, 3, 6, 8  # float offsets after 2H
ADWIN_START = ADWIN_LEVELS
ADWIN_TICK, ADWIN_ROWS, ADWIN_CLOCK, ADWIN_MAX_BUCKETS = range(
    2 * ADWIN_LEVELS, 2 * ADWIN_LEVELS + 4
)
ADWIN_INTS = 2 * ADWIN_LEVELS + 4  # length of the int block


@_jit_unchecked_inline
def adwin_step(x: F64, lo: int, hi: int, f: F64, i: I64) -> tuple[int, bool, float, float]:
    """River's AdaptiveWindowing over ``x[lo:hi]`` up to its first drift, after which it resets
    completely as River 0.26 does; returns where it stopped (``hi``, or just after the drift),
    whether a drift fired, its statistic and its threshold.

    One compiled loop on purpose: insert, bucket compression and cut search share the state per
    value; split, the hot path would gain calls and River's operation order would be harder to see.
    The window's total, variance, width and the tick stay in locals between values (the same
    operations in the same order as River's, so the same bits) and go back to ``f``/``i`` at
    the end. Slots outside a row's buckets hold stale values: only ``adwin_buckets`` reads a
    row whole.
    """
    mb = i[ADWIN_MAX_BUCKETS]
    b = mb + 1
    h = ADWIN_LEVELS * b
    s = 2 * h  # the scalars
    p = s + ADWIN_PARAMS
    delta, min_len, grace = f[p], f[p + 1], f[p + 2]
    clock = i[ADWIN_CLOCK]
    total, var, width = f[s], f[s + 1], f[s + 2]
    tick = i[ADWIN_TICK]
    c0, st0 = i[0], i[ADWIN_START]  # row 0's count and ring start
    for t in range(lo, hi):
        v = x[t]
        # insert into row 0 with the same operation order as River
        q = st0 + c0
        q = q - b if q >= b else q
        f[q] = v
        f[h + q] = 0.0
        c0 += 1
        width += 1.0
        inc = 0.0
        if width > 1.0:
            dv = v - total / (width - 1.0)
            inc = (width - 1.0) * dv * dv / width
        var += inc
        total += v
        if c0 == b:  # row 0 is full: merge its two oldest buckets into row 1
            q1 = st0 + 1 if st0 + 1 < b else 0
            t0, t1 = f[st0], f[q1]
            mu1, mu2 = t0 / 1.0, t1 / 1.0
            v12 = f[h + st0] + f[h + q1] + 1.0 * 0.5 * (mu1 - mu2) * (mu1 - mu2)
            st0 = st0 + 2 - b if st0 + 2 >= b else st0 + 2
            c0 = b - 2
            row, n1, inv = 1, 2.0, 0.5  # 2**row and its inverse, exact
            while True:  # put the merged bucket into ``row``; merge further while rows fill
                if row >= i[ADWIN_ROWS]:
                    i[ADWIN_ROWS] = row + 1
                r0 = row * b
                c = i[row]
                q = i[ADWIN_START + row] + c
                q = r0 + (q - b if q >= b else q)
                f[q] = t0 + t1
                f[h + q] = v12
                c += 1
                if c <= mb:
                    i[row] = c
                    break
                q = i[ADWIN_START + row]
                q1 = q + 1 if q + 1 < b else 0
                t0, t1 = f[r0 + q], f[r0 + q1]
                mu1, mu2 = t0 * inv, t1 * inv  # the quotients by n1: one exact real, rounded
                v12 = f[h + r0 + q] + f[h + r0 + q1] + n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)
                i[ADWIN_START + row] = q + 2 - b if q + 2 >= b else q + 2
                i[row] = b - 2
                row, n1, inv = row + 1, n1 * 2.0, inv * 0.5
        tick += 1  # River's tick, kept modulo clock (a division per value is dear)
        if tick < clock:
            continue
        tick = 0
        if width <= grace:
            continue
        i[0], i[ADWIN_START] = c0, st0
        n0, n1w, u0, u1 = 0.0, width, 0.0, total
        found = False
        dp = math.log(2.0 * math.log(width) / delta)  # River recomputes it per split; same value
        var_w = var / width
        bound = 0.999 * (2.0 / 3.0 * dp)
        bound2 = 0.998 * 2.0 * var_w * dp
        for row in range(i[ADWIN_ROWS] - 1, -1, -1):
            size = float(1 << row)
            r0 = row * b
            q = i[ADWIN_START + row]
            n = i[row] if row > 0 else i[0] - 1  # the newest bucket is never a split
            for _ in range(n):
                tot = f[r0 + q]
                q = q + 1 if q + 1 < b else 0
                n0 += size
                n1w -= size
                u0 += tot
                u1 -= tot
                if n1w >= min_len and n0 >= min_len:
                    # division-free necessary conditions for |dm| > ε = sqrt(2·m·v·dp) + 2/3·dp·m,
                    # all multiplied by n0·n1·ra·rb: |dm| exceeds the second term, and by more
                    # than the first (squared); with margins far above rounding, so the exact
                    # test below decides every case that can fire
                    ra, rb = n0 - min_len + 1.0, n1w - min_len + 1.0
                    lhs = abs(u0 * n1w - u1 * n0) * ra * rb
                    rhs = bound * (ra + rb) * n0 * n1w
                    if lhs < rhs:
                        continue
                    pp = n0 * n1w
                    if (lhs - rhs) * (lhs - rhs) < bound2 * (ra + rb) * ra * rb * pp * pp:
                        continue
                    dm = abs((u0 / n0) - (u1 / n1w))
                    m = 1.0 / ra + 1.0 / rb
                    eps = math.sqrt(2.0 * m * var_w * dp) + 2.0 / 3.0 * dp * m
                    if dm > eps:
                        found = True
                        break
            if found:
                break
        if found:
            f[:s] = 0.0
            i[:ADWIN_TICK] = 0
            i[ADWIN_ROWS] = 1
            f[s], f[s + 1], f[s + 2], i[ADWIN_TICK] = 0.0, 0.0, 0.0, 0
            return t + 1, True, dm, eps
    f[s], f[s + 1], f[s + 2], i[ADWIN_TICK] = total, var, width, tick
    i[0], i[ADWIN_START] = c0, st0
    return hi, False, 0.0, 0.0


@_jit_unchecked
def adwin_run(
    x: F64, lo: int, hi: int, f: F64, i: I64, out_i: I64, out_s: F64, out_t: F64
) -> tuple[int, int]:
    """``adwin_step`` until ``hi`` or until ``out_i`` is full; returns where it stopped and the
    drifts written to ``out_i`` (indices into ``x``), ``out_s`` and ``out_t``."""
    n_out = 0
    while lo < hi and n_out < out_i.size:
        lo, fired, stat, threshold = adwin_step(x, lo, hi, f, i)
        if fired:
            out_i[n_out], out_s[n_out], out_t[n_out] = lo - 1, stat, threshold
            n_out += 1
    return lo, n_out


@_jit_unchecked
def adwin_tick(f: F64, i: I64) -> bool:
    """Run the single values that complete the next test (``clock`` minus the tick of them,
    in the slots from ``ADWIN_PENDING``, the newest first) through ``adwin_step``; True if the
    test fired, its statistic and threshold then in the slots from ``ADWIN_OUT``."""
    s = 2 * ADWIN_LEVELS * (i[ADWIN_MAX_BUCKETS] + 1)
    start = s + ADWIN_PENDING
    x = f[start : start + i[ADWIN_CLOCK] - i[ADWIN_TICK]][::-1]  # filled from the end
    fired, stat, threshold = adwin_step(x, 0, x.size, f, i)[1:]
    if fired:
        f[s + ADWIN_OUT], f[s + ADWIN_OUT + 1] = stat, threshold
    return fired


def adwin_buckets(f: F64, i: I64) -> tuple[F64, F64]:
    """Totals and variances as River lays them out: row by row, oldest bucket first, zeros
    after the last (the rings unrolled; the state_dict's form)."""
    b = int(i[ADWIN_MAX_BUCKETS]) + 1
    h = ADWIN_LEVELS * b
    k = np.arange(b)
    slot = (i[ADWIN_START : ADWIN_START + ADWIN_LEVELS, None] + k) % b
    slot += b * np.arange(ADWIN_LEVELS)[:, None]
    used = k < i[:ADWIN_LEVELS, None]
    return np.where(used, f[:h][slot], 0.0), np.where(used, f[h : 2 * h][slot], 0.0)


# -------------------------------------------------------------------------------------- HDDM_W

# state layout: 5 samples (ewma, is_init, ibc) for total, s1_incr, s2_incr, s1_decr, s2_decr,
# then incr_cut, decr_cut, in_warning
HDDMW_SIZE = 18


@_jit
def hddmw_reset(s: F64) -> None:
    for j in range(5):
        s[3 * j] = 0.0
        s[3 * j + 1] = 0.0
        s[3 * j + 2] = 1.0
    s[15] = np.inf
    s[16] = -np.inf
    s[17] = 0.0


@_jit
def _sample_update(s: F64, j: int, x: float, lam: float) -> None:
    b = 3 * j
    s[b] = x if s[b + 1] == 0.0 else lam * x + (1.0 - lam) * s[b]
    s[b + 1] = 1.0
    s[b + 2] = lam * lam + (1.0 - lam) ** 2 * s[b + 2]


@_jit
def _changed(s: F64, a: int, b: int, log_inv_conf: float) -> tuple[bool, float, float]:
    if s[3 * a + 1] == 0.0 or s[3 * b + 1] == 0.0:
        return False, 0.0, 0.0
    bound = math.sqrt((s[3 * a + 2] + s[3 * b + 2]) * log_inv_conf / 2.0)
    diff = s[3 * b] - s[3 * a]
    return diff > bound, diff, bound


@_jit
def _copy_total(s: F64, j: int) -> None:
    s[3 * j] = s[0]
    s[3 * j + 1] = s[1]
    s[3 * j + 2] = s[2]


@_jit
def _clear(s: F64, j: int) -> None:
    s[3 * j] = 0.0
    s[3 * j + 1] = 0.0
    s[3 * j + 2] = 1.0


@_jit
def hddmw_kernel(
    x: F64,
    s: F64,
    lam: float,
    log_d: float,
    log_w: float,
    two_sided: bool,
    out_i: I64,
    out_s: F64,
    out_t: F64,
    out_k: I64,
) -> tuple[int, int]:
    """River's HDDM_W; ``log_d``/``log_w`` are ln(1/confidence) for drift and warning."""
    n_out = 0
    for t in range(x.size):
        v = x[t]
        _sample_update(s, 0, v, lam)
        eps = math.sqrt(s[2] * log_d / 2.0)
        if s[0] + eps < s[15]:
            s[15] = s[0] + eps
            _copy_total(s, 1)
            _clear(s, 2)
        else:
            _sample_update(s, 2, v, lam)
        drift, stat, thr = _changed(s, 1, 2, log_d)
        warn, wst, wth = False, 0.0, 0.0
        if not drift:
            warn, wst, wth = _changed(s, 1, 2, log_w)
        if s[0] - eps > s[16]:
            s[16] = s[0] - eps
            _copy_total(s, 3)
            _clear(s, 4)
        else:
            _sample_update(s, 4, v, lam)
        if two_sided and not drift:
            d2, st2, th2 = _changed(s, 4, 3, log_d)
            if d2:
                drift, stat, thr = True, st2, th2
            elif not warn:
                warn, wst, wth = _changed(s, 4, 3, log_w)
        if drift:
            out_i[n_out], out_s[n_out], out_t[n_out], out_k[n_out] = t, stat, thr, 1
            n_out += 1
            hddmw_reset(s)
        else:
            if warn and s[17] == 0.0:
                out_i[n_out], out_s[n_out], out_t[n_out], out_k[n_out] = t, wst, wth, 0
                n_out += 1
            s[17] = 1.0 if warn else 0.0
        if n_out >= out_i.size - 1:
            return t + 1, n_out
    return x.size, n_out


# --------------------------------------------------------------------------------------- KSWIN


@_jit
def _mt_next(mt: I64, pos: I64) -> int:
    """MT19937 genrand_uint32, bit-identical to CPython's ``random`` (state in int64 slots)."""
    if pos[0] >= 624:
        for kk in range(624):
            y = (mt[kk] & 0x80000000) | (mt[(kk + 1) % 624] & 0x7FFFFFFF)
            nxt = mt[(kk + 397) % 624] ^ (y >> 1)
            if y & 1:
                nxt ^= 0x9908B0DF
            mt[kk] = nxt
        pos[0] = 0
    y = mt[pos[0]]
    pos[0] += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    y ^= y >> 18
    return int(y & 0xFFFFFFFF)


@_jit
def _randbelow(n: int, mt: I64, pos: I64) -> int:
    k = 0
    while (1 << k) <= n:
        k += 1
    r = _mt_next(mt, pos) >> (32 - k)
    while r >= n:
        r = _mt_next(mt, pos) >> (32 - k)
    return r


@_jit
def kswin_kernel(
    x: F64,
    window: F64,
    ints: I64,
    mt: I64,
    pos: I64,
    mt0: I64,
    stat_size: int,
    k_crit: int,
    use_pool: bool,
    out_i: I64,
    out_s: F64,
) -> tuple[int, int]:
    """River's KSWIN with CPython's sampling; ``ints`` = [values in window, next slot].

    One compiled loop on purpose: the ring update, the sampling (CPython's draw order) and the KS
    statistic share scratch arrays allocated once; split, the hot path would gain calls.
    """
    w = window.size
    m = w - stat_size
    pool = np.empty(m, np.int64)
    chosen = np.zeros(m, np.bool_)
    a = np.empty(stat_size)
    b = np.empty(stat_size)
    n_out = 0
    for t in range(x.size):
        window[ints[1]] = x[t]
        ints[1] = (ints[1] + 1) % w
        if ints[0] < w:
            ints[0] += 1
        if ints[0] < w:
            continue
        oldest = ints[1]  # the ring is full: the next slot holds the oldest value
        if use_pool:
            for i in range(m):
                pool[i] = i
            for i in range(stat_size):
                j = _randbelow(m - i, mt, pos)
                a[i] = window[(oldest + pool[j]) % w]
                pool[j] = pool[m - i - 1]
        else:
            chosen[:] = False
            for i in range(stat_size):
                j = _randbelow(m, mt, pos)
                while chosen[j]:
                    j = _randbelow(m, mt, pos)
                chosen[j] = True
                a[i] = window[(oldest + j) % w]
        for i in range(stat_size):
            b[i] = window[(oldest + m + i) % w]
        a.sort()
        b.sort()
        ia, ib, d = 0, 0, 0
        while ia < stat_size and ib < stat_size:
            v = min(a[ia], b[ib])
            while ia < stat_size and a[ia] == v:
                ia += 1
            while ib < stat_size and b[ib] == v:
                ib += 1
            d = max(d, abs(ia - ib))
        if d >= k_crit:
            out_i[n_out] = t
            out_s[n_out] = d / stat_size
            n_out += 1
            ints[0] = 0
            ints[1] = 0
            window[:] = 0.0
            mt[:] = mt0
            pos[0] = 624
            if n_out == out_i.size:
                return t + 1, n_out
    return x.size, n_out


# --------------------------------------------------------------------------------------- CUSUM


@_jit
def cusum_kernel(
    x: F64, mu: float, sd: float, k: float, h: float, up: bool, down: bool, st: F64
) -> tuple[int, float]:
    """The CUSUM recursion on ``st`` = [S⁺, S⁻, ΣA⁺, ΣA⁻]; (index, statistic) of the first
    crossing of ``h``, or (-1, 0.0). The scalar path in ``cusum.py`` repeats these operations
    in this order, so one value at a time and a batch agree to the last bit."""
    for t in range(x.size):
        z = (x[t] - mu) / sd
        ip = z - k
        im = -z - k
        sp = st[0] + ip
        sp = sp if sp > 0.0 else 0.0
        sm = st[1] + im
        sm = sm if sm > 0.0 else 0.0
        a = sp if up else 0.0
        b = sm if down else 0.0
        stat = a if a >= b else b
        if stat > h:
            return t, stat
        st[0] = sp
        st[1] = sm
        st[2] += ip
        st[3] += im
    return -1, 0.0
