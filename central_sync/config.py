"""Central service configuration: one root model of section models, read from YAML and the environment.

Precedence (highest first): `CENTRAL_SECTION__FIELD` variables, the short names in FLAT_ENV
(`CENTRAL_DATABASE_URL`, `CENTRAL_MQTT_URL`, `CENTRAL_KAFKA_BOOTSTRAP`), the seed's `DATABASE_URL`, the YAML file,
the defaults below. Every model forbids unknown keys, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from central_sync.errors import ConfigError
from shared_models.settings import ConfigError as SettingsError
from shared_models.settings import build_tree, validate

ENV_PREFIX = "CENTRAL_"

#: Environment names honoured besides CENTRAL_SECTION__FIELD, lowest precedence first: name -> (section, field).
FLAT_ENV: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("database", "url"),
    "CENTRAL_DATABASE_URL": ("database", "url"),
    "CENTRAL_MQTT_URL": ("mqtt", "url"),
    "CENTRAL_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpConfig(_Section):
    """Where the health/dashboard HTTP API listens."""

    host: str = Field("0.0.0.0", description="Listen address.")
    port: int = Field(8080, ge=0, le=65535, description="Listen port (0 picks a free one).")


class DatabaseConfig(_Section):
    """PostgreSQL, through SQLAlchemy async + asyncpg."""

    url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/zakpos",
        description="postgresql:// or postgresql+asyncpg:// URL of the central database.",
    )
    pool_size: int = Field(5, ge=1, le=100, description="Connections kept open per replica.")
    connect_timeout_seconds: float = Field(10.0, gt=0, description="Give up opening a connection after this.")
    migrate_on_start: bool = Field(True, description="`serve` upgrades the schema to head before ingesting.")

    @field_validator("url")
    @classmethod
    def _asyncpg_driver(cls, value: str) -> str:
        """Plain postgresql:// (or postgres://) URLs get the asyncpg driver."""
        for plain in ("postgresql://", "postgres://"):
            if value.startswith(plain):
                return "postgresql+asyncpg://" + value.removeprefix(plain)
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a postgresql:// or postgresql+asyncpg:// URL")
        return value


class MqttConfig(_Section):
    """The broker the nodes publish to; central reads it through a shared subscription."""

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://HOST:PORT or mqtts://HOST:PORT.")
    client_id: str = Field(
        default_factory=lambda: f"central-{socket.gethostname()}",
        min_length=1,
        description="Client id of THIS replica; keep it stable across restarts so the persistent session survives.",
    )
    username: str | None = Field(None, description="MQTT user name.")
    password: str | None = Field(None, description="MQTT password.")
    tls_ca_file: Path | None = Field(None, description="CA bundle for mqtts (system CAs when unset).")
    tls_cert_file: Path | None = Field(None, description="Client certificate for a broker that requires one (mqtts).")
    tls_key_file: Path | None = Field(None, description="Private key of tls_cert_file.")

    def tls_files(self) -> tuple[str | None, str | None, str | None]:
        """(CA bundle, client certificate, client key) for paho's `tls_set`; None where not configured."""
        return tuple(str(path) if path else None  # type: ignore[return-value]
                     for path in (self.tls_ca_file, self.tls_cert_file, self.tls_key_file))
    keepalive_seconds: int = Field(30, ge=5, description="MQTT keepalive.")
    session_expiry_seconds: int = Field(
        7 * 86400, ge=0, description="The broker keeps our session (subscription and queued messages) this long."
    )
    receive_maximum: int = Field(
        2000, ge=1, le=65535, description="Unacknowledged QoS 1 messages the broker may have in flight to us."
    )
    reconnect_min_seconds: int = Field(1, ge=1, description="First reconnect delay; doubles up to the max.")
    reconnect_max_seconds: int = Field(30, ge=1, description="Longest reconnect delay.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must be mqtt://HOST:PORT or mqtts://HOST:PORT")
        return value


class IngestConfig(_Section):
    """How upstream messages are batched into PostgreSQL transactions."""

    batch_max_messages: int = Field(500, ge=1, le=10_000, description="Most messages written in one transaction.")
    batch_max_wait_ms: float = Field(
        20.0, ge=0, description="After the first message of a batch, wait at most this long for more."
    )
    retry_initial_seconds: float = Field(0.5, gt=0, description="First delay before retrying a failed write.")
    retry_max_seconds: float = Field(30.0, gt=0, description="Longest delay between write retries.")


