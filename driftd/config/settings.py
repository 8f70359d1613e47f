"""Typed configuration: a TOML file plus ``DRIFTD_*`` environment overrides.

Everything is validated once, at start-up, into one frozen ``Settings`` object; each component
receives its own sub-settings. Environment variables override the file: nested keys are joined
with ``__`` (``DRIFTD_SOURCE__KAFKA__BOOTSTRAP_SERVERS``, ``DRIFTD_CHECKPOINT__URL``), and an
unknown ``DRIFTD_*`` name fails start-up rather than being ignored.

Example ``driftd.toml``::

    [source]
    kind = "kafka"
    [source.kafka]
    bootstrap_servers = "kafka:9092"

    [models.fraud]
    task = "binary"
    max_label_delay_s = 3600
    features = { amount = "numeric", country = "categorical" }
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from driftd.config.alerts import AlertSettings
from driftd.config.checks import (
    PerformanceSettings,
    SegmentSettings,
    WindowCheckSettings,
    check_features,
    check_performance,
)
from driftd.config.dburl import check_url
from driftd.config.envsource import env_source, environ_given
from driftd.config.errors import env_error, located, read_toml
from driftd.config.errors import format_errors as _format_errors
from driftd.config.incidents import IncidentSettings
from driftd.config.lineage import LineageSettings
from driftd.config.retrain import ModelRetrainSettings, RetrainSettings
from driftd.config.rollout import RolloutSettings
from driftd.config.sections import Section
from driftd.config.slo import ServiceSLOSettings
from driftd.errors import ConfigError

ENV_PREFIX = "DRIFTD_"
ENV_CONFIG_FILE = "DRIFTD_CONFIG"
_ENV_NOT_SETTINGS = {ENV_CONFIG_FILE}
# Set by driftd for the processes it starts (a retrain job's id, attempt, directory), not config.
_ENV_RUNTIME_PREFIXES = ("DRIFTD_JOB_",)

Policy = Literal["dead_letter", "ignore"]
FeatureKind = Literal["numeric", "categorical"]


class PipelineSettings(Section):
    """The loop: batch sizes and how often state and offsets are checkpointed."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")] = "driftd"
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    checkpoint_every_events: Annotated[int, Field(ge=1)] = 100_000
    checkpoint_every_s: Annotated[float, Field(gt=0)] = 10.0
    data_dir: Path = Path(".driftd")
    poll_timeout_s: Annotated[float, Field(gt=0, le=60)] = 0.5


class FileSourceSettings(Section):
    """JSON-lines files (optionally gzip): replay and the embedded default."""

    kind: Literal["file"] = "file"
    paths: Annotated[list[Path], Field(min_length=1)]
    follow: bool = False


class KafkaSettings(Section):
    """Kafka connection and consumer tuning; defaults favour throughput."""

    bootstrap_servers: Annotated[str, Field(min_length=1)] = "127.0.0.1:9092"
    predictions_topic: Annotated[str, Field(min_length=1)] = "predictions"
    labels_topic: Annotated[str, Field(min_length=1)] = "labels"
    dlq_suffix: Annotated[str, Field(min_length=1)] = ".dlq"
    client: Literal["kafka-python", "confluent"] = "kafka-python"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: Annotated[int, Field(ge=1000)] = 10_000
    heartbeat_interval_ms: Annotated[int, Field(ge=100)] = 3_000
    max_poll_records: Annotated[int, Field(ge=1)] = 5_000
    fetch_min_bytes: Annotated[int, Field(ge=1)] = 1
    fetch_max_wait_ms: Annotated[int, Field(ge=0)] = 100
    max_partition_fetch_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None


class KafkaSourceSettings(Section):
    """Predictions and labels topics read by a consumer group."""

    kind: Literal["kafka"] = "kafka"
    kafka: KafkaSettings = KafkaSettings()


class IngestSettings(Section):
    """What happens to events that are too large or name unknown models or features."""

    max_event_bytes: Annotated[int, Field(ge=64, le=64 * 1024 * 1024)] = 1024 * 1024
    oversized: Policy = "dead_letter"
    unknown_model: Policy = "dead_letter"
    unknown_feature: Policy = "dead_letter"


