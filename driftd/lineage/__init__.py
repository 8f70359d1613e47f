"""OpenLineage RunEvents for retrains: START, then COMPLETE (the registered model version as
output) or FAIL (an error facet), with the training snapshot as input and its content hash.

``events`` builds the events (pure), ``emit`` sends them over the OpenLineage HTTP transport
or appends them to a JSON-lines file; ``settings`` is the ``[lineage]`` config (off unless a
``url`` or ``file`` is set). Emission never fails a retrain: errors are logged.
"""

from driftd.config.lineage import LineageSettings
from driftd.lineage.emit import RetrainLineage, lineage_from_settings

__all__ = ["LineageSettings", "RetrainLineage", "lineage_from_settings"]
