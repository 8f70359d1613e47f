"""driftd's configuration: one frozen ``Settings`` tree from a TOML file plus ``DRIFTD_*``
environment variables, validated once at start-up. Below everything but the contracts."""

from driftd.config.checks import PerformanceSettings, SegmentSettings, WindowCheckSettings
from driftd.config.incidents import IncidentSettings
from driftd.config.settings import (
    DetectorSettings,
    FileSourceSettings,
    IngestSettings,
    JoinSettings,
    KafkaSettings,
    KafkaSourceSettings,
    LeaderSettings,
    LogSettings,
    ModelSettings,
    PipelineSettings,
    RegistrySettings,
    Settings,
    WebhookSettings,
    effective_config,
    format_errors,
    load_settings,
)

__all__ = [
    "DetectorSettings",
    "FileSourceSettings",
    "IncidentSettings",
    "IngestSettings",
    "JoinSettings",
    "KafkaSettings",
    "KafkaSourceSettings",
    "LeaderSettings",
    "LogSettings",
    "ModelSettings",
    "PerformanceSettings",
    "PipelineSettings",
    "RegistrySettings",
    "SegmentSettings",
    "Settings",
    "WebhookSettings",
    "WindowCheckSettings",
    "effective_config",
    "format_errors",
    "load_settings",
]