class JoinSettings(Section):
    """Bounds of the prediction/label join store."""

    max_pending: Annotated[int, Field(ge=1)] = 2_000_000
    overflow: Literal["evict_oldest", "drop_new"] = "evict_oldest"
    allowed_lateness_s: Annotated[float, Field(ge=0)] = 60.0
    # How far one stream's event time may run ahead of the other's before the slower one
    # stops holding the watermark back (an idle or dead labels stream).
    max_stream_skew_s: Annotated[float, Field(gt=0)] = 3600.0
    # Event-time screening (driftd.daemon.timeguard): an event more than this ahead of the
    # stream's time, or of the wall clock when following a live source, is dead-lettered
    # as future_timestamp instead of moving the watermark and expiring pending joins.
    max_future_s: Annotated[float, Field(gt=0)] = 3600.0
    # Events stamped earlier (a zero or unset clock) are dead-lettered as invalid_value.
    min_ts: Annotated[float, Field(ge=0, lt=1e11)] = 946_684_800.0  # 2000-01-01T00:00:00Z


class CheckpointSettings(Section):
    """Where state and offsets are saved together (SQLite file or PostgreSQL)."""

    url: Annotated[str, Field(min_length=1)] = "sqlite:///.driftd/state.db"
    # Blobs are split into rows of this size; 4 MiB measured fastest on PostgreSQL.
    chunk_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        return check_url(v)


class LeaderSettings(Section):
    """One brain: the lease that makes one instance the leader, and how it merges partitions.

    Every instance ingests its partitions and reports per-bucket summaries with each
    checkpoint; the leader merges them up to the global watermark (the minimum over partitions
    of each partition's event time less ``lateness_s``; a partition without events for
    ``idle_s`` stops holding it back) and takes every decision on the merged stream.
    """

    lease_s: Annotated[float, Field(gt=0, le=600)] = 15.0  # a dead leader is replaced within
    renew_s: Annotated[float, Field(gt=0, le=600)] = 5.0  # the leader renews this often
    idle_s: Annotated[float, Field(gt=0)] = 30.0
    bucket_s: Annotated[float, Field(gt=0, le=86_400)] = 10.0  # event-time bucket width
    lateness_s: Annotated[float, Field(ge=0)] = 5.0
    merge_every_s: Annotated[float, Field(gt=0, le=600)] = 1.0  # how often the leader merges
    outbox: bool = True  # the leader also delivers the registry's outbox events

    @model_validator(mode="after")
    def _renew_within_lease(self) -> LeaderSettings:
        if self.renew_s * 2 > self.lease_s:
            raise ValueError(
                f"leader.renew_s: got {self.renew_s:g}; expected at most half of "
                f"leader.lease_s ({self.lease_s:g}), so that one failed renewal does not lose "
                "the lease"
            )
        return self


class MetricsSettings(Section):
    """The Prometheus exporter."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9464


class LogSettings(Section):
    """Structured JSON logs when not on a terminal, readable lines when on one."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


DetectorName = Literal["ADWIN", "PageHinkley", "CUSUM", "DDM", "EDDM", "HDDM_A", "HDDM_W", "KSWIN"]
DETECTORS: tuple[str, ...] = get_args(DetectorName)


class GateSettings(Section):
    """What moving a version into one stage needs (see ``[registry.gates.<stage>]``)."""

    approvals: Annotated[int, Field(ge=0, le=100)] = 0
    role: Literal["approver", "admin"] = "approver"
    require_evaluation: bool = False


