"""Settings from the environment, and the start-up refusals of `just serve` and the app."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from app.config import ConfigError, Settings
from app.main import create_app

GOOD_SECRET = "s" * 32


def test_defaults() -> None:
    settings = Settings.from_mapping({})
    assert settings.database_url is None and settings.jwt_secret is None
    assert settings.jwt_leeway_s == 30
    assert settings.access_token_ttl_s == 86_400
    assert settings.jwt_algorithms == ("HS256",)
    assert settings.jwt_jwks_refresh_s == 60
    assert settings.cors_origins == ("http://localhost:3000",)
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.max_body_bytes == 1_048_576
    assert (settings.auth_max_failed_attempts, settings.auth_lockout_s) == (5, 900)
    assert settings.db_prepare_threshold == 5
    assert (settings.http_max_header_bytes, settings.http_read_timeout_s, settings.http_idle_timeout_s) == (
        65536,
        15,
        5,
    )
    assert (settings.http_write_timeout_s, settings.http_max_connections) == (30, 1000)
    assert settings.trusted_proxies == ()
    assert settings.jwt_max_lifetime_s == 2_592_000


def test_every_contract_name_is_read() -> None:
    env = {
        "DATABASE_URL": "postgresql://u@h/db",
        "JWT_SECRET": GOOD_SECRET,
        "JWT_ISSUER": "iss",
        "JWT_AUDIENCE": "aud",
        "JWT_LEEWAY_S": "5",
        "ACCESS_TOKEN_TTL_S": "60",
        "JWT_ALGORITHMS": "EdDSA, ES256,RS256,HS256",
        "JWT_JWKS_URL": "https://auth.example/jwks",
        "JWT_JWKS_REFRESH_S": "30",
        "CORS_ORIGINS": "https://a.example, https://b.example",
        "HOST": "0.0.0.0",
        "PORT": "9000",
        "WORKERS": "2",
        "DB_POOL_MIN_SIZE": "2",
        "DB_POOL_MAX_SIZE": "8",
        "DB_POOL_TIMEOUT_S": "2.5",
        "DB_STATEMENT_TIMEOUT_MS": "1500",
        "DB_PREPARE_THRESHOLD": "0",
        "MAX_BODY_BYTES": "2048",
        "AUTH_MAX_FAILED_ATTEMPTS": "3",
        "AUTH_LOCKOUT_S": "60",
        "LOG_LEVEL": "debug",
        "HTTP_MAX_HEADER_BYTES": "8192",
        "HTTP_READ_TIMEOUT_S": "2.5",
        "HTTP_IDLE_TIMEOUT_S": "3",
        "HTTP_WRITE_TIMEOUT_S": "4",
        "HTTP_MAX_CONNECTIONS": "50",
        "TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16,::1",
        "JWT_MAX_LIFETIME_S": "3600",
    }
    s = Settings.from_mapping(env)
    assert s.database_url == "postgresql://u@h/db" and s.jwt_secret == GOOD_SECRET
    assert (s.jwt_issuer, s.jwt_audience, s.jwt_leeway_s, s.access_token_ttl_s) == ("iss", "aud", 5, 60)
    assert s.jwt_algorithms == ("EdDSA", "ES256", "RS256", "HS256")
    assert (s.jwt_jwks_url, s.jwt_jwks_refresh_s) == ("https://auth.example/jwks", 30)
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert (s.host, s.port, s.workers) == ("0.0.0.0", 9000, 2)
    assert (s.db_pool_min_size, s.db_pool_max_size, s.db_pool_timeout_s) == (2, 8, 2.5)
    assert (s.db_statement_timeout_ms, s.db_prepare_threshold, s.max_body_bytes) == (1500, 0, 2048)
    assert (s.auth_max_failed_attempts, s.auth_lockout_s, s.log_level) == (3, 60, "DEBUG")
    assert (s.http_max_header_bytes, s.http_read_timeout_s, s.http_idle_timeout_s) == (8192, 2.5, 3)
    assert (s.http_write_timeout_s, s.http_max_connections) == (4, 50)
    assert s.trusted_proxies == ("10.0.0.1", "192.168.0.0/16", "::1")
    assert s.jwt_max_lifetime_s == 3600


def test_better_auth_secret_is_the_fallback() -> None:
    assert Settings.from_mapping({"BETTER_AUTH_SECRET": GOOD_SECRET}).jwt_secret == GOOD_SECRET
    both = Settings.from_mapping({"BETTER_AUTH_SECRET": GOOD_SECRET, "JWT_SECRET": "j" * 40})
    assert both.jwt_secret == "j" * 40


def test_empty_prepare_threshold_turns_prepared_statements_off() -> None:
    assert Settings.from_mapping({"DB_PREPARE_THRESHOLD": ""}).db_prepare_threshold is None


@pytest.mark.parametrize(
    "env",
    [
        {"JWT_SECRET": "short"},
        {"BETTER_AUTH_SECRET": "s" * 31},
        {"PORT": "eighty"},
        {"DB_POOL_TIMEOUT_S": "0"},
        {"DB_POOL_MIN_SIZE": "10", "DB_POOL_MAX_SIZE": "2"},
        {"JWT_ALGORITHMS": "none"},
        {"JWT_ALGORITHMS": "HS256,None"},
        {"LOG_LEVEL": "chatty"},
        {"WORKERS": "0"},
        {"HTTP_MAX_HEADER_BYTES": "100"},
        {"HTTP_READ_TIMEOUT_S": "0"},
        {"HTTP_MAX_CONNECTIONS": "0"},
        {"TRUSTED_PROXIES": "proxy.example"},
        {"TRUSTED_PROXIES": "10.0.0.0/33"},
        {"JWT_MAX_LIFETIME_S": "3600"},  # below ACCESS_TOKEN_TTL_S: the service would refuse its own tokens
    ],
)
def test_invalid_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_mapping(env)


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path: pytest.TempPathFactory) -> None:
    env_file = tmp_path / ".env"  # type: ignore[operator]
    env_file.write_text(f"JWT_SECRET={GOOD_SECRET}\nPORT=7000\nHOST=0.0.0.0\n")
    settings = Settings.from_env({"PORT": "7001"}, env_file=env_file)
    assert (settings.jwt_secret, settings.port, settings.host) == (GOOD_SECRET, 7001, "0.0.0.0")


def test_the_app_refuses_to_start_without_database_or_secret() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        create_app(Settings.from_mapping({"JWT_SECRET": GOOD_SECRET}))
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        create_app(Settings.from_mapping({"DATABASE_URL": "postgresql://u@h/db"}))


def _clean_env(**extra: str) -> dict[str, str]:
    names = {"DATABASE_URL", "JWT_SECRET", "BETTER_AUTH_SECRET"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}, "JWT_SECRET"),
        ({"JWT_SECRET": GOOD_SECRET}, "DATABASE_URL"),
        ({"JWT_SECRET": "too-short", "DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}, "32 bytes"),
    ],
)
def test_serve_refuses_to_start_and_says_why_in_one_line(env: dict[str, str], says: str, tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.serve"],
        cwd=tmp_path,  # no .env there
        env=_clean_env(PYTHONPATH=str(ROOT), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and lines[0].startswith("refusing to start")


def test_observability_settings() -> None:
    defaults = Settings.from_mapping({})
    assert defaults.log_format is None  # the runner decides: text under `just dev`, json under `just serve`
    assert defaults.access_log and defaults.metrics_enabled
    assert defaults.metrics_allow == ("127.0.0.1", "::1")
    assert defaults.otel_exporter_otlp_endpoint is None and defaults.otel_service_name == "tasks-api"
    s = Settings.from_mapping(
        {
            "LOG_FORMAT": "JSON",
            "ACCESS_LOG": "false",
            "METRICS_ENABLED": "0",
            "METRICS_ALLOW": "10.0.0.0/8, 127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_SERVICE_NAME": "tasks-eu",
        }
    )
    assert (s.log_format, s.access_log, s.metrics_enabled) == ("json", False, False)
    assert s.metrics_allow == ("10.0.0.0/8", "127.0.0.1") and s.prometheus_multiproc_dir == "/tmp/metrics"
    assert (s.otel_exporter_otlp_endpoint, s.otel_service_name) == ("http://collector:4318", "tasks-eu")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"ACCESS_LOG": "sometimes"}, "ACCESS_LOG"),
        ({"METRICS_ENABLED": "maybe"}, "METRICS_ENABLED"),
        ({"METRICS_ALLOW": "localhost"}, "METRICS_ALLOW"),
    ],
)
def test_bad_observability_settings_are_refused(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_mapping(env)


def test_env_example_documents_the_observability_settings() -> None:
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in (
        "LOG_FORMAT",
        "ACCESS_LOG",
        "METRICS_ENABLED",
        "METRICS_ALLOW",
        "PROMETHEUS_MULTIPROC_DIR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_SERVICE_NAME",
    ):
        assert f"\n{name}=" in example, name
        assert f"| `{name}` |" in readme, name


def test_events_settings() -> None:
    defaults = Settings.from_mapping({"DATABASE_URL": "postgresql://u@pooled/db"})
    assert defaults.database_listen_url is None and defaults.listen_url == "postgresql://u@pooled/db"
    assert (defaults.events_heartbeat_s, defaults.events_max_streams_per_user) == (15, 5)
    s = Settings.from_mapping(
        {
            "DATABASE_URL": "postgresql://u@pooled/db",
            "DATABASE_LISTEN_URL": "postgresql://u@direct/db",
            "EVENTS_HEARTBEAT_S": "2.5",
            "EVENTS_MAX_STREAMS_PER_USER": "2",
        }
    )
    assert (s.listen_url, s.events_heartbeat_s, s.events_max_streams_per_user) == ("postgresql://u@direct/db", 2.5, 2)
    for bad in ({"EVENTS_HEARTBEAT_S": "0"}, {"EVENTS_MAX_STREAMS_PER_USER": "0"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            Settings.from_mapping(bad)
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in ("DATABASE_LISTEN_URL", "EVENTS_HEARTBEAT_S", "EVENTS_MAX_STREAMS_PER_USER"):
        assert f"\n{name}=" in example, name
        assert f"| `{name}` |" in readme, name
