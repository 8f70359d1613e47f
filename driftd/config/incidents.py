"""How alarms become incidents, and where their links point (the ``[incidents]`` table)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from driftd.config.sections import Section


class IncidentSettings(Section):
    """Alarms grouped into incidents (seconds of event time): an alarm on a stream with an
    unresolved incident extends it; within ``cooldown_s`` of its resolution it reopens it;
    a new incident joins the group of the model's incident alarmed within ``group_window_s``;
    an incident ``resolve_after_s`` without an alarm is resolved as quiet. ``base_url`` is
    the API's address as people reach it: incident links (``/api/v1/incidents/ID``) in
    webhooks, log lines and reports start with it; ``grafana_url`` adds a dashboard link."""

    enabled: bool = True
    cooldown_s: Annotated[float, Field(ge=0)] = 3600.0
    group_window_s: Annotated[float, Field(ge=0)] = 900.0
    resolve_after_s: Annotated[float, Field(gt=0)] = 86_400.0
    base_url: Annotated[str, Field(pattern=r"^(https?://\S+)?$")] = "http://127.0.0.1:8765"
    grafana_url: Annotated[str, Field(pattern=r"^(https?://\S+)?$")] = ""
