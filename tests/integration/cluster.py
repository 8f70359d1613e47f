"""A small harness for several `driftd run` processes deciding as one brain.

``Cluster`` starts members (``driftd run --config``, JSON logs to a file each, per-member
environment overrides such as ``DRIFTD_METRICS__PORT``), finds the current leader from the lease
table (``driftd_leases``: the holder is "<host>-<pid>-<hex>"), kills it with SIGKILL, stops the
rest with SIGTERM, reads ``driftd_lease_history`` and parses the members' JSON log lines (the
"drift detected" alarms). ``CutProxy`` is a TCP proxy between one process and PostgreSQL that a
test can cut (every connection closed, new ones refused, or held without a byte forwarded) and
restore.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from driftd.cli.output import iso
from driftd.db import lease_history, leases, make_engine
from driftd.sim.synth import Stream
from tests.integration.conftest import REPO

T = TypeVar("T")
_HOLDER = re.compile(r"-(\d+)-[0-9a-f]+$")


def holder_pid(holder: str) -> int:
    """The pid in a lease holder id "<host>-<pid>-<hex>" (the host may contain dashes)."""
    m = _HOLDER.search(holder)
    if m is None:
        raise ValueError(f"not a driftd lease holder id: {holder!r}")
    return int(m.group(1))


def read_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects among a log file's lines (tracebacks and partial lines skipped)."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw.startswith(b"{") or not raw.endswith(b"}"):
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


@dataclass
class Member:
    """One `driftd run` process of the cluster."""

    index: int
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    killed: bool = False
    terminated: bool = False  # sent SIGTERM (once: a second one may land after Python's
    # handlers are gone, at interpreter exit, and end the process with -15)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def records(self, msg: str | None = None) -> list[dict[str, Any]]:
        """This member's JSON log records (with ``msg``: only those)."""
        return [r for r in read_json_lines(self.log) if msg is None or r.get("msg") == msg]


