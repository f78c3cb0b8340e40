"""Service configuration from the environment (prefix DATAGATE_), with embedded defaults."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

NotifyEvent = Literal["passed", "warned", "failed", "error"]


def _alert_events() -> list[NotifyEvent]:
    return ["failed", "error"]


def _require_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    return url


class NotifyTarget(BaseModel):
    """One operator-configured notification target (an item of DATAGATE_NOTIFY)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook", "slack"]
    # A secret: a Slack incoming-webhook URL is its own credential. Never logged whole.
    url: SecretStr
    events: list[NotifyEvent] = Field(default_factory=_alert_events, min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        _require_http_url(value.get_secret_value())
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATAGATE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"),
        description="SQLite file, stored uploads and report artifacts live here.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the report store; default a SQLite file in data_dir.",
    )
    expectations_dir: Path = Field(
        default=Path("./expectations"),
        description="Folder of Great Expectations suite JSON files, one per suite.",
    )
    max_upload_bytes: int = Field(
        default=1024**3, gt=0, description="Largest accepted upload, per file, in bytes."
    )
    max_rows: int = Field(default=10_000_000, gt=0, description="Largest accepted dataset, rows.")
    max_columns: int = Field(
        default=2_000,
        gt=0,
        description="Largest accepted dataset, columns; checked from the header or schema "
        "before any row is read, and the bound of suite inference.",
    )
    max_decoded_bytes: int = Field(
        default=4 * 1024**3,
        gt=0,
        description="Largest dataset once decoded (Arrow bytes), counted while reading, so a "
        "small compressed file cannot expand without bound.",
    )
    max_nesting_depth: int = Field(
        default=64,
        gt=0,
        description="Deepest nesting of arrays and objects in a JSON or NDJSON file.",
    )
    workers: int = Field(default=2, ge=1, description="Validation worker processes.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json` writes one JSON object per log line."
    )
    sample_values: int = Field(
        default=20, ge=0, le=1000, description="Offending values kept per check in a report."
    )
    max_failing_rows: int = Field(
        default=10_000,
        ge=0,
        le=10_000_000,
        description="Unexpected rows kept per failed row-level expectation, as a Parquet file "
        "with the report (GET /v1/reports/{id}/failing-rows); 0 keeps none.",
    )
    host: str = Field(default="127.0.0.1", description="Address `datagate serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `datagate serve` binds.")
    public_url: str | None = Field(
        default=None,
        description="Base URL of absolute report links (and the origin browsers must post "
        "from); default: links are relative paths, never built from the request's Host.",
    )

    # Jobs and limits
    max_queue: int = Field(
        default=100, ge=0, description="Validations waiting for a worker before answering 503."
    )
    job_timeout_s: float = Field(
        default=600,
        gt=0,
        description="A validation running longer is stopped (error: timeout). Minutes, not an "
        "hour: a stuck job holds a worker that every other client shares.",
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="Starts of a job (after crashes) before it ends in error."
    )
    job_heartbeat_s: float = Field(default=5, gt=0, description="Running jobs' heartbeat period.")
    job_stale_after_s: float = Field(
        default=60, gt=0, description="A running job without heartbeat this long is taken over."
    )
    job_poll_s: float = Field(default=1.0, gt=0, description="How often replicas look for jobs.")
    max_jobs_per_worker: int = Field(
        default=200, ge=1, description="A worker process is replaced after this many jobs."
    )
    report_retention_days: int = Field(
        default=0, ge=0, description="Delete reports and artifacts older than this (0: keep)."
    )
    shutdown_grace_s: float = Field(
        default=25, ge=0, description="On SIGTERM, running jobs get this long before release."
    )
    body_timeout_s: float = Field(
        default=300, gt=0, description="A request body that stalls this long is refused (408)."
    )

    # Access control
    api_keys: str = Field(
        default="",
        description="Comma-separated `key:scope` pairs, scope `read` or `write` (write "
        "implies read). Empty: no keys.",
    )
    auth: Literal["enabled", "disabled"] = Field(
        default="enabled",
        description="`disabled` accepts requests without keys on any address (explicit opt-out).",
    )
    public_reads: bool = Field(
        default=False, description="Reports and pages readable without a key."
    )
    login_max_failures: int = Field(
        default=10,
        ge=1,
        description="Wrong keys per client address per minute (sign-ins at /login and "
        "`Authorization: Bearer` keys alike) before that address gets 429 with Retry-After.",
    )

    # Callbacks
    callback_hosts: str = Field(
        default="",
        description="Comma-separated origins callbacks may be sent to, e.g. "
        "`https://hooks.example.com:8443`; a bare host allows its schemes' default ports only.",
    )
    callback_secret: str = Field(default="", description="HMAC-SHA256 key signing callback bodies.")
    notify: list[NotifyTarget] = Field(
        default_factory=list,
        description="JSON list of targets told every report's verdict, e.g. "
        '`[{"kind": "slack", "url": "https://hooks.slack.com/services/...", '
        '"events": ["failed", "error"]}]`; kinds `webhook` (signed with '
        "DATAGATE_CALLBACK_SECRET) and `slack`; events `passed`, `warned`, `failed`, `error`.",
    )

    # OpenLineage: every stored report as a run event to the operator's collector
    openlineage_url: str | None = Field(
        default=None,
        description="Base URL of an OpenLineage collector (Marquez: `http://marquez:5000`); each "
        "stored report is sent to it as a run event with data quality facets. Empty: none.",
    )
    openlineage_endpoint: str = Field(
        default="api/v1/lineage",
        description="Path of the collector's lineage endpoint, joined to DATAGATE_OPENLINEAGE_URL.",
    )
    openlineage_api_key: SecretStr | None = Field(
        default=None, description="Sent to the collector as `Authorization: Bearer <key>`."
    )
    openlineage_namespace: str = Field(
        default="datagate",
        min_length=1,
        description="Namespace of datagate's jobs in lineage, and of uploaded datasets.",
    )

    # Batch references: data the service reads where it lives (files, S3, SQL connections)
    data_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated folders `file://` references may read under. Empty: none.",
    )
    allowed_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description='S3 buckets references may read, comma-separated or a JSON list ["a", "b"].',
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint, e.g. http://minio:9000; default AWS."
    )
    s3_key: SecretStr | None = Field(default=None, description="S3 access key id.")
    s3_secret: SecretStr | None = Field(default=None, description="S3 secret access key.")
    s3_region: str | None = Field(default=None, description="S3 region name.")
    s3_read_timeout_s: float = Field(
        default=60, gt=0, description="An S3 request that stalls this long answers 504."
    )
    connections: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON object of SQL connection name to SQLAlchemy URL, e.g. {"warehouse": '
        '"postgresql+psycopg://user:pw@db/dw"}. Requests name a connection, never a URL.',
    )
    connections_file: Path | None = Field(
        default=None,
        description="JSON or YAML file of connection name to SQLAlchemy URL, merged over "
        "`connections`.",
    )
    sql_statement_timeout_s: float = Field(
        default=300, gt=0, description="A SQL statement running this long is cancelled (504)."
    )
    sql_allow_writable_role: bool = Field(
        default=False,
        description="Start and run SQL references even when a connection's role can write or "
        "is a superuser (logged at ERROR). Default: such a connection stops the start.",
    )
    reference_sample_rows: int = Field(
        default=100_000, ge=1, description="Rows of a SQL batch sampled for deepchecks."
    )

    # Suites are data: how large one may be, how long one check may run, where suite SQL runs
    max_suite_expectations: int = Field(
        default=1_000, ge=1, description="Most expectations one suite may hold (more: 422)."
    )
    suites_poll_s: float = Field(
        default=2,
        ge=0,
        description="How often the expectations folder is looked at for added, changed or "
        "removed suite files, which are checked and loaded without a restart (0: never).",
    )
    check_timeout_s: float = Field(
        default=30,
        gt=0,
        description="One expectation (or one regex check) running longer becomes an error row.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names (comma-separated) a service answers to besides loopback names "
        "and DATAGATE_PUBLIC_URL's host. Checked on every request when set, and always on a "
        "service without API keys (DNS rebinding); empty with keys: any Host.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Addresses (comma-separated, or `*`) whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed: the proxy in front of the service. Empty: "
        "none, so a client cannot choose its own address for the wrong-key throttle.",
    )
    suite_sql_connections: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Connections on which suites may run their own SQL "
        "(`unexpected_rows_expectation`), read-only and one statement. Empty: none.",
    )

    @field_validator(
        "data_roots", "allowed_buckets", "suite_sql_connections", "allowed_hosts", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # The docker stack writes a JSON list; people write "a,b": accept both.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("openlineage_url")
    @classmethod
    def _lineage_url(cls, value: str | None) -> str | None:
        return _require_http_url(value) if value else None

    @property
    def openlineage_events_url(self) -> str | None:
        """Where run events are POSTed: the collector's URL and its endpoint, or None."""
        if not self.openlineage_url:
            return None
        return f"{self.openlineage_url.rstrip('/')}/{self.openlineage_endpoint.lstrip('/')}"

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'datagate.db').resolve()}"
        return self

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def ensure_dirs(self) -> None:
        for folder in (self.data_dir, self.uploads_dir, self.artifacts_dir):
            folder.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