class WebhookSettings(Section):
    """A webhook the registry's outbox delivers events to: Standard Webhooks signatures over
    CloudEvents bodies (``format = "cloudevents"``), or driftd's older headers and bare payload
    (``"legacy"``). A webhook new to the database starts at the newest event unless ``replay``."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    url: Annotated[str, Field(pattern=r"^https?://.+")]
    # "whsec_<base64>" (Standard Webhooks) signs with the decoded key; any other text signs
    # with its UTF-8 bytes.
    secret: SecretStr | None = None
    events: list[str] = []  # empty: every event
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 8
    backoff_s: Annotated[float, Field(gt=0)] = 1.0
    max_backoff_s: Annotated[float, Field(gt=0)] = 300.0
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    format: Literal["cloudevents", "legacy"] = "cloudevents"
    # The CloudEvents source prefix: events of model M come from "<source>/models/M".
    source: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:.+")] = "driftd://registry"
    # False: a webhook that never delivered starts after the newest event (no history).
    replay: bool = False

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, v: SecretStr | None) -> SecretStr | None:
        text = v.get_secret_value() if v is not None else ""
        if text.startswith("whsec_"):
            import base64
            import binascii

            try:
                key = base64.b64decode(text.removeprefix("whsec_") + "==")
            except binascii.Error:
                key = b""
            if not key:
                raise ValueError('a "whsec_" webhook secret must be non-empty base64 after it')
        return v


StageName = Literal["staging", "canary", "production", "archived", "rolled_back"]


class RegistrySettings(Section):
    """The model registry: its database, audit key, approval gates, webhooks and HTTP API."""

    url: str | None = None  # default: the checkpoint database
    secret: SecretStr | None = None  # keys the audit chain's hashes (HMAC-SHA256)
    gates: dict[StageName, GateSettings] = {}
    webhooks: list[WebhookSettings] = []
    # The Kafka control topic the outbox also publishes registry events to (None: off).
    control_topic: Annotated[str, Field(min_length=1)] | None = None
    control_bootstrap_servers: Annotated[str, Field(min_length=1)] = "127.0.0.1:9092"
    api_host: str = "127.0.0.1"
    api_port: Annotated[int, Field(ge=0, le=65535)] = 8765
    # The largest request body the API reads (413 beyond it); it is read after authentication.
    api_max_body_bytes: Annotated[int, Field(ge=1024, le=1 << 30)] = 1 << 20
    # Artifact URIs a version may name (see driftd.registry.artifacts): these schemes, and
    # local (file://) paths under these directories; relative ones count from the working
    # directory, and retrain.work_dir is always added (retraining writes artifacts there).
    artifact_schemes: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]{0,31}$")]] = [
        "file",
        "gs",
        "https",
        "s3",
    ]
    artifact_roots: list[Path] = [Path(".")]

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @field_validator("secret")
    @classmethod
    def _secret_not_empty(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            raise ValueError(
                "registry.secret (DRIFTD_REGISTRY__SECRET) is empty: expected a non-empty "
                "secret that keys the audit chain; unset it to leave the log unkeyed"
            )
        return v

    @model_validator(mode="after")
    def _unique_webhooks(self) -> RegistrySettings:
        names = [w.name for w in self.webhooks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"webhook names must be unique; repeated: {', '.join(dup)}")
        return self


class DetectorSettings(Section):
    """One streaming detector on one stream of a model (run per model version).

    ``stream`` is ``error`` (prediction != label, or absolute error for regression, as labels
    join), ``score``, ``latency``, ``feature:NAME`` (a numeric feature, or a categorical
    feature's stable category keys) or ``feature:NAME=VALUE`` (1.0 where a categorical feature
    equals VALUE, else 0.0). ``params`` are checked by constructing the detector when the
    daemon is built (and by ``config check``). ``standardize`` feeds the detector
    ``(x - mean) / sd`` of its first ``warmup`` values, so that thresholds are in standard
    deviations whatever the stream's unit; unset, it is on for the detectors whose thresholds
    are in the stream's units (PageHinkley, ADWIN) on every stream but a classifier's 0/1
    ``error`` and a category indicator. Without ``params`` a detector gets the daemon's
    defaults (``DAEMON_DEFAULTS``: at most 1 false alarm per 100k on fresh streams).
    """

    detector: DetectorName
    stream: Annotated[str, Field(pattern=r"^(error|score|latency|feature:.+)$")] = "error"
    params: dict[str, float | int | bool | str] = {}
    standardize: bool | None = None
    warmup: Annotated[int, Field(ge=2, le=1_000_000)] = 1_000


class ModelSettings(Section):
    """One monitored model: its feature schema, label delay and windows."""

    task: Literal["binary", "multiclass", "regression"] = "binary"
    features: Annotated[dict[str, FeatureKind], Field(min_length=1)]
    max_label_delay_s: Annotated[float, Field(gt=0)] = 3600.0
    window_s: Annotated[float, Field(gt=0)] = 300.0
    windows_kept: Annotated[int, Field(ge=1, le=10_000)] = 12
    max_categories: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    # A multiclass model's class names, in the order of its ``scores``: a prediction's
    # ``scores`` dict is read for these classes (needed by multiclass performance estimation).
    classes: list[Annotated[str, Field(min_length=1, max_length=256)]] = []
    detectors: list[DetectorSettings] = []
    checks: list[WindowCheckSettings] = []
    segments: SegmentSettings | None = None  # None: checks test the pooled stream only
    performance: list[PerformanceSettings] = []
    retrain: ModelRetrainSettings | None = None  # None: this model is never retrained
    rollout: RolloutSettings | None = None  # None: challengers are promoted by hand
    slo: ServiceSLOSettings = ServiceSLOSettings()  # its Prometheus alerts' targets

    @field_validator("features")
    @classmethod
    def _names(cls, v: dict[str, FeatureKind]) -> dict[str, FeatureKind]:
        for name in v:
            if not name or len(name) > 256:
                raise ValueError(f"feature names must be 1-256 characters, got {name!r}")
        return v

    @model_validator(mode="after")
    def _detector_streams(self) -> ModelSettings:
        numeric = [n for n, k in self.features.items() if k == "numeric"]
        categorical = [n for n, k in self.features.items() if k == "categorical"]
        for i, d in enumerate(self.detectors):
            if not d.stream.startswith("feature:"):
                continue
            name, eq, _ = d.stream.removeprefix("feature:").partition("=")
            if name not in (categorical if eq else self.features):
                raise located(
                    ("detectors", i, "stream"),
                    d.stream,
                    "error, score, latency, feature:NAME naming a feature or "
                    "feature:NAME=VALUE naming a categorical feature (numeric: "
                    f"{', '.join(numeric) or 'none'}; categorical: "
                    f"{', '.join(categorical) or 'none'})",
                )
        errors = check_features(self.checks, self.features)
        errors += check_performance(self.performance, self.task, self.classes)
        if errors:
            raise located(*errors[0])
        return self


def _source_kind(value: Any) -> str:
    """The source's ``kind``; Kafka when omitted, so env-only Kafka settings work."""
    if isinstance(value, dict):
        return str(value.get("kind", "kafka"))
    return str(getattr(value, "kind", "kafka"))


