"""One typed, fail-fast settings object.

Only entry points (``cli.py``, the server start-up) call :func:`get_settings`; everything else
receives a :class:`Settings` instance. Every field can be set from the environment with the
``PROGNOS_`` prefix (``PROGNOS_HTTP_PORT=9000``) or from a ``.env`` file in the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "default_cmapss_dir", "default_data_dir", "get_settings"]

# Where the C-MAPSS data lies beside a checkout of the repository (never inside it).
_SHARED_CMAPSS = Path(__file__).resolve().parents[3] / "shared" / "data" / "cmapss"


def default_cmapss_dir() -> Path | None:
    """The conventional location of the C-MAPSS files, if it exists on this machine."""
    for candidate in (_SHARED_CMAPSS, Path.cwd().parent / "shared" / "data" / "cmapss"):
        if (candidate / "train_FD001.txt").exists():
            return candidate
    return None


def default_data_dir() -> Path:
    """Where state lives when ``PROGNOS_DATA_DIR`` is not set: the nearest ``.prognos/`` in the current
    directory or one of its parents, else ``~/.prognos``. ``make demo`` keeps its state in ``.prognos/`` of
    the checkout, so ``prognos`` run anywhere inside the checkout reads the demo's fleet, keys and models."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".prognos").is_dir():
            return folder / ".prognos"
    return Path.home() / ".prognos"


