"""Sending a retrain's OpenLineage events: the client's HTTP or file transport, never fatal.

``RetrainLineage`` is what the retrain path calls (``start``, ``complete``, ``fail``); it reads
driftd's snapshot and version through small protocols, builds the events with
``driftd.lineage.events`` and hands them to the transport. A transport error is logged with
the event type and run, and the retrain goes on: lineage is an observer, not a dependency.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from openlineage.client.event_v2 import RunEvent
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)
from openlineage.client.transport.transport import Transport

from driftd.config.lineage import LineageSettings
from driftd.lineage import events

log = logging.getLogger("driftd.lineage")


class SnapshotLike(Protocol):
    """What lineage reads of a training snapshot (``driftd.retrain.snapshot.Snapshot``)."""

    @property
    def path(self) -> Path: ...

    @property
    def manifest(self) -> Mapping[str, Any]: ...


class VersionLike(Protocol):
    """What lineage reads of a registered version (``driftd.registry.VersionInfo``)."""

    @property
    def version(self) -> int: ...

    @property
    def artifact_sha256(self) -> str: ...


def snapshot_ref(snap: SnapshotLike) -> events.SnapshotRef:
    """The input dataset's facts from a snapshot's manifest (no data is read)."""
    m = snap.manifest
    splits = {str(k): int(v["rows"]) for k, v in dict(m.get("splits", {})).items()}
    return events.SnapshotRef(
        str(snap.path.resolve()), str(m["sha256"]), int(m["row_count"]), splits
    )


def transport_from_settings(ls: LineageSettings) -> Transport | None:
    """The OpenLineage transport ``ls`` configures, or None when lineage is off."""
    if ls.file is not None:
        ls.file.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(ls.file), append=True))
    if ls.url is not None:
        auth: TokenProvider = (
            ApiKeyTokenProvider({"apiKey": ls.api_key.get_secret_value()})
            if ls.api_key is not None
            else TokenProvider({})
        )
        retry = {"total": 2, "backoff_factor": 0.5, "status_forcelist": [500, 502, 503, 504]}
        config = HttpConfig(
            url=ls.url, endpoint=ls.endpoint, timeout=ls.timeout_s, auth=auth, retry=retry
        )
        return HttpTransport(config)
    return None


class RetrainLineage:
    """Emits one retrain's START, then COMPLETE or FAIL, to ``transport`` (None: nowhere)."""

    def __init__(
        self,
        transport: Transport | None,
        namespace: str = "driftd",
        registry_namespace: str = "driftd://registry",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = transport
        self.namespace = namespace
        self.registry_namespace = registry_namespace
        self.clock = clock

    def start(self, model: str, run_id: str, snap: SnapshotLike) -> None:
        """The run began (after the registry opened it)."""
        ref = self._ref(snap)
        if ref is not None:
            self._emit(events.start(self.namespace, model, run_id, ref, self.clock()))

    def complete(
        self, model: str, run_id: str, snap: SnapshotLike, version: VersionLike, promoted: bool
    ) -> None:
        """The run finished and registered ``version``."""
        ref = self._ref(snap)
        if ref is None:
            return
        ver = events.VersionRef(int(version.version), str(version.artifact_sha256), bool(promoted))
        ev = events.complete(
            self.namespace, self.registry_namespace, model, run_id, ref, ver, self.clock()
        )
        self._emit(ev)

    def fail(self, model: str, run_id: str, snap: SnapshotLike, error: BaseException) -> None:
        """The run failed with ``error``."""
        ref = self._ref(snap)
        if ref is not None:
            self._emit(events.fail(self.namespace, model, run_id, ref, error, self.clock()))

    def _ref(self, snap: SnapshotLike) -> events.SnapshotRef | None:
        if self.transport is None:
            return None
        try:
            return snapshot_ref(snap)
        except (KeyError, TypeError, ValueError, OSError):
            log.exception("OpenLineage: unreadable snapshot manifest; no event sent")
            return None

    def _emit(self, event: RunEvent) -> None:
        if self.transport is None:
            return
        try:
            self.transport.emit(event)
        except Exception:
            log.exception(
                "OpenLineage: sending %s of run %s failed; the retrain goes on",
                getattr(event.eventType, "value", event.eventType),
                event.run.runId,
            )


def lineage_from_settings(ls: LineageSettings | None) -> RetrainLineage:
    """The emitter ``ls`` configures (one that sends nothing when lineage is off or unset)."""
    if ls is None or not ls.enabled:
        return RetrainLineage(None)
    try:
        transport = transport_from_settings(ls)
    except Exception:
        log.exception("OpenLineage: the transport could not be set up; lineage is off")
        transport = None
    return RetrainLineage(transport, ls.namespace, ls.registry_namespace)