class Settings(BaseSettings):
    """The whole configuration, validated at start-up."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    pipeline: PipelineSettings = PipelineSettings()
    source: Annotated[
        Annotated[FileSourceSettings, Tag("file")] | Annotated[KafkaSourceSettings, Tag("kafka")],
        Discriminator(_source_kind),
    ] = KafkaSourceSettings()
    ingest: IngestSettings = IngestSettings()
    join: JoinSettings = JoinSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    leader: LeaderSettings = LeaderSettings()
    metrics: MetricsSettings = MetricsSettings()
    log: LogSettings = LogSettings()
    registry: RegistrySettings = RegistrySettings()
    retrain: RetrainSettings = RetrainSettings()
    incidents: IncidentSettings = IncidentSettings()
    alerts: AlertSettings = AlertSettings()
    lineage: LineageSettings = LineageSettings()  # OpenLineage RunEvents of retrains
    models: Annotated[dict[str, ModelSettings], Field(min_length=1)]

    @model_validator(mode="after")
    def _artifacts_under_work_dir(self) -> Settings:
        """Retraining registers artifacts under ``retrain.work_dir``: always an allowed root."""
        roots = self.registry.artifact_roots
        if self.retrain.work_dir not in roots:
            update = {"artifact_roots": [*roots, self.retrain.work_dir]}
            object.__setattr__(self, "registry", self.registry.model_copy(update=update))
        return self

    @property
    def registry_url(self) -> str:
        """The registry's database: ``registry.url``, else the checkpoint database."""
        return self.registry.url or self.checkpoint.url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment (under load_settings, the one it was handed) overrides the file,
        # which is passed in as init values.
        return (env_source(settings_cls, env_settings), init_settings)


def format_errors(exc: ValidationError, origin: str, env: Mapping[str, str]) -> str:
    """One line per problem: the key, the value given, where it came from, what was expected."""
    return _format_errors(exc, origin, env, ENV_PREFIX)


def _check_env_names(env: Mapping[str, str]) -> None:
    top = set(Settings.model_fields)
    unknown = []
    for name in env:
        upper = name.upper()
        if (
            not upper.startswith(ENV_PREFIX)
            or upper in _ENV_NOT_SETTINGS
            or upper.startswith(_ENV_RUNTIME_PREFIXES)
        ):
            continue
        head = upper[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if head not in top:
            unknown.append(name)
    if unknown:
        raise ConfigError(
            f"unknown environment variable(s) {', '.join(sorted(unknown))}; expected "
            f"{ENV_PREFIX}<SECTION>__<KEY> with SECTION one of {', '.join(sorted(top))}"
        )


def load_settings(path: Path | str | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply the environment, validate; raise ConfigError."""
    environ = dict(os.environ if env is None else env)
    _check_env_names(environ)
    data: dict[str, Any] = {}
    origin = "environment only"
    if path is not None:
        p = Path(path)
        origin = str(p)
        data = read_toml(p)
    try:
        with environ_given(environ):  # read by pydantic-settings; os.environ is left alone
            return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, origin, environ)) from None
    except SettingsError as exc:  # a DRIFTD_* value that is not the JSON its key needs
        raise env_error(exc, environ, Settings, ENV_PREFIX) from None


def effective_config(settings: Settings) -> dict[str, Any]:
    """The validated settings as plain data (secrets masked), for `driftd config check`."""
    return settings.model_dump(mode="json")
