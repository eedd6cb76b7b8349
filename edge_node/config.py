"""Edge node configuration: one root model of section models, read from YAML and the environment.

Precedence (highest first): `EDGE_SECTION__FIELD` variables, the seed's variable names (see SEED_ENV),
the YAML file, the embedded defaults. With nothing set, the node serves on 0.0.0.0:8000 with SQLite under
./data, the bundled engines and sync disabled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared_models.settings import ConfigError, build_tree, validate

ENV_PREFIX = "EDGE_"
__all__ = ["ConfigError", "EdgeConfig", "load_config"]

#: The seed's environment names, honoured as aliases: name -> (section, field).
SEED_ENV: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("storage", "database_url"),
    "MAX_IMAGE_SIZE_MB": ("limits", "max_image_size_mb"),
    "PROCESSING_TIMEOUT_SECONDS": ("worker", "processing_timeout_seconds"),
    "OCR_MODEL_PRIMARY": ("ocr", "primary"),
    "OCR_MODEL_FALLBACK": ("ocr", "fallback"),
    "ENABLE_GPU": ("ocr", "enable_gpu"),
    "EDGE_JWT_SECRET": ("auth", "jwt_secret"),
    "EDGE_SHOP_ID": ("auth", "shop_id"),
    "EDGE_NODE_ID": ("node", "node_id"),
    "EDGE_RATE_LIMIT_USER_PER_MIN": ("rate_limit", "user_per_minute"),
    "EDGE_RATE_LIMIT_SHOP_PER_HOUR": ("rate_limit", "shop_per_hour"),
}

EngineKey = Literal["ppocr", "tesseract", "trocr"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Section):
    """Where the HTTP API listens."""

    host: str = Field("0.0.0.0", description="Listen address; 0.0.0.0 serves the shop LAN.")
    port: int = Field(8000, ge=1, le=65535, description="Listen port.")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS, exact matches such as https://pos.example.com (no '*', no path).",
    )

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        """Browsers send `scheme://host[:port]` in lower case; a wildcard would defeat the allow-list."""
        normalized = []
        for origin in origins:
            parsed = urlsplit(origin.strip())
            if "*" in origin or parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError(f"{origin!r} is not an exact origin like https://pos.example.com (no wildcards)")
            if parsed.path or parsed.query or parsed.fragment or "@" in parsed.netloc:
                raise ValueError(f"{origin!r}: an origin has no path, query, fragment or user info")
            normalized.append(f"{parsed.scheme}://{parsed.netloc}".lower())
        return normalized


class NodeConfig(_Section):
    """Identity of this node."""

    node_id: str = Field("node-1", min_length=1, description="Unique id of this node within the fleet.")


class StorageConfig(_Section):
    """Local state."""

    data_dir: Path = Field(Path("./data"), description="Folder for the SQLite database, images and keys.")
    database_url: str | None = Field(
        None, description="sqlite:///PATH of the node database; default DATA_DIR/edge.sqlite3."
    )

    store_images: bool = Field(True, description="Keep uploads (encrypted) for retries and audit.")
    retention_days: float = Field(90, gt=0, description="Stored images are deleted after this many days.")
    image_key_file: Path | None = Field(
        None, description="32-byte AES key file for stored images; default DATA_DIR/keys/images.key."
    )
    image_old_key_files: list[Path] = Field(
        default_factory=list,
        description="Retired image keys: blobs written with them stay readable and are re-encrypted on read.",
    )
    purge_interval_seconds: float = Field(
        3600, gt=0, description="How often images past retention and audit rows past audit retention are purged "
        "(also once at start-up)."
    )
    job_retention_days: float = Field(
        90, gt=0,
        description="Finished jobs (their text, fields, errors, corrections and per-job metrics) are deleted after "
        "this many days without a change; their synced copies live on at central, and rows still waiting to sync "
        "stay in the outbox. Same as retention_days by default: a receipt's text is as personal as its photo.",
    )
    audit_retention_days: float = Field(
        365, gt=0,
        description="Rows of the image audit log (who read or deleted which stored image, when, why) are deleted "
        "after this many days. Longer than retention_days on purpose: the record of who saw an image must outlive "
        "the image, to answer for it after the image is gone (a year covers a yearly review).",
    )

    @property
    def key_path(self) -> Path:
        """Where the image encryption key lives."""
        return self.image_key_file or self.data_dir / "keys" / "images.key"

    @property
    def database_path(self) -> Path:
        """The SQLite file this node uses."""
        if self.database_url:
            if not self.database_url.startswith("sqlite:///"):
                raise ValueError("storage.database_url must be sqlite:///PATH on the edge node")
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.data_dir / "edge.sqlite3"


class JwtKeyConfig(_Section):
    """One verification key, selected by the token's `kid` header: an HS256 secret or an Ed25519 public key."""

    secret: str | None = Field(None, min_length=16, description="HS256 shared secret.")
    public_key_file: Path | None = Field(None, description="PEM file of an Ed25519 public key (tokens use EdDSA).")

    @model_validator(mode="after")
    def _exactly_one(self) -> JwtKeyConfig:
        if (self.secret is None) == (self.public_key_file is None):
            raise ValueError("set exactly one of secret or public_key_file")
        return self