class Settings(BaseSettings):
    """All knobs of prognos. Units are in the field names or descriptions."""

    model_config = SettingsConfigDict(
        env_prefix="PROGNOS_", env_file=".env", extra="ignore", validate_default=True
    )

    # --- data -------------------------------------------------------------------------------
    cmapss_dir: Path | None = Field(default_factory=default_cmapss_dir, description="C-MAPSS text files")
    data_dir: Path = Field(default_factory=default_data_dir, description="state: database, bundles, registry "
                           "(default: the nearest .prognos/ in the current directory or a parent, else ~/.prognos)")

    # --- serving ----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    bundle: Path | None = None
    admin_token: str | None = Field(default=None, description="bearer token with admin rights")
    max_readings: int = Field(default=500, ge=1, description="readings per predict request")
    max_queue: int = Field(default=1024, ge=1, description="queued windows before 503")
    max_memory_mb: float | None = Field(default=None, gt=0, description="RSS above which requests get 503")
    batch_max_size: int = Field(default=256, ge=1, description="windows per model call")
    batch_max_wait_ms: float = Field(default=2.0, ge=0, description="longest a request waits for a batch")
    cache_size: int = Field(default=4096, ge=0, description="cached predictions (0 disables)")
    explain_method: Literal["occlusion", "integrated_gradients"] = Field(
        default="occlusion", description="how explain=true attributes the RUL: occlusion (chosen by the faithfulness "
        "table of docs/model-card.md) or integrated_gradients (bundles with a gradient graph; others fall back to "
        "occlusion)")
    cache_ttl_s: float = Field(default=300.0, gt=0)
    # The one status rule (prognos.status): these judge the interval's LOWER bound, for /predict,
    # the fleet's engine status and its rul_low alerts alike.
    warning_rul: float = Field(default=40.0, ge=0, description="status 'warning': interval lower bound below "
                               "this (cycles)")
    critical_rul: float = Field(default=15.0, ge=0, description="status 'critical': interval lower bound below "
                                "this (cycles)")
    # Hysteresis of a stored status (prognos.status.HeldStatus): worse at once, better only after
    # this many readings in a row were better. 10: an improvement must last 10 cycles (about 5% of
    # an FD001 life) before an operator is told; a real improvement (maintenance) lasts far longer.
    status_hold_readings: int = Field(default=10, ge=1, description="readings in a row a better status must "
                                      "hold before the fleet's stored status eases (1: at once)")
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    log_sample_rate: float = Field(default=0.1, ge=0, le=1, description="share of successes logged")
    log_level: str = "INFO"

    # --- serving extras (owned by the serving work) -----------------------------------------
    max_batch_requests: int = Field(default=1024, ge=1, description="engines per batch request")
    http_max_in_flight: int | None = Field(default=256, ge=1, description="HTTP requests in flight before 503 "
                                           "(health, readiness and metrics exempt); unset: no cap")
    batch_inline_max: int = Field(default=0, ge=0, description="model calls of at most this many windows run "
                                  "on the event loop (a thread hand-over costs more); 0: always the model thread")
    sagemaker: bool = Field(default=False, description="speak the SageMaker container contract instead")
    sagemaker_port: int = Field(default=8080, ge=0, le=65535, description="port of /ping and /invocations")
    sagemaker_endpoint: str | None = Field(default=None, description="remote SageMaker endpoint (local fallback)")
    sagemaker_timeout_s: float = Field(default=1.0, gt=0, description="remote endpoint timeout before fallback")
    aws_region: str | None = Field(default=None, description="AWS region of the remote endpoint")
    log_json: bool = Field(default=True, description="JSON log lines (false: human-readable console)")
    # gRPC (serving/grpc): message limits, keepalive, live-stream memory bounds.
    grpc_max_message_mb: float = Field(default=4.0, gt=0, description="largest gRPC message in or out (MiB)")
    grpc_keepalive_s: float = Field(default=60.0, gt=0, description="ping a connection idle this long (s)")
    grpc_keepalive_timeout_s: float = Field(default=20.0, gt=0, description="close if a ping is unanswered (s)")
    grpc_min_ping_interval_s: float = Field(default=10.0, ge=0, description="shortest client ping interval (s)")
    grpc_max_concurrent_rpcs: int | None = Field(default=None, ge=1, description="in-flight RPCs, then refused")
    grpc_stream_history: int = Field(default=128, ge=1, description="readings kept per engine in a stream")
    grpc_stream_max_engines: int = Field(default=1000, ge=1, description="engines kept per stream (LRU)")
    # Edge limits and TLS (serving/http, serving/grpc; docs/security.md).
    http_max_body_mb: float = Field(default=8.0, gt=0, le=1024, description="largest JSON body (MiB); 413 above, "
                                    "refused before it is parsed")
    http_max_upload_mb: float = Field(default=64.0, gt=0, le=4096, description="largest file upload (MiB); 413 above")
    http_max_concurrent_uploads: int = Field(default=2, ge=1, description="uploads parsed at once; more get 503")
    http_max_in_flight_per_client: int | None = Field(default=64, ge=1, description="HTTP requests of one client "
                                                      "(address + Authorization) in flight before 429; unset: no cap")
    http_body_timeout_s: float | None = Field(default=30.0, gt=0, description="a request's body must arrive within "
                                              "this of its start (s), else 408 and the connection is closed")
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="proxies whose X-Forwarded-For / -Proto are trusted (addresses or "
        "networks, a,b; '*' any); empty: none, the client address is the TCP peer's")
    auth_failure_rate_limit_per_s: float = Field(default=10.0, ge=0, description="401 answers per second per client "
                                                 "address, then 429 (0: no limit)")
    auth_failure_rate_limit_burst: int = Field(default=100, ge=1, description="... and their burst")
    http_header_timeout_s: float = Field(default=10.0, gt=0, description="a connection must finish its request "
                                         "line and headers within this (s), else it is closed")
    http_keepalive_s: float = Field(default=5.0, gt=0, description="idle keep-alive connections closed after (s)")
    anonymous_rate_limit_per_s: float = Field(default=50.0, ge=0, description="predict requests per second per "
                                              "client address without an API key (0: no limit)")
    anonymous_rate_limit_burst: int = Field(default=100, ge=1, description="... and their burst")
    tls_cert_file: Path | None = Field(default=None, description="PEM certificate: HTTPS for REST and TLS for gRPC")
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file")
    database_timeout_s: float = Field(default=5.0, gt=0, description="connect / lock wait before a write is "
                                      "answered 503 (s)")
    storage_min_free_mb: float = Field(default=16.0, ge=0, description="/ready turns 503 when the SQLite "
                                       "database's file system has less free space than this (MiB)")

    # --- fleet ------------------------------------------------------------------------------
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    # Older names of warning_rul / critical_rul (one status rule, one pair of thresholds): either
    # name sets both; different values under the two names are a configuration error.
    alert_warning_rul: float | None = Field(default=None, ge=0, description="same as warning_rul")
    alert_critical_rul: float | None = Field(default=None, ge=0, description="same as critical_rul")
    alert_stuck_readings: int = Field(default=25, ge=2, description="identical readings in a row = stuck sensor")
    # Resolve debounce (prognos.fleet.alerts.Debounce): an alert that flaps open and shut tells an
    # operator nothing. 3 verdicts and 30 s: a replayed engine sends a reading every second or so.
    alert_resolve_readings: int = Field(default=3, ge=1, description="verdicts in a row that must find an alert's "
                                        "condition clear before it resolves")
    alert_min_open_s: float = Field(default=30.0, ge=0, description="an alert resolves automatically only after "
                                    "it has been open this long (s)")
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list, description="JSON list or a,b")
    webhook_max_attempts: int = Field(default=5, ge=1, description="tries per webhook delivery")
    webhook_backoff_s: float = Field(default=0.5, gt=0, description="first retry delay (s), doubled per try")
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    rate_limit_per_s: float = Field(default=200.0, ge=0, description="requests per second per API key (0: no limit)")
    rate_limit_burst: int = Field(default=400, ge=1, description="requests a key may send at once")
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, description="allowed browser origins")
    plan_cache_s: float = Field(default=5.0, ge=0, description="a maintenance plan is reused this long (s); one "
                                "is computed at a time (0: every request computes, one at a time)")
    retention_days: float | None = Field(default=None, gt=0, description="keep data this long (days)")
    retention_interval_s: float = Field(default=3600.0, gt=0, description="how often the server runs retention (s)")

    # --- scale-out: MQTT ingestion (fleet/mqtt.py) and the inference pool (serving/pool.py) --
    mqtt_host: str = Field(default="127.0.0.1", description="MQTT broker host")
    mqtt_port: int = Field(default=1883, ge=1, le=65535, description="MQTT broker port (8883 is usual with TLS)")
    mqtt_username: str | None = Field(default=None, description="broker user name")
    mqtt_password: str | None = Field(default=None, repr=False, description="broker password")
    mqtt_tls: bool = Field(default=False, description="connect with TLS (system CAs unless mqtt_ca_file)")
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle (PEM) that signed the broker's cert")
    mqtt_cert_file: Path | None = Field(default=None, description="client certificate (PEM) for mutual TLS")
    mqtt_key_file: Path | None = Field(default=None, description="client key (PEM) for mutual TLS")
    mqtt_client_id: str = Field(default="prognos-ingest", min_length=1, description="the subscriber's session id")
    mqtt_topic_prefix: str = Field(default="prognos", min_length=1, description="topics: PREFIX/engines/ID/readings")
    mqtt_reconnect_min_s: int = Field(default=1, ge=1, description="first reconnect delay (s), doubled per try")
    mqtt_reconnect_max_s: int = Field(default=30, ge=1, description="longest reconnect delay (s)")
    inference_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="gateway role: gRPC inference replicas host:port, a,b")
    inference_timeout_s: float = Field(default=2.0, gt=0, description="deadline of one inference call (s)")
    inference_health_interval_s: float = Field(default=1.0, gt=0, description="replica health-check period (s)")

    @field_validator("alert_critical_rul")
    @classmethod
    def _alert_critical_below_warning(cls, v: float | None, info: object) -> float | None:
        warning = getattr(info, "data", {}).get("alert_warning_rul")
        if v is not None and warning is not None and v > warning:
            raise ValueError(f"alert_critical_rul ({v}) must not exceed alert_warning_rul ({warning})")
        return v

    @model_validator(mode="after")
    def _one_pair_of_status_thresholds(self) -> Settings:
        for new, old in (("warning_rul", "alert_warning_rul"), ("critical_rul", "alert_critical_rul")):
            given, alias = getattr(self, new), getattr(self, old)
            if alias is None:
                setattr(self, old, given)
            elif new in self.model_fields_set and alias != given:
                raise ValueError(f"{new} ({given}) and its older name {old} ({alias}) differ; set one")
            else:
                setattr(self, new, alias)
        if self.critical_rul > self.warning_rul:
            raise ValueError(f"critical_rul ({self.critical_rul}) must not exceed warning_rul ({self.warning_rul})")
        return self

    @field_validator("webhook_urls", "cors_origins", "inference_addresses", "forwarded_allow_ips", mode="before")
    @classmethod
    def _string_list(cls, v: object) -> object:
        # Environment variables hold either a JSON list or a comma-separated string.
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return v

    # --- lifecycle --------------------------------------------------------------------------
    registry_dir: str | None = Field(
        default=None, description="model registry: a directory or s3://bucket/prefix; default data_dir/registry"
    )
    registry_cache_dir: Path | None = Field(
        default=None, description="local copies of fetched registry bundles; default data_dir/registry-cache"
    )
    registry_poll_s: float = Field(default=5.0, gt=0, description="how often a server re-reads its model alias (s)")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; when set, `prognos train` tracks runs (default store: "
        "sqlite:///<data_dir>/mlflow.db)"
    )
    mlflow_experiment: str = Field(default="prognos", min_length=1, description="MLflow experiment name")
    optuna_storage: str | None = Field(
        default=None, description="Optuna RDB URL for `prognos tune`; default sqlite:///<data_dir>/optuna.db"
    )
    # drift monitoring (lifecycle/drift/): capture, thresholds, the server's periodic job
    drift_sample_rate: float = Field(default=0.1, ge=0, le=1, description="share of served predictions captured")
    drift_buffer_size: int = Field(default=5000, ge=10, description="captured samples kept in memory (ring buffer)")
    drift_capture_max_rows: int = Field(default=50_000, ge=0, description="rows of <data_dir>/drift/capture.jsonl "
                                        "before it rotates (one old file kept; 0: memory only)")
    drift_interval_s: float = Field(default=60.0, gt=0, description="how often the server computes drift (s)")
    drift_min_samples: int = Field(default=100, ge=10, description="captured samples needed for a verdict")
    drift_min_engines: int = Field(default=10, ge=1, description="... from at least this many engines")
    drift_psi_threshold: float = Field(default=0.25, gt=0, description="a drifted quantity has PSI above this")
    drift_ks_effect: float = Field(default=0.3, gt=0, le=1, description="... and a KS gap (max CDF distance) above")
    drift_ks_pvalue: float = Field(default=0.01, gt=0, lt=1, description="... with a KS p-value below this")
    drift_min_share: float = Field(default=0.3, gt=0, le=1, description="share of model features that must drift "
                                   "for the drift verdict (and alert)")
    # shadow canary (lifecycle/canary.py) and ground truth (lifecycle/feedback.py)
    canary_fraction: float = Field(default=0.0, ge=0, le=1, description="share of predictions also scored by the "
                                   "registry's `candidate` version in shadow (answers come from production)")
    canary_max_pending: int = Field(default=1000, ge=1, description="shadow jobs queued before new ones are dropped")
    canary_max_rows: int = Field(default=100_000, ge=0, description="shadow predictions kept in the fleet database")
    canary_tolerance: float = Field(default=10.0, ge=0, description="two versions agree within this (cycles)")
    feedback_rul_cap: float | None = Field(default=None, gt=0, description="cap for the capped realised error "
                                           "(cycles); default: the served model's RUL cap, else 125")

    @property
    def registry_location(self) -> str:
        return self.registry_dir or str(self.data_dir / "registry")

    @property
    def registry_cache(self) -> Path:
        return self.registry_cache_dir or self.data_dir / "registry-cache"

    @property
    def mlflow_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"

    @property
    def optuna_storage_url(self) -> str:
        return self.optuna_storage or f"sqlite:///{self.data_dir / 'optuna.db'}"

    @field_validator("critical_rul")
    @classmethod
    def _critical_below_warning(cls, v: float, info: object) -> float:
        data = getattr(info, "data", {})
        warning = data.get("warning_rul")
        if warning is not None and v > warning:
            raise ValueError(f"critical_rul ({v}) must not exceed warning_rul ({warning})")
        return v

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'prognos.db'}"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, ``.env`` and explicit overrides (CLI options win).

    Raises :class:`prognos.errors.ConfigError` with the offending field named.
    """
    from pydantic import ValidationError as PydanticValidationError

    from prognos.errors import ConfigError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"setting {field} (PROGNOS_{field.upper()}): {first['msg']}") from None
