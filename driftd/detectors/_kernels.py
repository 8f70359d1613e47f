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


@_jit
def adwin_reset(totals: F64, variances: F64, counts: I64, fs: F64, ints: I64) -> None:
    totals[:] = 0.0
    variances[:] = 0.0
    counts[:] = 0
    fs[:] = 0.0  # total, variance, width
    ints[0] = 0  # tick modulo clock
    ints[1] = 1  # rows in use


@_jit
def adwin_kernel(
    x: F64,
    totals: F64,
    variances: F64,
    counts: I64,
    fs: F64,
    ints: I64,
    delta: float,
    clock: int,
    max_buckets: int,
    min_len: float,
    grace: float,
    out_i: I64,
    out_s: F64,
    out_t: F64,
) -> tuple[int, int]:
    """River's AdaptiveWindowing, resetting completely after a drift as River 0.26 does.

    One compiled loop on purpose: insert, bucket compression and cut search share the state per
    value; split, the hot path would gain calls and River's operation order would be harder to see.
    """
    n_out = 0
    for t in range(x.size):
        v = x[t]
        # insert into row 0 with the same operation order as River
        totals[0, counts[0]] = v
        variances[0, counts[0]] = 0.0
        counts[0] += 1
        fs[2] += 1.0
        inc = 0.0
        if fs[2] > 1.0:
            dv = v - fs[0] / (fs[2] - 1.0)
            inc = (fs[2] - 1.0) * dv * dv / fs[2]
        fs[1] += inc
        fs[0] += v
        idx = 0
        while counts[idx] == max_buckets + 1:
            n1 = float(1 << idx)
            t0, t1 = totals[idx, 0], totals[idx, 1]
            mu1, mu2 = t0 / n1, t1 / n1
            v12 = variances[idx, 0] + variances[idx, 1] + n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)
            if idx + 1 >= ints[1]:
                ints[1] = idx + 2
            totals[idx + 1, counts[idx + 1]] = t0 + t1
            variances[idx + 1, counts[idx + 1]] = v12
            counts[idx + 1] += 1
            for k in range(counts[idx] - 2):
                totals[idx, k] = totals[idx, k + 2]
                variances[idx, k] = variances[idx, k + 2]
            for k in range(counts[idx] - 2, counts[idx]):
                totals[idx, k] = 0.0
                variances[idx, k] = 0.0
            counts[idx] -= 2
            if counts[idx + 1] <= max_buckets:
                break
            idx += 1
        ints[0] += 1  # River's tick, kept modulo clock (a division per value is dear)
        if ints[0] < clock:
            continue
        ints[0] = 0
        if fs[2] <= grace:
            continue
        width, total = fs[2], fs[0]
        n0, n1w, u0, u1 = 0.0, width, 0.0, total
        found = False
        dp = math.log(2.0 * math.log(width) / delta)  # River recomputes it per split; same value
        var_w = fs[1] / width
        for row in range(ints[1] - 1, -1, -1):
            size = float(1 << row)
            for k in range(counts[row]):
                n0 += size
                n1w -= size
                u0 += totals[row, k]
                u1 -= totals[row, k]
                if row == 0 and k == counts[row] - 1:
                    break
                if n1w >= min_len and n0 >= min_len:
                    # a division-free necessary condition for |dm| > ε >= 2/3·dp·m, with a
                    # margin far above rounding, so the exact test below decides every case
                    ra, rb = n0 - min_len + 1.0, n1w - min_len + 1.0
                    lhs = abs(u0 * n1w - u1 * n0) * ra * rb
                    if lhs < 0.999 * (2.0 / 3.0 * dp) * (ra + rb) * n0 * n1w:
                        continue
                    dm = abs((u0 / n0) - (u1 / n1w))
                    m = 1.0 / ra + 1.0 / rb
                    eps = math.sqrt(2.0 * m * var_w * dp) + 2.0 / 3.0 * dp * m
                    if dm > eps:
                        out_i[n_out] = t
                        out_s[n_out] = dm
                        out_t[n_out] = eps
                        found = True
                        break
            if found:
                break
        if found:
            n_out += 1
            adwin_reset(totals, variances, counts, fs, ints)
            if n_out == out_i.size:
                return t + 1, n_out
    return x.size, n_out


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