class AuthConfig(_Section):
    """JWT verification: HS256 shared secret and/or EdDSA public key; `kid` selects among rotated keys."""

    jwt_secret: str | None = Field(
        None, description="Default HS256 secret (tokens without kid); generated and stored in DATA_DIR when unset."
    )
    jwt_public_key_file: Path | None = Field(
        None, description="Default Ed25519 public key (PEM) for EdDSA tokens without kid."
    )
    keys: dict[str, JwtKeyConfig] = Field(
        default_factory=dict, description="Keys by kid, for rotation: a token with a kid header must use one of these."
    )
    shop_id: str = Field("shop-1", min_length=1, description="The shop this node serves; tokens must carry it.")
    leeway_seconds: int = Field(30, ge=0, description="Clock skew tolerated on exp.")


class LimitsConfig(_Section):
    """Input limits."""

    max_image_size_mb: float = Field(10.0, gt=0, description="Largest upload accepted, in MB.")
    max_image_pixels: int = Field(
        50_000_000, gt=0, description="Largest declared width x height accepted (decompression bombs)."
    )
    max_batch_images: int = Field(10, ge=1, le=100, description="Images accepted by one batch request.")


class OcrConfig(_Section):
    """Engines and pipeline settings."""

    primary: EngineKey = Field("ppocr", description="Primary recognizer for English.")
    fallback: EngineKey | None = Field("tesseract", description="Fallback recognizer; null disables fallback.")
    primary_bn: EngineKey = Field("tesseract", description="Recognizer for Bengali (PP-OCRv6 has no Bengali).")
    enable_gpu: bool = Field(False, description="Use the CUDA execution provider when onnxruntime-gpu is present.")
    onnx_threads: int = Field(0, ge=0, description="Intra-op threads per onnxruntime session; 0 = cores.")
    onnx_spin_wait: bool = Field(
        False,
        description="Let idle onnxruntime threads busy-wait between operators (onnxruntime's default): slightly "
        "lower latency on an idle box, CPU taken from the other workers on a busy one.",
    )
    onnx_memory_arena: bool = Field(
        False,
        description="Keep run buffers in one onnxruntime arena shared by the PP-OCR sessions: large images run "
        "faster (no page faults), but the node keeps the largest run's buffers resident (about +150 MB peak). "
        "Off, they are returned to the system after each run.",
    )
    tessdata_dir: Path = Field(
        Path("/usr/share/tesseract-ocr/5/tessdata"), description="Folder with eng/ben traineddata."
    )
    detector_max_side: int = Field(
        960, ge=160, le=4096, description="Longest side fed to the text detector for labels and tags."
    )
    detector_max_side_documents: int = Field(
        1280, ge=160, le=4096, description="Longest side fed to the detector for receipts and invoices (small print)."
    )
    decode_max_side: int = Field(2400, ge=320, description="Large photos are decoded down to this longest side.")
    trocr_bundle: Path | None = Field(
        None,
        description="Folder of a signed trocr model bundle (made by `model-export trocr`); required when primary, "
        "fallback or primary_bn is trocr. Verified against trusted_keys before it is loaded.",
    )
    trusted_keys: list[Path] = Field(
        default_factory=list,
        description="PEM files of the Ed25519 public keys whose model-bundle signatures this node accepts.",
    )

    @field_validator("trusted_keys", mode="before")
    @classmethod
    def _one_key_is_a_list(cls, value: object) -> object:
        """EDGE_OCR__TRUSTED_KEYS=/etc/keys/a.pem (one path) is accepted as well as a [a, b] list."""
        return [value] if isinstance(value, str | Path) else value

    @model_validator(mode="after")
    def _trocr_needs_a_bundle(self) -> OcrConfig:
        if "trocr" in (self.primary, self.fallback, self.primary_bn):
            if self.trocr_bundle is None:
                raise ValueError("the trocr engine is selected but ocr.trocr_bundle (the bundle folder) is not set")
            if not self.trusted_keys:
                raise ValueError("the trocr engine is selected but ocr.trusted_keys lists no public key to verify it")
        return self