class Cluster:
    """N `driftd run --config CONFIG` processes on one checkpoint database."""

    def __init__(self, config: Path, url: str, name: str, logs: Path) -> None:
        self.config = config
        self.url = url
        self.name = name  # the pipeline name: the consumer group and the lease's name
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.members: list[Member] = []
        self.engine = make_engine(url)

    # -- processes -----------------------------------------------------------------------------
    def start(self, env: dict[str, str] | None = None, config: Path | None = None) -> Member:
        """Start one more member (JSON logs to its own file; ``env`` overrides settings)."""
        index = len(self.members)
        log = self.logs / f"driftd-{index}.log"
        extra = {"DRIFTD_LOG__FORMAT": "json", **(env or {})}
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
        cfg = str(config or self.config)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "driftd.cli", "run", "--config", cfg],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        member = Member(index, proc, log, extra)
        self.members.append(member)
        return member

    def alive(self) -> list[Member]:
        return [m for m in self.members if m.alive]

    def by_pid(self, pid: int) -> Member | None:
        return next((m for m in reversed(self.members) if m.pid == pid), None)  # the newest

    def check_alive(self) -> None:
        """Fail when a member that was neither killed nor stopped has exited."""
        for m in self.members:
            if not (m.killed or m.terminated) and m.proc.poll() is not None:
                raise AssertionError(
                    f"driftd member {m.index} (pid {m.pid}) exited with {m.proc.returncode}\n"
                    + self.tails()
                )

    def kill(self, member: Member) -> float:
        """SIGKILL a member; return the monotonic time of the kill."""
        member.killed = True
        t = time.monotonic()
        member.proc.send_signal(signal.SIGKILL)
        member.proc.wait(30)
        return t

    def stop(self, member: Member, timeout: float = 60) -> int | None:
        """SIGTERM a member and wait for it (SIGKILL after ``timeout``); its exit status."""
        if member.proc.poll() is None:
            self.terminate(member)
            try:
                member.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                member.killed = True
                member.proc.kill()
                member.proc.wait(30)
        return member.proc.returncode

    @staticmethod
    def terminate(member: Member) -> None:
        """Send SIGTERM, once."""
        if not member.terminated and member.proc.poll() is None:
            member.terminated = True
            member.proc.send_signal(signal.SIGTERM)

    def stop_all(self, timeout: float = 60) -> dict[int, int | None]:
        """SIGTERM every live member at once, then wait for each; {pid: exit status}."""
        live = self.alive()
        for m in live:
            self.terminate(m)
        return {m.pid: self.stop(m, timeout) for m in live}

    def close(self) -> None:
        """Kill what still runs and release the database engine."""
        for m in self.members:
            if m.proc.poll() is None:
                m.killed = True
                m.proc.kill()
                m.proc.wait(30)
        self.engine.dispose()

    # -- the lease -------------------------------------------------------------------------------
    def lease_row(self) -> dict[str, Any] | None:
        """The lease row with the database's clock ("now"), or None (none yet, or no tables)."""
        c = leases.c
        try:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(leases).where(c.name == self.name)).mappings().first()
                now = db_now(conn)
        except sa.exc.DBAPIError:
            return None
        if row is None:
            return None
        return {**dict(row), "now": now}

    def leader(self) -> tuple[Member, int] | None:
        """The live member that holds an unexpired lease now, with its epoch."""
        row = self.lease_row()
        if row is None or row["expires_at"] <= row["now"]:
            return None
        m = self.by_pid(holder_pid(row["holder"]))
        if m is None or not m.alive:
            return None
        return m, int(row["epoch"])

    def history(self) -> list[dict[str, Any]]:
        """``driftd_lease_history`` of this pipeline, oldest epoch first."""
        h = lease_history.c
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(lease_history).where(h.name == self.name).order_by(h.epoch)
                ).mappings()
                return [dict(r) for r in rows]
        except sa.exc.DBAPIError:
            return []

    def progress(self) -> int:
        """Events (Kafka offsets) covered by the saved checkpoints, over partitions."""
        from driftd.daemon.checkpoint import SqlCheckpointStore

        store = SqlCheckpointStore(self.engine)
        try:
            return sum(
                v
                for cp in store.info(self.name)
                for k, v in cp["offsets"].items()
                if "#" not in k and not k.startswith("dlq:")
            )
        except sa.exc.DBAPIError:
            return 0  # no tables yet

    def epoch(self) -> int:
        """The newest epoch in the lease history (0: never held)."""
        hist = self.history()
        return int(hist[-1]["epoch"]) if hist else 0

    # -- waiting ---------------------------------------------------------------------------------
    def wait(
        self,
        what: str,
        check: Callable[[], T | None],
        timeout: float,
        every: float = 0.1,
        alive: bool = True,
    ) -> T:
        """Poll ``check`` until it returns something truthy; fail with every log's tail (and
        as soon as a member that was not killed exits, when ``alive``)."""
        end = time.monotonic() + timeout
        while True:
            if alive:
                self.check_alive()
            value = check()
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}\n{self.tails()}"
                )
            time.sleep(every)

    def wait_leader(
        self, timeout: float, min_epoch: int = 1, alive: bool = True
    ) -> tuple[Member, int]:
        """Wait until a live member leads at ``min_epoch`` or later."""
        return self.wait(
            f"a leader at epoch >= {min_epoch}",
            lambda: lead if (lead := self.leader()) and lead[1] >= min_epoch else None,
            timeout,
            alive=alive,
        )

    # -- logs ------------------------------------------------------------------------------------
    def records(self, msg: str | None = None) -> list[dict[str, Any]]:
        """Every member's JSON log records (``msg``: only those), each with "member" and "pid"."""
        out = []
        for m in self.members:
            for r in m.records(msg):
                out.append({**r, "member": m.index, "pid": m.pid})
        return out

    def drift_alarms(self) -> list[dict[str, Any]]:
        """The "drift detected" log records of every member (repeats included)."""
        return self.records("drift detected")

    def tails(self, n: int = 2500) -> str:
        parts = []
        for m in self.members:
            text = m.log.read_text(errors="replace") if m.log.exists() else ""
            state = "running" if m.alive else f"exit {m.proc.returncode}"
            parts.append(f"----- member {m.index} pid {m.pid} ({state}) -----\n{text[-n:]}")
        return "\n".join(parts)


