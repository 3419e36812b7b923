"""Settings: read once from the environment (and an optional `.env`), validated at start-up.

This is the only module that reads `os.environ`. The names are fixed (tools outside the project
rely on them); `.env.example` and the README's configuration table document each one with its default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from dotenv import dotenv_values

MIN_SECRET_BYTES = 32
# Token algorithms the service verifies: HMAC ones with JWT_SECRET only, the others with JWT_JWKS_URL only.
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
JWKS_ALGORITHMS = frozenset({"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})


class ConfigError(ValueError):
    """A setting is missing or invalid; the message is one line meant for the operator."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every configuration value of the service, typed."""

    database_url: str | None = None
    jwt_secret: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_s: int = 30
    access_token_ttl_s: int = 86_400
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_jwks_url: str | None = None
    jwt_jwks_refresh_s: float = 60.0
    cors_origins: tuple[str, ...] = ("http://localhost:3000",)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    db_pool_min_size: int = 4
    db_pool_max_size: int = 16
    db_pool_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 5_000
    # None = prepared statements off (PgBouncer transaction pooling, Neon's pooled endpoint).
    db_prepare_threshold: int | None = 5
    max_body_bytes: int = 1_048_576
    auth_max_failed_attempts: int = 5
    auth_lockout_s: int = 900
    auth_max_failed_per_email: int = 100
    auth_rate_per_min: int = 30
    # Password hashes waiting for a thread beyond those running; more are refused at once (503).
    auth_hash_queue: int = 8
    tasks_max_per_user: int = 10_000
    write_rate_per_min: int = 600
    log_level: str = "INFO"
    # Connection limits, enforced by uvicorn and app.http.protocol (see README, "Robustness").
    http_max_header_bytes: int = 65_536
    http_read_timeout_s: float = 15.0
    http_idle_timeout_s: float = 5.0
    http_write_timeout_s: float = 30.0
    http_max_connections: int = 1_000
    # Peers whose X-Forwarded-For is believed (addresses or CIDRs); empty: nobody's.
    trusted_proxies: tuple[str, ...] = ()
    jwt_max_lifetime_s: int = 2_592_000
    idempotency_ttl_s: int = 86_400
    sync_tombstone_ttl_s: int = 2_592_000
    # The listener's LISTEN needs a session: a direct URL where DATABASE_URL is a transaction pooler.
    # None: DATABASE_URL.
    database_listen_url: str | None = None
    events_heartbeat_s: float = 15.0
    events_max_streams_per_user: int = 5
    # None: the runner decides (text under `just dev`, json under `just serve`).
    log_format: str | None = None
    access_log: bool = True
    metrics_enabled: bool = True
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    # prometheus_client's multiprocess mode; `just serve` makes (and cleans) one when unset.
    prometheus_multiproc_dir: str | None = None
    # Set: traces exported by OTLP/HTTP to `<endpoint>/v1/traces`; unset: OpenTelemetry is never imported.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "tasks-api"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
        """Build settings from `environ` (default `os.environ`) over the values of `env_file`.

        Real environment variables win over `.env`, as with every dotenv tool.
        """
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def integer(name: str, default: int, minimum: int = 0) -> int:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
            if value < minimum:
                raise ConfigError(f"{name} must be >= {minimum}, got {value}")
            return value

        def number(name: str, default: float) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
            if value <= 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
            return value

        def words(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = text(name)
            if raw is None:
                return default
            return tuple(part.strip() for part in raw.split(",") if part.strip())

        def flag(name: str, default: bool) -> bool:
            raw = text(name)
            if raw is None:
                return default
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name} must be true or false, got {raw!r}")

        # DB_PREPARE_THRESHOLD: unset = psycopg's default (5); set but empty = off.
        if "DB_PREPARE_THRESHOLD" in env and not env["DB_PREPARE_THRESHOLD"].strip():
            prepare: int | None = None
        else:
            prepare = integer("DB_PREPARE_THRESHOLD", 5)

        algorithms = words("JWT_ALGORITHMS", ("HS256",))
        bad = [a for a in algorithms if a.lower() == "none"]
        if bad or not algorithms:
            raise ConfigError("JWT_ALGORITHMS must list real algorithms (never 'none')")

        settings = cls(
            database_url=text("DATABASE_URL"),
            jwt_secret=text("JWT_SECRET") or text("BETTER_AUTH_SECRET"),
            jwt_issuer=text("JWT_ISSUER"),
            jwt_audience=text("JWT_AUDIENCE"),
            jwt_leeway_s=integer("JWT_LEEWAY_S", 30),
            access_token_ttl_s=integer("ACCESS_TOKEN_TTL_S", 86_400, minimum=1),
            jwt_algorithms=algorithms,
            jwt_jwks_url=text("JWT_JWKS_URL"),
            jwt_jwks_refresh_s=number("JWT_JWKS_REFRESH_S", 60.0),
            cors_origins=words("CORS_ORIGINS", ("http://localhost:3000",)),
            host=text("HOST") or "127.0.0.1",
            port=integer("PORT", 8000, minimum=1),
            workers=integer("WORKERS", 1, minimum=1),
            db_pool_min_size=integer("DB_POOL_MIN_SIZE", 4, minimum=1),
            db_pool_max_size=integer("DB_POOL_MAX_SIZE", 16, minimum=1),
            db_pool_timeout_s=number("DB_POOL_TIMEOUT_S", 5.0),
            db_statement_timeout_ms=integer("DB_STATEMENT_TIMEOUT_MS", 5_000),
            db_prepare_threshold=prepare,
            max_body_bytes=integer("MAX_BODY_BYTES", 1_048_576, minimum=1),
            auth_max_failed_attempts=integer("AUTH_MAX_FAILED_ATTEMPTS", 5, minimum=1),
            auth_lockout_s=integer("AUTH_LOCKOUT_S", 900, minimum=1),
            auth_max_failed_per_email=integer("AUTH_MAX_FAILED_PER_EMAIL", 100, minimum=1),
            auth_rate_per_min=integer("AUTH_RATE_PER_MIN", 30, minimum=1),
            auth_hash_queue=integer("AUTH_HASH_QUEUE", 8),
            tasks_max_per_user=integer("TASKS_MAX_PER_USER", 10_000, minimum=1),
            write_rate_per_min=integer("WRITE_RATE_PER_MIN", 600, minimum=1),
            log_level=(text("LOG_LEVEL") or "INFO").upper(),
            http_max_header_bytes=integer("HTTP_MAX_HEADER_BYTES", 65_536, minimum=1024),
            http_read_timeout_s=number("HTTP_READ_TIMEOUT_S", 15.0),
            http_idle_timeout_s=number("HTTP_IDLE_TIMEOUT_S", 5.0),
            http_write_timeout_s=number("HTTP_WRITE_TIMEOUT_S", 30.0),
            http_max_connections=integer("HTTP_MAX_CONNECTIONS", 1_000, minimum=1),
            trusted_proxies=words("TRUSTED_PROXIES", ()),
            jwt_max_lifetime_s=integer("JWT_MAX_LIFETIME_S", 2_592_000, minimum=1),
            idempotency_ttl_s=integer("IDEMPOTENCY_TTL_S", 86_400, minimum=1),
            sync_tombstone_ttl_s=integer("SYNC_TOMBSTONE_TTL_S", 2_592_000, minimum=1),
            database_listen_url=text("DATABASE_LISTEN_URL"),
            events_heartbeat_s=number("EVENTS_HEARTBEAT_S", 15.0),
            events_max_streams_per_user=integer("EVENTS_MAX_STREAMS_PER_USER", 5, minimum=1),
            log_format=(text("LOG_FORMAT") or "").lower() or None,
            access_log=flag("ACCESS_LOG", True),
            metrics_enabled=flag("METRICS_ENABLED", True),
            metrics_allow=words("METRICS_ALLOW", ("127.0.0.1", "::1")),
            prometheus_multiproc_dir=text("PROMETHEUS_MULTIPROC_DIR"),
            otel_exporter_otlp_endpoint=text("OTEL_EXPORTER_OTLP_ENDPOINT"),
            otel_service_name=text("OTEL_SERVICE_NAME") or "tasks-api",
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Checks that hold for every way of running the service."""
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ConfigError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")
        self._validate_jwt_algorithms()
        if self.access_token_ttl_s > self.jwt_max_lifetime_s:
            # The service would refuse the very tokens it issues.
            raise ConfigError("ACCESS_TOKEN_TTL_S must not exceed JWT_MAX_LIFETIME_S")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigError(f"TRUSTED_PROXIES: {proxy!r} is not an address or CIDR") from None
        if self.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {self.log_level}")
        if self.log_format not in (None, "json", "text"):
            raise ConfigError(f"LOG_FORMAT must be json or text, got {self.log_format!r}")
        for entry in self.metrics_allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"METRICS_ALLOW: {entry!r} is not an IP address or network") from None

    def _validate_jwt_algorithms(self) -> None:
        algorithms = set(self.jwt_algorithms)
        unknown = algorithms - HMAC_ALGORITHMS - JWKS_ALGORITHMS
        if unknown:
            supported = ", ".join(sorted(HMAC_ALGORITHMS | JWKS_ALGORITHMS))
            raise ConfigError(f"JWT_ALGORITHMS: unsupported {', '.join(sorted(unknown))} (supported: {supported})")
        asymmetric = algorithms & JWKS_ALGORITHMS
        if self.jwt_jwks_url is None:
            if asymmetric:
                raise ConfigError(
                    f"JWT_ALGORITHMS lists {', '.join(sorted(asymmetric))}, which need JWT_JWKS_URL (not set)"
                )
            return
        url = urlsplit(self.jwt_jwks_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"JWT_JWKS_URL must be an http(s) URL, got {self.jwt_jwks_url!r}")
        if not asymmetric:
            # Without one the JWKS would never be used: almost certainly a forgotten JWT_ALGORITHMS.
            raise ConfigError("JWT_JWKS_URL is set but JWT_ALGORITHMS lists no asymmetric algorithm (e.g. EdDSA)")

    def require_production(self) -> None:
        """`just serve` refuses to start on development defaults; one line says why."""
        if self.jwt_secret is None:
            raise ConfigError("JWT_SECRET (or BETTER_AUTH_SECRET) is not set: refusing to start")
        if self.database_url is None:
            raise ConfigError("DATABASE_URL is not set: refusing to start")

    @property
    def listen_url(self) -> str | None:
        """Where the events listener connects (`LISTEN` needs a session of its own)."""
        return self.database_listen_url or self.database_url

    def with_(self, **changes: object) -> Settings:
        """A copy with some values replaced (tests, the dev runner)."""
        new = msgspec.structs.replace(self, **changes)
        new.validate()
        return new
