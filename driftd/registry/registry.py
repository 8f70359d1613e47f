"""``Registry``: the Python API of driftd's model registry, used by the daemon, retraining,
rollout, the CLI and the HTTP API — the composition of its parts, one responsibility each:

- ``versions``: registering versions and evaluations, listing models and versions;
- ``stages``: promotion behind the gates, rollback, stage and alias history;
- ``aliases``: free aliases and which version an alias pointed at when;
- ``deployments``: the traffic split between serving versions;
- ``governance``: approval gates and approvals;
- ``runs``: training runs and dataset snapshots; ``lineage``: the tree behind a version;
- ``auditlog``: reading and verifying the hash-chained audit log.

All share ``core.RegistryCore`` (engine, secret, clock, artifact policy). Every write is one
transaction (see ``writer.transaction``) that changes the tables, appends the audit records that
describe the change, and writes the outbox events that announce it (delivered by ``outbox``).
"""

from __future__ import annotations

from driftd.registry.aliases import Aliases
from driftd.registry.auditlog import AuditLog
from driftd.registry.deployments import Deployments
from driftd.registry.governance import Governance
from driftd.registry.lineage import Lineage
from driftd.registry.runs import RUN_STATUSES, Runs
from driftd.registry.stages import Stages
from driftd.registry.versions import Versions

__all__ = ["RUN_STATUSES", "Registry"]


class Registry(Versions, Stages, Aliases, Deployments, Governance, Runs, Lineage, AuditLog):
    """Models, versions, runs, datasets, stages, aliases, approvals, traffic and the audit chain."""
