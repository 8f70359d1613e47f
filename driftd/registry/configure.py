"""Open the registry a configuration describes and apply its approval gates."""

from __future__ import annotations

from driftd.config import RegistrySettings
from driftd.registry.artifacts import ArtifactPolicy
from driftd.registry.names import Stage
from driftd.registry.registry import Registry
from driftd.registry.roles import Gate, Role


def gates_from(settings: RegistrySettings) -> dict[Stage, Gate]:
    """The configured gates as registry rules."""
    return {
        Stage(stage): Gate(g.approvals, Role(g.role), g.require_evaluation)
        for stage, g in settings.gates.items()
    }


def open_registry(
    settings: RegistrySettings, default_url: str, apply_gates: bool = True, actor: str = "driftd"
) -> Registry:
    """The registry at ``settings.url`` (else ``default_url``), keyed with its secret and held
    to the configured artifact schemes and roots; with ``apply_gates`` its gates are made those
    of the config (an audited change when they differ)."""
    secret = settings.secret.get_secret_value() if settings.secret is not None else None
    artifacts = ArtifactPolicy.create(settings.artifact_schemes, settings.artifact_roots)
    registry = Registry.open(settings.url or default_url, secret, artifacts)
    if apply_gates:
        registry.set_gates(gates_from(settings), actor=actor)
    return registry
