"""The reference model server: registry versions behind live traffic weights, plus labels.

``ModelServer`` routes each request to a version drawn from the live weights (set by
``apply``, i.e. by the Deployment events a rollout publishes), scores it with that version's
model (batched per version), and emits ``Prediction`` records with a latency and
an error flag. ``Regression`` injects faults into one version (slower, failing, wrong), so a
canary has something to catch. ``LabelEmitter`` releases each request's true label
``delay_s`` later, for a ``fraction`` of requests. ``run`` drives it all in event time (no
sleeping: the demo and tests); ``run_realtime`` holds a request rate on the wall clock (the CLI).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from driftd.contracts.events import Deployment, Label, Prediction
from driftd.retrain.snapshot import TrainingArrays
from driftd.sim.world import World

if TYPE_CHECKING:
    from driftd.registry.registry import Registry

Scorer = Callable[[TrainingArrays], npt.NDArray[np.float64]]
Tick = tuple[float, list[Prediction], list[Label]]


class Sink(Protocol):
    """Where served events go (see :mod:`driftd.sim.sinks`)."""

    def write(self, predictions: list[Prediction], labels: list[Label]) -> None:
        """Send a batch of events."""
        ...


@dataclass(frozen=True)
class Regression:
    """Faults injected into one version: latency multiplied, extra errors, flipped answers."""

    latency_factor: float = 1.0
    error_rate: float = 0.0
    flip_rate: float = 0.0

    def __post_init__(self) -> None:
        if not (self.latency_factor > 0 and math.isfinite(self.latency_factor)):
            raise ValueError(f"latency factor must be > 0, got {self.latency_factor}")
        for name in ("error_rate", "flip_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")

    @classmethod
    def parse(cls, spec: str) -> tuple[str, Regression]:
        """``VERSION:latency=2.0,errors=0.05,flip=0.1`` (any subset of the keys)."""
        version, sep, rest = spec.partition(":")
        if not sep or not version.strip():
            raise ValueError(f"expected VERSION:key=value,..., got {spec!r}")
        keys = {"latency": "latency_factor", "errors": "error_rate", "flip": "flip_rate"}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, raw = part.partition("=")
            if not eq or key.strip() not in keys:
                raise ValueError(f"unknown regression setting {part!r}; known: {', '.join(keys)}")
            try:
                values[keys[key.strip()]] = float(raw)
            except ValueError:
                raise ValueError(f"{key.strip()} must be a number, got {raw!r}") from None
        return version.strip(), cls(**values)


@dataclass
class LabelEmitter:
    """Holds (due time, label) for a ``fraction`` of predictions; ``due(t)`` releases them."""

    delay_s: float = 30.0
    fraction: float = 1.0
    seed: int = 0
    _heap: list[tuple[float, int, Label]] = field(default_factory=list, repr=False)
    _seq: int = field(default=0, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.delay_s < 0 or not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"need delay_s >= 0 and fraction in [0, 1], got {self!r}")
        self._rng = np.random.default_rng(self.seed)

    def offer(self, predictions: list[Prediction], truth: Iterable[int]) -> None:
        """Schedule the true labels of ``predictions`` (the chosen fraction of them)."""
        keep = self._rng.random(len(predictions)) < self.fraction
        for p, y, k in zip(predictions, truth, keep.tolist(), strict=True):
            if k:
                lab = Label(id=p.id, model=p.model, ts=p.ts + self.delay_s, label=int(y))
                heapq.heappush(self._heap, (lab.ts, self._seq, lab))
                self._seq += 1

    def due(self, t: float) -> list[Label]:
        """Labels whose time (prediction ts + delay) is <= ``t``, each once, in time order."""
        out = []
        while self._heap and self._heap[0][0] <= t:
            out.append(heapq.heappop(self._heap)[2])
        return out

    @property
    def pending(self) -> int:
        """Labels scheduled but not yet released."""
        return len(self._heap)


class ModelServer:
    """Answers requests from the world with the versions the live weights name."""

    def __init__(
        self,
        world: World,
        registry: Registry | None,
        model: str,
        clock: Callable[[], float] = time.time,
        *,
        seed: int = 0,
        emitter: LabelEmitter | None = None,
        base_latency_ms: float = 20.0,
        latency_sigma: float = 0.5,
        base_error_rate: float = 0.0,
        id_prefix: str | None = None,
    ) -> None:
        self.world, self.registry, self.model, self.clock = world, registry, model, clock
        self.emitter = emitter
        self.base_latency_ms = base_latency_ms
        self.latency_sigma = latency_sigma
        self.base_error_rate = base_error_rate
        self.id_prefix = id_prefix if id_prefix is not None else f"sim-{seed}"
        self.versions: dict[str, Scorer] = {}
        self.latency_ms: dict[str, float] = {}
        self.regressions: dict[str, Regression] = {}
        self.weights: dict[str, float] = {}
        self.served: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
        self._seq = 0

    # -- versions and weights -------------------------------------------------------------

    def add(self, version: str | int, scorer: Scorer, base_latency_ms: float | None = None) -> str:
        """Serve ``version`` with ``scorer`` (P(class 1) per row); returns the version's name."""
        name = str(version)
        self.versions[name] = scorer
        self.latency_ms[name] = base_latency_ms or self.base_latency_ms
        return name

    def load(self, version: str | int) -> str:
        """Load a registered version's ``file://`` artifact (once; later calls hit the cache)."""
        name = str(version)
        if name in self.versions:
            return name
        if self.registry is None:
            raise ValueError(f"version {name} is not loaded and there is no registry to load it")
        from driftd.retrain import tabular

        info = self.registry.get_version(self.model, int(name))
        # Checked again where it is read: schemes, roots (symlinks resolved), traversal.
        net, _ = tabular.load_model(self.registry.artifacts.local_path(info.artifact_uri))

        def score(arrays: TrainingArrays) -> npt.NDArray[np.float64]:
            return tabular.predict(net, arrays)

        return self.add(name, score)

    def ensure(self, versions: Iterable[str | int]) -> None:
        """Load every version in ``versions`` that is not loaded yet."""
        for v in versions:
            self.load(v)

    def apply(self, deployment: Deployment | Mapping[str, float]) -> None:
        """Make ``deployment``'s weights live: they must name loaded versions and sum to 1."""
        if isinstance(deployment, Deployment):
            if deployment.model != self.model:
                raise ValueError(f"deployment is for {deployment.model!r}, not {self.model!r}")
            weights = dict(deployment.weights)
        else:
            weights = {str(k): float(v) for k, v in deployment.items()}
        unknown = sorted(set(weights) - set(self.versions))
        if unknown:
            raise ValueError(
                f"weights name versions that are not loaded: {', '.join(unknown)} "
                f"(loaded: {', '.join(sorted(self.versions)) or 'none'})"
            )
        bad = {v: w for v, w in weights.items() if not 0.0 <= w <= 1.0}
        if bad:
            raise ValueError(f"weights must lie in [0, 1], got {bad}")
        total = math.fsum(weights.values())
        if not weights or abs(total - 1.0) > 1e-9:
            raise ValueError(f"weights must be non-empty and sum to 1, got sum {total!r}")
        self.weights = weights

    def regress(self, version: str | int, regression: Regression | None) -> None:
        """Inject (or, with None, clear) faults for one version."""
        name = str(version)
        if regression is None:
            self.regressions.pop(name, None)
        else:
            self.regressions[name] = regression

    # -- serving --------------------------------------------------------------------------

    def serve(self, n: int, t: float | npt.NDArray[np.float64]) -> list[Prediction]:
        """Answer ``n`` requests at event time(s) ``t``; their true labels go to the emitter."""
        if not self.weights:
            raise RuntimeError("no live weights: apply() a deployment first")
        if n <= 0:
            return []
        ts = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)).copy()
        world, rng = self.world, self._rng
        x = world.features(n, ts)
        truth = world.labels(x, ts)
        names = list(self.weights)
        p = np.array([self.weights[v] for v in names])
        route = rng.choice(len(names), size=n, p=p / p.sum())
        score = np.empty(n)
        latency = np.empty(n)
        failed = np.zeros(n, dtype=bool)
        for j, version in enumerate(names):
            idx = np.flatnonzero(route == j)
            if not len(idx):
                continue
            reg = self.regressions.get(version, Regression())
            s = np.clip(self.versions[version](world.arrays(x[idx], ts[idx])), 0.0, 1.0)
            flip = rng.random(len(idx)) < reg.flip_rate
            score[idx] = np.where(flip, 1.0 - s, s)
            base = self.latency_ms[version] * reg.latency_factor
            latency[idx] = rng.lognormal(math.log(base), self.latency_sigma, len(idx))
            err_p = 1.0 - (1.0 - self.base_error_rate) * (1.0 - reg.error_rate)
            failed[idx] = rng.random(len(idx)) < err_p
            self.served[version] = self.served.get(version, 0) + len(idx)
            self.errors[version] = self.errors.get(version, 0) + int(failed[idx].sum())
        feats = world.feature_dicts(x)
        start, self._seq = self._seq, self._seq + n
        out = [
            Prediction(
                id=f"{self.id_prefix}-{start + i}",
                model=self.model,
                version=names[r],
                ts=tsi,
                features=f,
                prediction=int(s > 0.5),
                score=round(s, 6),
                latency_ms=round(lat, 3),
                error="injected" if e else None,
            )
            for i, (r, tsi, f, s, lat, e) in enumerate(
                zip(
                    route.tolist(),
                    ts.tolist(),
                    feats,
                    score.tolist(),
                    latency.tolist(),
                    failed.tolist(),
                    strict=True,
                )
            )
        ]
        if self.emitter is not None:
            self.emitter.offer(out, truth.tolist())
        return out

    def run(
        self, duration_s: float, rate_per_s: float, start_t: float, step_s: float = 1.0
    ) -> Iterator[Tick]:
        """Event-time simulation: per step, (step end, predictions, labels now due).

        Requests are spread evenly within each step; the count keeps its fractional carry, so
        ``duration_s * rate_per_s`` requests are served in all. Weights and regressions may be
        changed between steps (the generator is lazy). Nothing sleeps.
        """
        if step_s <= 0 or rate_per_s < 0:
            raise ValueError("step_s must be > 0 and rate_per_s >= 0")
        steps = math.ceil(duration_s / step_s - 1e-9)
        done = 0
        for k in range(steps):
            t0 = start_t + k * step_s
            t1 = min(start_t + (k + 1) * step_s, start_t + duration_s)
            n = math.floor((t1 - start_t) * rate_per_s + 1e-9) - done
            done += n
            ts = (t0 + (np.arange(n) + 0.5) * ((t1 - t0) / max(n, 1))).astype(np.float64)
            preds = self.serve(n, ts)
            labels = self.emitter.due(t1) if self.emitter is not None else []
            yield t1, preds, labels

    def run_realtime(
        self,
        sink: Sink,
        rate_per_s: float,
        duration_s: float | None = None,
        *,
        tick_s: float = 0.1,
        poll: Callable[[], None] | None = None,
        status: Callable[[float], None] | None = None,
        status_every_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Serve at ``rate_per_s`` on ``self.clock`` until ``duration_s`` passes or ``stop()``;
        ``poll`` runs each tick (e.g. to apply control-topic deployments), ``status`` every
        ``status_every_s``. Returns the number of requests served."""
        start = self.clock()
        done, next_status = 0, start + status_every_s
        while not stop():
            now = self.clock()
            elapsed = now - start
            if duration_s is not None and elapsed >= duration_s:
                break
            if poll is not None:
                poll()
            n = math.floor(elapsed * rate_per_s) - done
            preds = self.serve(n, now) if n > 0 else []
            done += len(preds)
            labels = self.emitter.due(now) if self.emitter is not None else []
            if preds or labels:
                sink.write(preds, labels)
            if status is not None and now >= next_status:
                status(elapsed)
                next_status = now + status_every_s
            sleep(max(0.0, start + elapsed + tick_s - self.clock()))
        return done
