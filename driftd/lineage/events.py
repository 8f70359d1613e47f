"""The OpenLineage RunEvents of one retrain, built from plain values (no I/O).

- job: ``<namespace>`` / ``retrain.<model>``;
- run: a UUID derived from driftd's registry run id (``uuid5``: the same driftd run always
  maps to the same OpenLineage run, and OpenLineage requires a UUID);
- input: the training snapshot (namespace ``file``, name its path) with the standard
  ``version`` facet set to its content hash, ``inputStatistics`` (rows), and a
  ``driftd_snapshot`` facet (sha256, rows in all and per split);
- output (COMPLETE only): the registered model version, ``<registry namespace>`` /
  ``models/<model>/<version>``, with ``version`` and a ``driftd_model_version`` facet;
- FAIL carries the standard ``errorMessage`` facet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated.base import DatasetFacet
from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.input_statistics_input_dataset import (
    InputStatisticsInputDatasetFacet,
)
from openlineage.client.generated.job_type_job import JobTypeJobFacet

PRODUCER = "https://github.com/driftd/driftd"
FACET_SCHEMA = "https://driftd.dev/spec/facets/1-0-0/{}.json#/$defs/{}"
# The namespace of driftd run ids inside uuid5: fixed forever (it defines the mapping).
RUN_NAMESPACE = uuid.UUID("6f1d6d1e-4a8e-5b7c-9d1a-2c7e0b9f3a11")


@attr.define
class SnapshotDatasetFacet(DatasetFacet):
    """driftd's snapshot: its content hash (over every split's rows) and row counts."""

    sha256: str
    rowCount: int
    splits: dict[str, int] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA.format("SnapshotDatasetFacet", "SnapshotDatasetFacet")


@attr.define
class ModelVersionDatasetFacet(DatasetFacet):
    """The registered model version: its artifact's hash and whether it passed the gate."""

    model: str
    version: int
    artifactSha256: str
    promoted: bool

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA.format("ModelVersionDatasetFacet", "ModelVersionDatasetFacet")


@dataclass(frozen=True)
class SnapshotRef:
    """What the input dataset says about a training snapshot."""

    path: str
    sha256: str
    row_count: int
    splits: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionRef:
    """What the output dataset says about the registered model version."""

    version: int
    artifact_sha256: str
    promoted: bool


def run_uuid(run_id: str) -> str:
    """The OpenLineage run id of a driftd run id (a UUID, stable for that run)."""
    return str(uuid.uuid5(RUN_NAMESPACE, run_id))


def event_time(ts: float) -> str:
    """``ts`` as OpenLineage's eventTime (ISO 8601 with a UTC offset)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


def job_name(model: str) -> str:
    """The OpenLineage job name of ``model``'s retrains."""
    return f"retrain.{model}"


def _job(namespace: str, model: str) -> Job:
    kind = JobTypeJobFacet(processingType="BATCH", integration="DRIFTD", jobType="RETRAIN")
    return Job(namespace=namespace, name=job_name(model), facets={"jobType": kind})


def _input(snap: SnapshotRef) -> InputDataset:
    return InputDataset(
        namespace="file",
        name=snap.path,
        facets={
            "version": DatasetVersionDatasetFacet(datasetVersion=snap.sha256),
            "driftd_snapshot": SnapshotDatasetFacet(
                sha256=snap.sha256, rowCount=snap.row_count, splits=dict(snap.splits)
            ),
        },
        inputFacets={"inputStatistics": InputStatisticsInputDatasetFacet(rowCount=snap.row_count)},
    )


def _output(registry_namespace: str, model: str, ver: VersionRef) -> OutputDataset:
    return OutputDataset(
        namespace=registry_namespace,
        name=f"models/{model}/{ver.version}",
        facets={
            "version": DatasetVersionDatasetFacet(datasetVersion=str(ver.version)),
            "driftd_model_version": ModelVersionDatasetFacet(
                model=model,
                version=ver.version,
                artifactSha256=ver.artifact_sha256,
                promoted=ver.promoted,
            ),
        },
    )


def start(namespace: str, model: str, run_id: str, snap: SnapshotRef, ts: float) -> RunEvent:
    """The START event of a retrain run."""
    return RunEvent(
        eventType=RunState.START,
        eventTime=event_time(ts),
        producer=PRODUCER,
        run=Run(runId=run_uuid(run_id)),
        job=_job(namespace, model),
        inputs=[_input(snap)],
    )


def complete(
    namespace: str,
    registry_namespace: str,
    model: str,
    run_id: str,
    snap: SnapshotRef,
    ver: VersionRef,
    ts: float,
) -> RunEvent:
    """The COMPLETE event: the snapshot in, the registered model version out."""
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=event_time(ts),
        producer=PRODUCER,
        run=Run(runId=run_uuid(run_id)),
        job=_job(namespace, model),
        inputs=[_input(snap)],
        outputs=[_output(registry_namespace, model, ver)],
    )


def fail(
    namespace: str, model: str, run_id: str, snap: SnapshotRef, error: BaseException, ts: float
) -> RunEvent:
    """The FAIL event, with the exception as the ``errorMessage`` facet."""
    message = f"{type(error).__name__}: {error}"[:2000]
    facet = ErrorMessageRunFacet(message=message, programmingLanguage="python")
    return RunEvent(
        eventType=RunState.FAIL,
        eventTime=event_time(ts),
        producer=PRODUCER,
        run=Run(runId=run_uuid(run_id), facets={"errorMessage": facet}),
        job=_job(namespace, model),
        inputs=[_input(snap)],
    )
