"""driftd's own Prometheus metrics, on a registry the composition root injects.

One module per concern: ``recorder`` (what this process times and counts), ``checkpointed``
(event, join and alarm counters kept in the checkpoint), ``sli`` (per-version SLIs), ``state``
(pending joins, source lag, checkpoint age), ``registry`` (the model registry's tables and
outbox), ``rollout`` (the canary's verdicts and evidence) and ``kinds`` (how every family's
help names its unit and says whether it survives a restart). Every collector reads snapshot
methods at scrape time, never another component's internals, and describes its families without
collecting them.
"""

from driftd.daemon.metrics.kinds import PROCESS_LOCAL, RESTORED
from driftd.daemon.metrics.recorder import Recorder
from driftd.daemon.metrics.state import StateCollector

__all__ = ["PROCESS_LOCAL", "RESTORED", "Recorder", "StateCollector"]