class RateLimitConfig(_Section):
    """Quotas of the authenticated HTTP API (/api/v1/ except health): 429 QUOTA_EXCEEDED past them, 0 disables.

    Higher than the node's OCR quotas (100/min, 1000/h): one dashboard tab refreshing every 5 s asks for 8 views
    each time, 96 requests a minute. Counted per replica (central_sync/ratelimit.py).
    """

    user_per_minute: int = Field(
        300, ge=0, description="Requests one user (token `sub`) may make in any 60 s window; 0 disables."
    )
    shop_per_hour: int = Field(
        20_000, ge=0,
        description="Requests the users of one shop (token `shop_id`) may make together in any 3600 s window; "
        "operator tokens belong to no shop and have the user quota only; 0 disables.",
    )


class KafkaConfig(_Section):
    """The outbox relay to Kafka (acks=all; no idempotence or transactions, see STACK-NOTES)."""

    enabled: bool = Field(True, description="Run the relay; when false, outbox rows wait in PostgreSQL.")
    bootstrap: str = Field("127.0.0.1:9092", min_length=1, description="Comma-separated HOST:PORT list.")
    topic_completed: str = Field("ocr.completed", description="Topic of completed jobs.")
    topic_failed: str = Field("ocr.failed", description="Topic of failed jobs.")
    topic_metrics: str = Field("ocr.metrics", description="Topic of node metrics.")
    create_topics: bool = Field(True, description="Create the topics at start-up when missing.")
    partitions: int = Field(3, ge=1, description="Partitions of topics created by the relay.")
    replication_factor: int = Field(1, ge=1, description="Replication of topics created by the relay.")
    batch_size: int = Field(500, ge=1, le=10_000, description="Outbox rows sent per relay round.")
    poll_interval_seconds: float = Field(1.0, gt=0, description="Idle relay looks for rows this often.")
    request_timeout_ms: int = Field(15_000, ge=1000, description="A send not acknowledged by then fails.")
    retry_initial_seconds: float = Field(0.5, gt=0, description="First back-off after a Kafka failure.")
    retry_max_seconds: float = Field(30.0, gt=0, description="Longest back-off between Kafka attempts.")
    retention_hours: float = Field(24.0, gt=0, description="Sent outbox rows are deleted after this long.")


class DashboardConfig(_Section):
    """The dashboard page (/dashboard/) and its JSON API (/api/v1/dashboard/...)."""

    jwt_secret: str | None = Field(
        None,
        description="HS256 secret that signs the bearer tokens of the dashboard and of the model API /api/v1/models "
        "(claims: sub; role 'operator' sees every shop, otherwise shop_id limits the caller to that shop; any valid "
        "token may download bundles). While unset those APIs answer 503.",
    )
    leeway_seconds: int = Field(30, ge=0, description="Clock skew tolerated on a token's exp.")
    max_range_days: int = Field(93, ge=1, description="Longest time range one dashboard query may cover.")


class RegistryConfig(_Section):
    """The model registry (DESIGN §6): stored bundles, their signatures, and where their tars live."""

    storage_dir: Path = Field(
        Path("data/registry"),
        description="Folder of the stored bundle tars (NAME/VERSION/bundle.tar); shared by `central-sync models` "
        "and every serving replica (a volume), and backed up with the database.",
    )
    trusted_keys: list[Path] = Field(
        default_factory=list,
        description="PEM files of the Ed25519 public keys whose bundle signatures uploads must carry (and whose "
        "file digests are checked); when empty an upload checks the files and the signature's form only.",
    )
    publish_timeout_seconds: float = Field(
        30.0, gt=0, description="`central-sync models` gives up when the broker has not taken the announcement by then."
    )

    @field_validator("trusted_keys", mode="before")
    @classmethod
    def _one_key_is_a_list(cls, value: object) -> object:
        """CENTRAL_REGISTRY__TRUSTED_KEYS=/etc/keys/a.pem (one path) is accepted as well as a [a, b] list."""
        return [value] if isinstance(value, str | Path) else value


class CentralConfig(_Section):
    """Root configuration of the central service."""

    http: HttpConfig = Field(default_factory=HttpConfig, description="HTTP listener.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="PostgreSQL.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT broker.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Ingest batching.")
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig, description="HTTP API request quotas.")
    kafka: KafkaConfig = Field(default_factory=KafkaConfig, description="Kafka relay.")
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig, description="Dashboard page and API.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="Model bundles and rollouts.")

    def topic_for(self, kind: str) -> str:
        """Kafka topic of an outbox kind: completed, failed or metrics."""
        return {
            "completed": self.kafka.topic_completed,
            "failed": self.kafka.topic_failed,
            "metrics": self.kafka.topic_metrics,
        }[kind]


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> CentralConfig:
    """Build the config from an optional YAML file and the environment."""
    text = None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError([f"{path}: {err}"]) from err
    env = os.environ if environ is None else environ
    try:
        return validate(CentralConfig, build_tree(text, env, ENV_PREFIX, FLAT_ENV, source=str(path)))
    except SettingsError as err:
        raise ConfigError(err.problems) from err
