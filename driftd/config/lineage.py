"""The ``[lineage]`` section: where OpenLineage events of retrains go (nowhere by default).

Example::

    [lineage]
    url = "http://marquez:5000"      # POST <url>/api/v1/lineage (the OpenLineage HTTP transport)
    # file = "/var/lib/driftd/lineage.jsonl"   # or: append one event per line
    namespace = "driftd-prod"        # the jobs' namespace; a job is "retrain.<model>"
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, model_validator

from driftd.config.sections import Section


class LineageSettings(Section):
    """Where retrain RunEvents go: an OpenLineage HTTP endpoint, a JSON-lines file, or off."""

    url: Annotated[str, Field(pattern=r"^https?://.+")] | None = None
    endpoint: str = "api/v1/lineage"
    api_key: SecretStr | None = None  # sent as "Authorization: Bearer <key>"
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    file: Path | None = None
    namespace: Annotated[str, Field(min_length=1)] = "driftd"
    # Model versions are output datasets "models/<model>/<version>" in this namespace.
    registry_namespace: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:.+")] = (
        "driftd://registry"
    )

    @model_validator(mode="after")
    def _one_transport(self) -> LineageSettings:
        if self.url is not None and self.file is not None:
            raise ValueError("lineage: set url or file, not both")
        return self

    @property
    def enabled(self) -> bool:
        """Whether events are sent anywhere."""
        return self.url is not None or self.file is not None