class WorkerConfig(_Section):
    """The job queue's workers."""

    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64, description="Parallel jobs.")
    processing_timeout_seconds: float = Field(30.0, gt=0, description="Upper bound of one job's processing.")
    lease_seconds: float = Field(60.0, gt=0, description="A claimed job whose lease expires is re-queued.")
    poll_interval_seconds: float = Field(1.0, gt=0, description="How often idle workers look for work.")
    max_retries: int = Field(3, ge=0, le=10, description="Retries of a retriable failure (MODEL_ERROR, TIMEOUT...).")
    retry_initial_seconds: float = Field(1.0, ge=0, description="Delay before the first retry; doubles each time.")
    retry_max_seconds: float = Field(30.0, ge=0, description="Longest delay between retries.")
    soft_queue_limit: int = Field(
        20, ge=0, description="Queued jobs past which /ocr/process answers 202 with an estimate instead of waiting."
    )
    hard_queue_limit: int = Field(
        200, ge=1, description="Queued jobs past which new uploads get 429 QUOTA_EXCEEDED with Retry-After."
    )


class RateLimitConfig(_Section):
    """Request quotas of the OCR endpoints (429 QUOTA_EXCEEDED past them); 0 disables a limit (benchmarks)."""

    user_per_minute: int = Field(100, ge=0, description="Requests one user may make in any 60 s window.")
    shop_per_hour: int = Field(1000, ge=0, description="Requests one shop may make in any 3600 s window.")


class CacheConfig(_Section):
    """Result cache keyed by image hash and options."""

    enabled: bool = Field(True, description="Answer repeated (image, options) pairs from the cache.")
    ttl_seconds: float = Field(3600, gt=0, description="How long a result stays cached.")
    negative_ttl_seconds: float = Field(600, gt=0, description="How long an undecodable upload is remembered.")


class SyncConfig(_Section):
    """Store-and-forward sync to the central service over MQTT v5."""

    enabled: bool = Field(False, description="Publish the outbox to the central broker.")
    broker_url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://HOST:PORT or mqtts://HOST:PORT.")
    username: str | None = Field(None, description="MQTT user name (per node).")
    password: str | None = Field(None, description="MQTT password.")
    tls_ca_file: Path | None = Field(None, description="CA bundle for mqtts.")
    tls_cert_file: Path | None = Field(None, description="Client certificate for mqtts with client auth.")
    tls_key_file: Path | None = Field(None, description="Client key for mqtts with client auth.")
    keepalive_seconds: int = Field(30, ge=5, description="MQTT keepalive.")
    session_expiry_seconds: int = Field(7 * 86400, ge=0, description="Broker keeps our session this long offline.")
    ack_timeout_seconds: float = Field(30.0, gt=0, description="Unacked rows are sent again after this.")
    max_in_flight: int = Field(100, ge=1, le=10000, description="Rows published but not yet acked by central.")
    reconnect_min_seconds: float = Field(1.0, gt=0, description="First reconnect delay; doubles up to the max.")
    reconnect_max_seconds: float = Field(60.0, gt=0, description="Longest reconnect delay.")
    metrics_interval_seconds: float = Field(60.0, gt=0, description="How often a metrics snapshot is queued.")


