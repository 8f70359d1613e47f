"""The champion's training snapshot as the window checks' reference (``reference = "champion"``).

The leader asks, at most every ``every_s``, which version holds each model's ``champion``
alias; when it changed, it loads the training split of the snapshot that version's run was
trained on (``registry.lineage``: version → run → dataset URI) and hands its rows to the
brain, which switches the reference of every ``champion`` check and records it by label
(``champion:v7:1a2b3c4d``: version and dataset digest). Only local (``file://``) snapshots
are read here. A model without a champion, or whose champion has no recorded dataset, keeps
what it has (nothing at first: its windows close untested), and says so once in the log.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from driftd.config import ModelSettings
from driftd.daemon.checks import ModelChecks
from driftd.daemon.sample import Sample
from driftd.daemon.streams import SEGMENT, category_keys
from driftd.errors import DriftdError
from driftd.registry.registry import Registry
from driftd.retrain.snapshot import TrainingArrays, load_snapshot

log = logging.getLogger("driftd.references")

Reference = tuple[str, Sample]  # label, rows (values in the model's check columns)


def snapshot_rows(arrays: TrainingArrays, columns: Sequence[str]) -> Sample:
    """A split's rows as the window checks see events: numeric values, categories by their
    stable keys (missing: NaN), NaN for features (or the segment) the snapshot lacks; each row
    gets a seeded pseudo-random key, so the reference sample is uniform and reproducible."""
    n = len(arrays.ts)
    out = np.full((n, len(columns)), np.nan)
    for j, name in enumerate(columns):
        if name == SEGMENT:
            continue
        if name in arrays.numeric_names:
            out[:, j] = arrays.numeric[:, arrays.numeric_names.index(name)]
        elif name in arrays.categorical_names:
            k = arrays.categorical_names.index(name)
            codes = arrays.categorical[:, k]
            keys = category_keys(arrays.vocabularies[k])
            known = codes >= 0
            out[known, j] = keys[codes[known]]
    row_keys = np.random.default_rng(n).integers(0, 2**32, n, dtype=np.uint32)
    return Sample(row_keys, np.asarray(arrays.ts, np.float64), out)


def local_path(uri: str) -> Path | None:
    """The path of a ``file://`` URI or a plain path; None for a remote URI."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else uri)
    return None


class ChampionReferences:
    """Each model's champion reference, looked up at most every ``every_s`` seconds."""

    def __init__(
        self,
        registry: Registry,
        models: Mapping[str, ModelSettings],
        every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.columns = {
            name: ModelChecks(name, m).columns
            for name, m in models.items()
            if any(c.reference == "champion" for c in m.checks)
        }
        self.every_s, self.clock = every_s, clock
        self._next = -math.inf
        self._cache: dict[str, Reference] = {}
        self._said: set[tuple[str, str]] = set()

    def __call__(self) -> dict[str, Reference]:
        """The references known now (cached between lookups)."""
        if self.columns and self.clock() >= self._next:
            self._next = self.clock() + self.every_s
            for model, columns in self.columns.items():
                try:
                    got = self._lookup(model, columns)
                except (DriftdError, OSError, ValueError, KeyError) as exc:
                    self._say(model, f"champion reference not loaded: {exc}")
                    continue
                if got is not None:
                    self._cache[model] = got
        return dict(self._cache)

    def _lookup(self, model: str, columns: Sequence[str]) -> Reference | None:
        node = self.registry.lineage(f"models:/{model}@champion", depth=0)
        version = node["version"]["version"]
        ds = node.get("dataset")
        if ds is None:
            self._say(model, f"champion v{version} has no recorded dataset: no reference")
            return None
        label = f"champion:v{version}:{ds['sha256'][:8]}"
        held = self._cache.get(model)
        if held is not None and held[0] == label:
            return held
        path = local_path(str(ds["uri"]))
        if path is None:
            self._say(model, f"champion v{version}'s dataset {ds['uri']} is not a local path")
            return None
        rows = snapshot_rows(load_snapshot(path).arrays("train"), columns)
        log.info("champion reference loaded", extra={"model": model, "reference": label})
        return label, rows

    def _say(self, model: str, what: str) -> None:
        if (model, what) not in self._said:
            self._said.add((model, what))
            log.warning(what, extra={"model": model})
