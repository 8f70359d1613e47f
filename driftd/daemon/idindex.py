"""An id -> ring position index in two numpy arrays: open addressing with linear probing.

The join store indexes millions of pending ids. A Python dict costs about 75 bytes per entry
there (its entry, its index slot and an int object for the value); this table costs 8 bytes
per slot (an int32 tag and an int32 position) at a load between 1/4 and 3/4, and every
operation is a handful of vectorized numpy passes per batch. Keys are Python's ``hash`` of
the id: it is cached in the str object and fast, and since the table is rebuilt from the ids
on restore, its per-process seed does not matter. The low bits of the hash pick the slot and
the high 32 bits are the tag that a probe compares; ids whose tags match are then compared
themselves, so a collision costs a probe, never a wrong join.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
Objects = npt.NDArray[np.object_]

EMPTY = -1
DELETED = -2
MAX_LOAD = 0.75  # live + deleted slots, before a rebuild
REBUILD_LOAD = 0.5  # at most this many live slots after one


def hashes(ids: Sequence[str]) -> I64:
    """The table keys of ids (Python's str hash: seeded per process, cached per str)."""
    return np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))


def _tags(keys: I64) -> npt.NDArray[np.int32]:
    return (keys >> 32).astype(np.int32)


def _capacity(live: int) -> int:
    cap = 16
    while live > REBUILD_LOAD * cap:
        cap *= 2
    return cap


class IdIndex:
    """Maps ids to positions (non-negative int32) in an external array of ids."""

    def __init__(self, capacity: int = 16) -> None:
        self._alloc(_capacity(int(capacity * REBUILD_LOAD)))

    def _alloc(self, cap: int) -> None:
        self._tags = np.zeros(cap, dtype=np.int32)
        self._vals = np.full(cap, EMPTY, dtype=np.int32)
        self._mask = cap - 1
        self._live = 0
        self._deleted = 0

    def __len__(self) -> int:
        return self._live

    @property
    def nbytes(self) -> int:
        """Bytes of the table's two arrays."""
        return int(self._tags.nbytes + self._vals.nbytes)

    def rebuild(self, keys: I64, positions: npt.NDArray[np.integer]) -> None:
        """Replace the contents with ``keys[i] -> positions[i]`` (positions unique)."""
        self._alloc(_capacity(len(keys)))
        self._put(keys, np.asarray(positions, dtype=np.int32))

    def shift(self, head: int, modulo: int) -> None:
        """Renumber every position p as ``(p - head) % modulo`` (a ring that was unrolled)."""
        live = self._vals >= 0
        self._vals[live] = (self._vals[live] - head) % modulo

    def find(self, keys: I64, ids: Sequence[str], stored: Objects) -> I64:
        """The position of each id (-1 when absent); ``stored[position]`` holds the ids."""
        n = len(keys)
        out = np.full(n, -1, dtype=np.int64)
        if not n or not self._live:
            return out
        wanted: Objects | None = None
        tags = _tags(keys)
        todo = np.arange(n)
        slot = keys & self._mask
        while len(todo):
            vals = self._vals[slot]
            hit = (vals >= 0) & (self._tags[slot] == tags[todo])
            if hit.any():
                if wanted is None:
                    wanted = np.empty(n, dtype=object)
                    wanted[:] = ids
                rows, pos = todo[hit], vals[hit]
                same = stored[pos] == wanted[rows]  # a hash collision probes on
                out[rows[same]] = pos[same]
                hit[np.flatnonzero(hit)[~same]] = False
            go_on = ~hit & (vals != EMPTY)
            todo = todo[go_on]
            slot = (slot[go_on] + 1) & self._mask
        return out

    def add(self, keys: I64, positions: npt.NDArray[np.integer], stored: Objects) -> None:
        """Insert ids known to be absent, at unique positions not in the table; ``stored``
        holds the ids of the entries already in it (by position)."""
        if self._live + self._deleted + len(keys) > MAX_LOAD * len(self._vals):
            self._grow(self._live + len(keys), stored)
        self._put(keys, np.asarray(positions, dtype=np.int32))

    def remove(self, keys: I64, positions: npt.NDArray[np.integer]) -> None:
        """Delete the entries ``keys[i] -> positions[i]`` (each must be present)."""
        pos = np.asarray(positions, dtype=np.int32)
        slot = keys & self._mask
        todo = np.arange(len(keys))
        while len(todo):
            vals = self._vals[slot]
            if (vals == EMPTY).any():
                raise KeyError("IdIndex.remove: an entry to remove is not in the table")
            found = vals == pos[todo]
            self._vals[slot[found]] = DELETED
            todo = todo[~found]
            slot = (slot[~found] + 1) & self._mask
        self._live -= len(keys)
        self._deleted += len(keys)
        if not self._live:  # a drained table starts clean: no probe crosses old deletions
            self._vals[:] = EMPTY
            self._deleted = 0

    def _grow(self, live: int, stored: Objects) -> None:
        """Re-insert the live entries into a table sized for ``live`` (drops deletions).

        The table keeps only tags, so the entries' hashes come again from their ids.
        """
        pos = self._vals[self._vals >= 0]
        self._alloc(_capacity(live))
        self._put(hashes(stored[pos].tolist()), pos)

    def _put(self, keys: I64, pos: npt.NDArray[np.int32]) -> None:
        """Linear probing for a batch: of the claimants of one free slot, one wins a round."""
        tags = _tags(keys)
        slot = keys & self._mask
        todo = np.arange(len(keys))
        while len(todo):
            free = np.flatnonzero(self._vals[slot] < 0)
            lost = np.ones(len(todo), dtype=np.bool_)
            if len(free):
                fs = slot[free]
                reused = self._vals[fs] == DELETED
                self._vals[fs] = pos[todo[free]]  # several claimants of a slot: one write stays
                won = self._vals[fs] == pos[todo[free]]  # positions are unique: one matches
                self._tags[fs[won]] = tags[todo[free[won]]]
                self._deleted -= int(np.count_nonzero(reused & won))
                self._live += int(np.count_nonzero(won))
                lost[free[won]] = False
            todo = todo[lost]
            slot = (slot[lost] + 1) & self._mask