class ModelsConfig(_Section):
    """Model updates from central (DESIGN §6): announced over the sync link, downloaded over HTTP, verified with
    ocr.trusted_keys, self-tested in a staging slot, swapped in, watched, rolled back on failure."""

    updates: bool = Field(False, description="Follow central's model rollouts (needs sync.enabled and trusted_keys).")
    central_url: str | None = Field(
        None, description="http(s)://HOST:PORT of the central service that serves the bundles."
    )
    central_token: str | None = Field(
        None, description="Bearer token for central's model downloads (`central-sync token --user-id NODE`)."
    )
    dir: Path | None = Field(None, description="Where bundles are unpacked; default DATA_DIR/models.")
    download_attempts: int = Field(5, ge=1, le=100, description="Tries per download (each resumes the last).")
    download_timeout_seconds: float = Field(30.0, gt=0, description="A download stalled this long is retried.")
    retry_seconds: float = Field(
        300.0, gt=0, description="After a download failure (no link to central), try the update again this often."
    )
    max_bundle_mb: int = Field(1024, ge=1, description="A bundle larger than this (packed or unpacked) is refused.")
    probation_jobs: int = Field(
        50, ge=1, description="A newly swapped model is watched over this many of its calls (one per job)."
    )
    max_error_rate: float = Field(
        0.2, ge=0, le=1, description="Failure rate over the probation window that rolls the new model back."
    )
    shadow_report_seconds: float = Field(
        60.0, gt=0, description="How often a shadow model's agreement is reported to central."
    )

    @model_validator(mode="after")
    def _updates_need_a_source(self) -> ModelsConfig:
        if self.updates and not self.central_url:
            raise ValueError("models.updates is on but models.central_url (where bundles come from) is not set")
        return self


class EdgeConfig(_Section):
    """Root configuration of the edge node."""

    server: ServerConfig = Field(default_factory=ServerConfig, description="HTTP listener.")
    node: NodeConfig = Field(default_factory=NodeConfig, description="Node identity.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Local state.")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Authentication.")
    limits: LimitsConfig = Field(default_factory=LimitsConfig, description="Input limits.")
    ocr: OcrConfig = Field(default_factory=OcrConfig, description="Engines.")
    worker: WorkerConfig = Field(default_factory=WorkerConfig, description="Job queue workers.")
    sync: SyncConfig = Field(default_factory=SyncConfig, description="Sync to the central service.")
    cache: CacheConfig = Field(default_factory=CacheConfig, description="Result cache.")
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig, description="Request quotas.")
    models: ModelsConfig = Field(default_factory=ModelsConfig, description="Model updates from central.")

    @model_validator(mode="after")
    def _model_updates_are_verifiable(self) -> EdgeConfig:
        if self.models.updates and not self.ocr.trusted_keys:
            raise ValueError("models.updates is on but ocr.trusted_keys lists no key to verify bundles with")
        if self.models.updates and not self.sync.enabled:
            raise ValueError("models.updates is on but sync is disabled: rollouts are announced over the sync link")
        return self

    @property
    def models_dir(self) -> Path:
        """Where model bundles are downloaded and unpacked."""
        return self.models.dir or self.storage.data_dir / "models"


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> EdgeConfig:
    """Build the config from an optional YAML file and the environment."""
    text = None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError([f"{path}: {err}"]) from err
    env = os.environ if environ is None else environ
    return validate(EdgeConfig, build_tree(text, env, ENV_PREFIX, SEED_ENV, source=str(path)))
