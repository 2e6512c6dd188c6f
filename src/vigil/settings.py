"""The one settings object. Every value can come from a `VIGIL_`-prefixed environment variable
(nested values with `__`, for example `VIGIL_BUS__SYNC_INTERVAL=always`) or a `.env` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.receivers.admission import AdmissionSettings

MiB = 1024 * 1024
GiB = 1024 * MiB


class BusSettings(BaseModel):
    """JetStream streams, consumers and the managed server. See docs/configuration.md."""

    records_max_bytes: int = Field(default=2 * GiB, ge=MiB, description="Records stream size limit.")
    records_max_age_s: float = Field(default=7 * 86_400, gt=0, description="Oldest unprocessed record kept.")
    spans_max_bytes: int = Field(default=2 * GiB, ge=MiB, description="Spans stream size limit.")
    spans_max_age_s: float = Field(
        default=3_600, gt=0, description="Oldest unprocessed span kept (spans feed detection, a live view)."
    )
    batches_max_bytes: int = Field(default=1 * GiB, ge=MiB)
    outputs_max_bytes: int = Field(default=512 * MiB, ge=MiB)
    max_age_s: float = Field(default=7 * 86_400, gt=0, description="Retention of batches and outputs.")
    duplicate_window_s: float = Field(default=120.0, gt=0, description="Idempotent-publish window.")
    max_message_bytes: int = Field(default=MiB, ge=64 * 1024, le=8 * MiB)
    sync_interval: str = Field(
        default="2m",
        description="How often the managed server fsyncs its store: a duration such as 2m, or 'always'.",
    )
    replicas: int = Field(default=1, ge=1, le=5, description="Stream replicas (3 on a cluster).")
    records_partitions: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Streams the records are spread over (VIGIL_RECORDS, VIGIL_RECORDS_1, ...); on a "
        "cluster, as many as NATS nodes, so that a node's loss stops one partition only while its "
        "leader is re-elected (4-9 s) and receivers publish to the others.",
    )
    publish_failover_s: float = Field(
        default=1.0,
        gt=0,
        description="With several records partitions: how long a receiver waits for one partition "
        "to acknowledge an export (per bus message of it) before it tries the next; the last "
        "partition tried gets the bus's usual 10 s.",
    )
    ack_wait_s: float = Field(default=30.0, gt=0)
    ack_margin_s: float = Field(
        default=30.0,
        gt=0,
        description="Added to an agent's or sink's timeout to give its consumer's ack wait.",
    )
    max_deliver: int = Field(default=20, ge=1, description="Bus-level redelivery bound for records.")
    router_max_pending: int = Field(
        default=64, ge=1, description="Records messages a router holds unacknowledged (its memory window)."
    )
    server_max_memory: str = Field(default="256MB")
    server_max_store: str = Field(default="20GB")
    server_max_procs: int = Field(
        default=1,
        ge=0,
        le=1024,
        description="Cores the managed server's Go runtime runs on at once (its GOMAXPROCS; 0: all). "
        "With one, its goroutines hand work to each other on one thread instead of waking others.",
    )

    @field_validator("sync_interval")
    @classmethod
    def _sync(cls, value: str) -> str:
        if value != "always" and not (value[:-1].isdigit() and value[-1] in "smh"):
            raise ValueError("sync_interval must be 'always' or a duration such as 500ms, 10s, 2m, 1h")
        return value


class DetectSettings(BaseModel):
    """The detector: windows over request facts, baselines, signals, incidents."""

    enabled: bool = True
    from_records: bool = Field(
        default=False,
        description="Also read request/response facts from log records (request/response pair records, as traffic-capture forwarders send them); costs a second read of every record.",
    )
    window_s: float = Field(default=60.0, gt=0, description="Tumbling window size.")
    allowed_lateness_s: float = Field(
        default=10.0, ge=0, description="How long after a window's end its own late facts still count in it."
    )
    idle_grace_s: float = Field(
        default=60.0, ge=0, description="How long a quiet service's last window waits for stragglers."
    )
    quiet_period_s: float = Field(
        default=600.0, gt=0, description="An incident resolves after this long quiet."
    )
    cooldown_s: float = Field(
        default=1800.0, ge=0, description="A resolved incident that recurs within this reopens."
    )
    save_every_s: float = Field(default=10.0, gt=0, description="How often baselines are saved.")
    new_template_warmup_s: float = Field(
        default=900.0,
        ge=0,
        description="After a start on an empty state, every template is new: no new_error_template signal for this long.",
    )
    evidence_url: str | None = Field(
        default=None,
        description="Where the evidence of each signal is archived: a path or file:///path, or "
        "s3://bucket/prefix. Default: <data_dir>/evidence.",
    )
    evidence_retention_s: float = Field(
        default=7 * 86_400, gt=0, description="Evidence of windows older than this is deleted (hourly)."
    )
    evidence_s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible server (MinIO, Ceph, ...); default AWS S3. "
        "Credentials come from the standard AWS variables and files.",
    )
    evidence_s3_region: str | None = Field(
        default=None, description="Region of the evidence bucket; default from the AWS configuration."
    )

    @field_validator("evidence_url")
    @classmethod
    def _evidence_url(cls, value: str | None) -> str | None:
        from vigil.detect.archive import check_url  # the registry of backends; imported late

        check_url(value)
        return value

    @field_validator("evidence_s3_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("evidence_s3_endpoint_url must be an http:// or https:// URL")
        return value


class WorkflowSettings(BaseModel):
    """The remediation workflow (durable, on DBOS Transact)."""

    enabled: bool = Field(
        default=True, description="Run workflows in this process (vigil up, vigil pipeline)."
    )
    executor_id: str = Field(
        default="local",
        min_length=1,
        max_length=100,
        description="Names this process among several on one PostgreSQL: each recovers its own "
        "workflows after a crash, so give every replica its own, stable across restarts.",
    )
    sweep_s: float = Field(
        default=2.0,
        gt=0,
        description="How often a process running workflows looks for open incidents whose workflow has "
        "not started: the detector's, and any start a crash prevented. An alert's starts at once.",
    )
    analysis_engine: Literal["rules", "llm"] = Field(
        default="rules",
        description="What analyses incidents after the workflow's investigation, for projects whose "
        "policy does not say: `llm` uses the model of `llm` (the rules engine when none is configured).",
    )


class InvestigateSettings(BaseModel):
    """Recent records kept for investigation, and the tools an investigation uses. External tools
    are on only when their URL is set."""

    recent_enabled: bool = Field(
        default=True, description="Keep each project's recent records for investigation."
    )
    recent_window_s: float = Field(
        default=3_600, gt=0, description="How long each project's recent records are kept."
    )
    recent_max_bytes: int = Field(
        default=64 * MiB, ge=64 * 1024, description="Recent records kept per project, in bytes (as received)."
    )
    recent_max_bytes_per_s: int = Field(
        default=MiB,
        ge=1024,
        description="A project's records are kept whole up to this rate (with bursts of eight "
        "seconds' worth); above it, messages are skipped and counted, so that a flood neither "
        "churns the window in seconds nor costs ingest the memory bandwidth of keeping it.",
    )
    recent_max_records: int = Field(default=500_000, ge=100, description="Recent records kept per project.")
    recent_max_projects: int = Field(
        default=1_000, ge=1, description="Projects whose recent records are kept (the least recent dropped)."
    )
    citation_retention_s: float = Field(
        default=30 * 86_400,
        gt=0,
        description="How long the records and query results an analysis cites are kept (swept hourly); "
        "past it, their citations answer 404.",
    )
    max_lines: int = Field(default=50, ge=1, le=10_000, description="Samples a tool returns at most.")
    max_bytes: int = Field(
        default=16 * 1024, ge=1024, le=4 * MiB, description="Bytes of samples a tool returns at most."
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Each external query's time limit.")
    prometheus_url: str | None = Field(default=None, description="Prometheus (or compatible) base URL.")
    prometheus_queries: list[str] = Field(
        default_factory=lambda: [
            'sum by (http_response_status_code) (rate(http_server_request_duration_seconds_count{service_name="{service}"}[5m]))',
            'histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket{service_name="{service}"}[5m])))',
        ],
        max_length=20,
        description="PromQL an investigation runs over the incident's time for each of its services "
        "(`{service}` is replaced by the service's name).",
    )
    loki_url: str | None = Field(default=None, description="Loki base URL.")
    loki_selector: str = Field(
        default='{service_name="{service}"}',
        description="The LogQL stream selector of a service's logs (`{service}` is its name).",
    )
    elasticsearch_url: str | None = Field(default=None, description="Elasticsearch or OpenSearch base URL.")
    elasticsearch_index: str = Field(default="*", description="Index pattern searched.")
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    elasticsearch_api_key: SecretStr | None = None
    kubernetes_url: str | None = Field(
        default=None, description="Kubernetes API server URL (read only use), with kubernetes_token."
    )
    kubernetes_token: SecretStr | None = None
    kubernetes_in_cluster: bool = Field(default=False, description="Use the pod's service account.")
    kubernetes_kubeconfig: Path | None = Field(default=None, description="A kubeconfig file to use.")
    kubernetes_service_label: str = Field(
        default="app", description="The pod label that names a service (pods of `app=<service>`)."
    )
    kubernetes_namespaces: list[str] = Field(
        default_factory=lambda: ["default"], description="Namespaces the Kubernetes tool reads."
    )

    @field_validator("prometheus_url", "loki_url", "elasticsearch_url", "kubernetes_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @property
    def kubernetes_configured(self) -> bool:
        return bool(self.kubernetes_url or self.kubernetes_in_cluster or self.kubernetes_kubeconfig)


class LlmSettings(BaseModel):
    """The model behind `engine: llm` of built-in agents. Unset provider or model: rules only."""

    provider: Literal["openai", "anthropic", "gemini", "groq", "mistral", "bedrock"] | None = None
    model: str | None = None
    base_url: str | None = Field(default=None, description="Any OpenAI-compatible server (Ollama, vLLM).")
    api_key: SecretStr | None = None
    timeout_s: float | None = Field(default=None, gt=0, description="Default: AI_TIMEOUT_SECONDS, else 30.")
    tokens_per_day: int | None = Field(default=None, ge=1, description="Per project.")
    tokens_per_incident: int | None = Field(default=None, ge=1)

    @property
    def configured(self) -> bool:
        return self.provider is not None and self.model is not None


class OutboundSettings(BaseModel):
    """Where agents, webhooks and Slack sinks may be sent. See docs/security.md."""

    allow: list[str] = Field(
        default_factory=list,
        description="IPs, CIDR networks, host names or *.domain patterns permitted even where the "
        "built-in rules refuse (a metadata proxy, a link-local agent).",
    )
    deny: list[str] = Field(
        default_factory=list,
        description="IPs, CIDR networks, host names or *.domain patterns refused besides the built-in rules.",
    )
    only_allowed: bool = Field(
        default=False, description="Refuse every destination the allow list does not name."
    )
    refuse_own_ports: bool = Field(
        default=True, description="Refuse Vigil's own listening ports on this host's loopback."
    )

    @field_validator("allow", "deny")
    @classmethod
    def _patterns(cls, entries: list[str]) -> list[str]:
        from vigil.outbound_policy import parse_pattern  # the policy module imports these settings

        for entry in entries:
            parse_pattern(entry)
        return entries


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VIGIL_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    data_dir: Path = Path(".vigil")
    admin_token: SecretStr | None = None
    database_url: SecretStr | None = Field(
        default=None, description="SQLAlchemy async URL; default SQLite in the data directory."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Encrypts the secrets stored in the database (agents' headers, webhook secrets "
        "and headers, Slack URLs): 32 bytes in base64 (`vigil secrets generate-key`). Several, "
        "comma-separated, while rotating: the first encrypts, all decrypt. Default: the key file.",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="A file holding the secret key(s), like VIGIL_SECRET_KEY. Default: "
        "<data_dir>/secret.key, generated by `vigil up` on its first start.",
    )
    nats_url: SecretStr | None = Field(
        default=None,
        description="Use this NATS server or cluster (comma-separated URLs); may carry credentials "
        "(nats://user:password@host:4222 or nats://token@host:4222).",
    )
    nats_creds_file: Path | None = Field(
        default=None, description="A NATS credentials file (user JWT and nkey seed) for VIGIL_NATS_URL."
    )
    nats_nkey_seed_file: Path | None = Field(
        default=None, description="A file holding the nkey seed Vigil signs in to VIGIL_NATS_URL with."
    )
    config_file: Path | None = Field(default=None, description="A vigil.yaml applied at start.")
    runbooks_dir: Path | None = Field(
        default=None,
        description="Runbooks loaded at start: <dir>/<project name or id>/<runbook id>.yaml.",
    )

    host: str = Field(
        default="127.0.0.1",
        description="Address the receivers, the API and the probes listen on: loopback only unless set; "
        "0.0.0.0 (or ::) for every interface, as the image and the Helm chart set it.",
    )
    otlp_http_port: int = Field(default=4318, ge=0, le=65535)
    otlp_grpc_port: int = Field(default=4317, ge=0, le=65535)
    api_port: int = Field(default=8080, ge=0, le=65535)
    ops_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="/healthz, /readyz and /metrics of the pipeline and sink services.",
    )

    max_request_bytes: int = Field(default=16 * MiB, ge=1024, description="After decompression.")
    max_inflight_ingest_bytes: int = Field(
        default=256 * MiB,
        ge=MiB,
        description="Memory held by exports in progress (bodies as read, unpacked and parsed); "
        "over it ingest sheds (429).",
    )
    admission: AdmissionSettings = Field(default_factory=AdmissionSettings)
    max_api_body_bytes: int = Field(
        default=4 * MiB, ge=1024, description="Largest body the management API reads."
    )
    key_cache_ttl_s: float = Field(default=5.0, ge=0)
    pipeline_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="`vigil up` only: run routing and delivery in this many processes of their own "
        "(0: in the `vigil up` process).",
    )

    bus: BusSettings = Field(default_factory=BusSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    detect: DetectSettings = Field(default_factory=DetectSettings)
    workflow: WorkflowSettings = Field(default_factory=WorkflowSettings)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    investigate: InvestigateSettings = Field(default_factory=InvestigateSettings)

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "console"

    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'vigil.db').resolve()}"
