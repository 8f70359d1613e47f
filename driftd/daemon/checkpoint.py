"""Checkpoints in a SQL database: each partition's state blob and offsets, saved atomically.

One transaction per save replaces every given partition's row and blob chunks, and refuses
offsets that would move backwards. SQLite (WAL, synchronous=FULL) is the embedded default;
PostgreSQL is the production backend. The schema is managed by Alembic (``driftd db upgrade``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from driftd.daemon.abc import Checkpoint, Report
from driftd.db import (
    checkpoint_chunks,
    checkpoints,
    leader_state,
    reports,
    require_current,
    write_transaction,
)
from driftd.errors import CheckpointError, PartitionLost


def _finite(x: float) -> float:
    """An event time for a FLOAT column: -inf (nothing seen yet) is stored as -1e300."""
    return x if math.isfinite(x) else math.copysign(1e300, x)


def _unfinite(x: float) -> float:
    """The inverse of ``_finite``."""
    return math.copysign(math.inf, x) if abs(x) >= 1e300 else float(x)


class SqlCheckpointStore:
    """CheckpointStore on SQLAlchemy; the blob is split into chunks of ``chunk_bytes``."""

    def __init__(self, engine: Engine, chunk_bytes: int = 4 * 1024 * 1024) -> None:
        self.engine = engine
        self.chunk_bytes = chunk_bytes

    @classmethod
    def open(cls, engine: Engine, chunk_bytes: int = 4 * 1024 * 1024) -> SqlCheckpointStore:
        """A store on ``engine`` (it takes the engine over: ``close`` disposes of it) once its
        schema is current: an empty database gets the schema, an outdated one is refused with
        the command that upgrades it, and the engine is then disposed of."""
        try:
            require_current(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, chunk_bytes)

    def save(self, pipeline: str, cps: Sequence[Checkpoint]) -> None:
        """Save the given partitions in one transaction; offsets must not decrease, and each
        partition's stored sequence must be the one before (else ``PartitionLost``: another
        owner saved it since, and this owner's state is stale)."""
        if not cps:
            return
        try:
            with write_transaction(self.engine) as conn:
                lost = [cp.partition for cp in cps if not self._save_one(conn, pipeline, cp)]
                if lost:
                    raise PartitionLost(
                        f"partitions {lost} of {pipeline!r} were checkpointed by another owner "
                        "since this one took them; its state for them is stale",
                        lost,
                    )
        except CheckpointError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise CheckpointError(f"saving checkpoint of {pipeline!r} failed: {exc}") from exc

    def _save_one(self, conn: sa.Connection, pipeline: str, cp: Checkpoint) -> bool:
        """Write one partition's rows; False (nothing written) when another owner's
        checkpoint is there: the stored sequence is not the one before ``cp.seq``."""
        key = (checkpoints.c.pipeline == pipeline) & (checkpoints.c.partition == cp.partition)
        row = conn.execute(
            sa.select(checkpoints.c.offsets, checkpoints.c.seq).where(key).with_for_update()
        ).first()
        if row is not None and row.seq != cp.seq - 1:
            return False
        if row is not None:
            old: dict[str, int] = json.loads(row.offsets)
            back = {
                k: (v, cp.offsets.get(k))
                for k, v in old.items()
                if k in cp.offsets and cp.offsets[k] < v
            }
            if back:
                raise CheckpointError(
                    f"offsets of {pipeline!r} partition {cp.partition} would move backwards: "
                    + ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in back.items())
                )
            conn.execute(sa.delete(checkpoints).where(key))
        conn.execute(
            sa.delete(checkpoint_chunks).where(
                (checkpoint_chunks.c.pipeline == pipeline)
                & (checkpoint_chunks.c.partition == cp.partition)
            )
        )
        conn.execute(
            sa.insert(checkpoints).values(
                pipeline=pipeline,
                partition=cp.partition,
                seq=cp.seq,
                offsets=json.dumps(cp.offsets, sort_keys=True),
                created_at=cp.created_at,
                nbytes=len(cp.blob),
            )
        )
        view = memoryview(cp.blob)
        step = self.chunk_bytes
        rows = [
            {
                "pipeline": pipeline,
                "partition": cp.partition,
                "chunk": i // step,
                "data": bytes(view[i : i + step]),
            }
            for i in range(0, max(len(view), 1), step)
        ]
        for r in rows:  # one statement per chunk keeps peak memory at one chunk
            conn.execute(sa.insert(checkpoint_chunks).values(**r))
        rep = cp.report
        if rep is not None:
            conn.execute(
                sa.insert(reports).values(
                    pipeline=pipeline,
                    partition=rep.partition,
                    seq=rep.seq,
                    watermark=_finite(rep.watermark),
                    active_at=_finite(rep.active_at),
                    data=rep.data,
                )
            )
        return True

    def load(self, pipeline: str, partition: int) -> Checkpoint | None:
        """The saved checkpoint of a partition, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(checkpoints).where(
                    (checkpoints.c.pipeline == pipeline) & (checkpoints.c.partition == partition)
                )
            ).first()
            if row is None:
                return None
            chunks = self._chunks(conn, pipeline, partition)
        blob = b"".join(chunks)
        if len(blob) != row.nbytes:
            raise CheckpointError(
                f"checkpoint of {pipeline!r} partition {partition} is {len(blob)} bytes, "
                f"expected {row.nbytes}"
            )
        return Checkpoint(
            partition, int(row.seq), json.loads(row.offsets), blob, float(row.created_at)
        )

    def _chunks(self, conn: sa.Connection, pipeline: str, partition: int) -> list[bytes]:
        if conn.dialect.name == "postgresql":
            # Binary results: bytea in text mode arrives hex-encoded, twice the size.
            raw: Any = conn.connection.driver_connection
            with raw.cursor(binary=True) as cur:
                cur.execute(
                    "SELECT data FROM driftd_checkpoint_chunks WHERE pipeline = %s "
                    "AND partition = %s ORDER BY chunk",
                    (pipeline, partition),
                )
                return [bytes(r[0]) for r in cur]
        query = (
            sa.select(checkpoint_chunks.c.data)
            .where(
                (checkpoint_chunks.c.pipeline == pipeline)
                & (checkpoint_chunks.c.partition == partition)
            )
            .order_by(checkpoint_chunks.c.chunk)
        )
        return list(conn.execute(query).scalars().all())

    def partitions(self, pipeline: str) -> list[int]:
        """Partitions of a pipeline that have a checkpoint."""
        with self.engine.connect() as conn:
            return sorted(
                conn.execute(
                    sa.select(checkpoints.c.partition).where(checkpoints.c.pipeline == pipeline)
                )
                .scalars()
                .all()
            )

    def info(self, pipeline: str) -> list[dict[str, Any]]:
        """Per partition: seq, offsets, size and age, without reading the blobs."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(checkpoints)
                .where(checkpoints.c.pipeline == pipeline)
                .order_by(checkpoints.c.partition)
            ).all()
        now = time.time()
        return [
            {
                "partition": r.partition,
                "seq": r.seq,
                "offsets": json.loads(r.offsets),
                "bytes": r.nbytes,
                "age_s": round(now - r.created_at, 3),
            }
            for r in rows
        ]

    def reports(self, pipeline: str) -> list[Report]:
        """The partitions' reports not yet merged by a leader, in (partition, seq) order."""
        c = reports.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(reports).where(c.pipeline == pipeline).order_by(c.partition, c.seq)
            ).all()
        return [
            Report(r.partition, int(r.seq), _unfinite(r.watermark), _unfinite(r.active_at),
                   bytes(r.data))
            for r in rows
        ]  # fmt: skip

    def load_leader(self, pipeline: str) -> bytes | None:
        """The leader's saved state, or None."""
        with self.engine.connect() as conn:
            data = conn.execute(
                sa.select(leader_state.c.data).where(leader_state.c.pipeline == pipeline)
            ).scalar()
        return None if data is None else bytes(data)

    def save_leader(
        self,
        pipeline: str,
        blob: bytes,
        merged: Mapping[int, int],
        fence: Callable[[Any], int] | None = None,
    ) -> None:
        """Save the leader's state and delete the reports it merged, in one transaction that
        ``fence`` may refuse (a deposed leader's save changes nothing)."""
        try:
            with write_transaction(self.engine) as conn:
                epoch = fence(conn) if fence is not None else 0
                key = leader_state.c.pipeline == pipeline
                conn.execute(sa.delete(leader_state).where(key))
                conn.execute(
                    sa.insert(leader_state).values(
                        pipeline=pipeline, epoch=epoch or 0, updated_at=time.time(), data=blob
                    )
                )
                for p, seq in merged.items():
                    conn.execute(
                        sa.delete(reports).where(
                            (reports.c.pipeline == pipeline)
                            & (reports.c.partition == p)
                            & (reports.c.seq <= seq)
                        )
                    )
        except sa.exc.SQLAlchemyError as exc:
            raise CheckpointError(f"saving the leader state of {pipeline!r} failed: {exc}") from exc

    def delete(self, pipeline: str) -> None:
        """Forget every checkpoint of a pipeline (a fresh start)."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.delete(checkpoint_chunks).where(checkpoint_chunks.c.pipeline == pipeline)
            )
            conn.execute(sa.delete(checkpoints).where(checkpoints.c.pipeline == pipeline))
            conn.execute(sa.delete(reports).where(reports.c.pipeline == pipeline))
            conn.execute(sa.delete(leader_state).where(leader_state.c.pipeline == pipeline))

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.engine.dispose()


class MemoryCheckpointStore:
    """CheckpointStore in memory: one-shot replays and tests."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, int], Checkpoint] = {}
        self._reports: dict[str, dict[tuple[int, int], Report]] = {}
        self._leader: dict[str, bytes] = {}

    def save(self, pipeline: str, cps: Sequence[Checkpoint]) -> None:
        """Keep the checkpoints; offsets must not decrease and sequences must follow on (as
        in the SQL store)."""
        stored = {cp.partition: self._data.get((pipeline, cp.partition)) for cp in cps}
        lost = [
            cp.partition
            for cp in cps
            if (old := stored[cp.partition]) is not None and old.seq != cp.seq - 1
        ]
        if lost:
            raise PartitionLost(f"partitions {lost} were checkpointed by another owner", lost)
        for cp in cps:
            old = self._data.get((pipeline, cp.partition))
            back = {k for k, v in (old.offsets if old else {}).items() if cp.offsets.get(k, v) < v}
            if back:
                raise CheckpointError(
                    f"offsets of {pipeline!r} partition {cp.partition} would "
                    f"move backwards: {', '.join(sorted(back))}"
                )
        for cp in cps:
            self._data[(pipeline, cp.partition)] = cp
            if cp.report is not None:
                self._reports.setdefault(pipeline, {})[(cp.partition, cp.seq)] = cp.report

    def reports(self, pipeline: str) -> list[Report]:
        """Reports not yet merged, in (partition, seq) order."""
        held = self._reports.get(pipeline, {})
        return [held[k] for k in sorted(held)]

    def load_leader(self, pipeline: str) -> bytes | None:
        """The leader's kept state, or None."""
        return self._leader.get(pipeline)

    def save_leader(
        self,
        pipeline: str,
        blob: bytes,
        merged: Mapping[int, int],
        fence: Callable[[Any], int] | None = None,
    ) -> None:
        """Keep the leader's state; forget the merged reports."""
        if fence is not None:
            fence(None)
        self._leader[pipeline] = blob
        held = self._reports.get(pipeline, {})
        for k in [k for k in held if k[1] <= merged.get(k[0], -1)]:
            del held[k]

    def load(self, pipeline: str, partition: int) -> Checkpoint | None:
        """The kept checkpoint, or None."""
        return self._data.get((pipeline, partition))

    def partitions(self, pipeline: str) -> list[int]:
        """Partitions with a checkpoint."""
        return sorted(p for name, p in self._data if name == pipeline)

    def close(self) -> None:
        """Nothing to release."""