class PacedPublisher(threading.Thread):
    """Publishes a stream in order over at least ``seconds`` (a live source: the instances
    ingest while it runs, whatever the machine's speed), in ``slices`` flushed one after the
    other, each keyed as ``streams.publish`` keys it."""

    def __init__(
        self,
        stream: Stream,
        bootstrap: str,
        topics: tuple[str, str],
        seconds: float,
        slices: int = 40,
    ) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.bootstrap = bootstrap
        self.topics = topics
        self.seconds = seconds
        self.slices = slices
        self.counts = {topics[0]: 0, topics[1]: 0}
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        from tests.integration.streams import publish

        lines = self.stream.lines
        step = -(-len(lines) // self.slices)
        t0 = time.monotonic()
        try:
            for k, i in enumerate(range(0, len(lines), step)):
                part = dataclasses.replace(self.stream, lines=lines[i : i + step])
                for topic, n in publish(part, self.bootstrap, self.topics).items():
                    self.counts[topic] += n
                # A pace, not a wait on a condition: the next slice is due then.
                time.sleep(max(0.0, t0 + self.seconds * (k + 1) / self.slices - time.monotonic()))
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def scrape(port: int) -> dict[str, float]:
    """A member's /metrics: each sample name's value summed over its label sets ({} while the
    endpoint does not answer)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def db_now(conn: sa.Connection) -> float:
    """The database's clock (PostgreSQL's clock_timestamp()), as the lease reads it."""
    if conn.dialect.name == "postgresql":
        return float(
            conn.exec_driver_sql("SELECT EXTRACT(EPOCH FROM clock_timestamp())").scalar_one()
        )
    return time.time()


def alarm_key(a: dict[str, Any]) -> tuple[str, str, str, str, str, float]:
    """An alarm's identity: (model, version, stream, detector, kind, event time); from a log
    record ("event_ts", Unix seconds) or a summary's alarm ("ts", ISO 8601 as the CLI prints
    times). Times are taken as the CLI prints them (``iso``: milliseconds, truncated)."""
    ts = a["event_ts"] if "event_ts" in a else a["ts"]
    text = ts if isinstance(ts, str) else iso(float(ts))
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return (a["model"], a["version"], a["stream"], a["detector"], a["kind"], t)


class CutProxy:
    """A TCP proxy on a free loopback port to ``target`` that a test can cut and restore.

    ``cut("refuse")`` closes every connection and refuses new ones (the port is closed);
    ``cut("hold")`` keeps the connections but forwards nothing, in either direction, and holds
    new ones without connecting them on: a network partition, as a process sees it (its calls
    hang). ``restore()`` forwards again (what was held goes through).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._closed = False
        self.port = 0
        self._listen()

    @property
    def cut_mode(self) -> str | None:
        if self._listener is None:
            return "refuse"
        return None if self._flowing.is_set() else "hold"

    def _listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        self.port = s.getsockname()[1]
        s.listen(64)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        # A blocking accept() is not woken by close() from another thread (the kernel would
        # go on queueing connections): poll, and stop once this listener is closed.
        while self._listener is listener:
            try:
                ready, _, _ = select.select([listener], [], [], 0.1)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):
                return  # closed: cut or shut down
            self._track(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.add(s)

    def _connect(self, client: socket.socket) -> None:
        self._flowing.wait()  # a held connection is not connected on until restored
        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            self._close(client)
            return
        self._track(upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                self._flowing.wait()
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    continue
                if not self._flowing.is_set():
                    continue  # held: leave it in the kernel's buffers
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, ValueError):
            pass  # closed under it (a cut)
        self._close(src)
        self._close(dst)

    def _close(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self, mode: str = "refuse") -> None:
        """Cut the link: "refuse" (connections closed, the port closed) or "hold"."""
        if mode == "hold":
            self._flowing.clear()
            return
        if mode != "refuse":
            raise ValueError(f"cut mode: {mode!r}")
        self._flowing.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            self._close(s)

    def restore(self) -> None:
        """Forward again (a refused port listens again, on the same number)."""
        if self._listener is None and not self._closed:
            self._listen()
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.cut("refuse")
        self._flowing.set()  # wake every waiting thread; they find their sockets closed
