"""Every family driftd exports says in its help what unit it counts in and what a restart does
to it: kept in the checkpoint, counted since the process started, read from the registry, or
recomputed. Checked on the families a built daemon describes (every collector it registers,
with a rollout configured) and on what a replay's scrape returns."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

import driftd.daemon.metrics
from driftd.config import load_settings
from driftd.daemon import app as app_mod
from driftd.daemon.metrics.kinds import KINDS, LIVE, PROCESS_LOCAL, UNITS
from driftd.sim import synth

SPEC = synth.StreamSpec(events=600, seed=3)
UNIT = re.compile(r"Unit: ([^.]+)\.")
COLLECTOR_MODULES = (
    *(
        f"driftd.daemon.metrics.{m.name}"
        for m in pkgutil.iter_modules(driftd.daemon.metrics.__path__)
    ),
    "driftd.daemon.incidents",
)


def config(tmp_path: Path) -> Path:
    """A replay of a small synthetic stream whose model has a rollout section (so the daemon
    registers every collector it has)."""
    stream = synth.generate(SPEC)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(ln + b"\n" for ln in stream.lines))
    cfg = tmp_path / "driftd.toml"
    toml = synth.config_toml(SPEC, events, tmp_path / "state")
    cfg.write_text(toml + f"\n[models.{SPEC.model}.rollout]\n")
    return cfg


def registered(registry: CollectorRegistry) -> list[Collector]:
    """The collectors on ``registry`` (prometheus_client keeps them in a private map)."""
    return list(registry._collector_to_names)


def described(app: app_mod.App) -> Iterator[tuple[str, str, str, tuple[str, ...]]]:
    """(name, type, help, label names as scraped, ``le`` aside) of every family the app's
    collectors describe. Families and instruments keep their label names in a private field;
    a state set adds one label named after the family."""
    for collector in registered(app.registry):
        describe = getattr(collector, "describe", None)
        assert describe is not None, f"{type(collector).__name__} cannot describe its families"
        for fam in describe():
            labels = getattr(fam, "_labelnames", None) or getattr(collector, "_labelnames", ())
            if fam.type == "stateset":
                labels = (*labels, fam.name)
            yield fam.name, fam.type, fam.documentation, tuple(labels)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[app_mod.App]:
    """A daemon built from ``config``, run to the end of its replay."""
    cfg = config(tmp_path_factory.mktemp("help"))
    application = app_mod.build(load_settings(cfg, env={}), serve_metrics=False)
    try:
        app_mod.run(application)
        yield application
    finally:
        application.close()


def problems(name: str, kind: str, doc: str) -> list[str]:
    """What is missing from a family's help: its unit, or what a restart does to it."""
    out = []
    units = UNIT.findall(doc)
    if len(units) != 1 or units[0] not in UNITS:
        out.append(f"{name}: help names no known unit (Unit: <one of kinds.UNITS>.): {doc!r}")
    kinds = [k for k in KINDS if k.strip() in doc]
    if len(kinds) > 1 or (not kinds and PROCESS_LOCAL not in doc):
        out.append(f"{name}: help does not say (once) whether it survives a restart: {doc!r}")
    if kind in ("counter", "histogram") and LIVE in kinds:
        out.append(f"{name}: a cumulative family must be kept, counted here or read: {doc!r}")
    return out


def test_every_collector_of_the_daemon_is_registered_by_a_built_app(app: app_mod.App) -> None:
    kinds = {type(c) for c in registered(app.registry)}
    for module_name in COLLECTOR_MODULES:
        module = importlib.import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module_name and Collector in cls.__mro__:
                assert cls in kinds, f"{module_name}.{name} is not registered by app.build()"


def test_every_described_family_names_its_unit_and_what_a_restart_does(
    app: app_mod.App,
) -> None:
    seen = {name for name, *_ in described(app)}
    assert len(seen) >= 50, sorted(seen)  # every collector's families, not a handful
    found = [p for name, kind, doc, _ in described(app) for p in problems(name, kind, doc)]
    assert not found, "\n".join(found)


def test_every_scraped_family_names_its_unit_and_what_a_restart_does(app: app_mod.App) -> None:
    families = list(text_string_to_metric_families(generate_latest(app.registry).decode()))
    assert {"driftd_events_consumed", "driftd_retrain_jobs", "driftd_leader"} <= {
        f.name for f in families
    }
    found = [p for f in families for p in problems(f.name, f.type, f.documentation)]
    assert not found, "\n".join(found)
