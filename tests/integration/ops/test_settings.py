"""Observability and limit settings from the environment: defaults per environment, typos refused."""

from __future__ import annotations

import pytest

from tenantcrm.settings import Settings

VARIABLES = (
    "TENANTCRM_ENV",
    "TENANTCRM_LOG_FORMAT",
    "TENANTCRM_LOG_LEVEL",
    "TENANTCRM_METRICS_TOKEN",
    "TENANTCRM_RATE_LIMIT_TOKEN",
    "TENANTCRM_RATE_LIMIT_USER",
    "TENANTCRM_RATE_LIMIT_TENANT",
    "TENANTCRM_MAX_BODY_BYTES",
)


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TENANTCRM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TENANTCRM_SECRET_KEY", "s" * 40)
    return monkeypatch


def test_defaults_text_logs_in_development_json_in_production_and_generous_limits(env):
    development = Settings.from_env()
    assert development.log_format == "text" and development.log_level == "INFO"
    assert development.metrics_token is None
    limits = (development.rate_limit_token, development.rate_limit_user, development.rate_limit_tenant)
    assert limits == (1200, 600, 6000)
    assert development.max_body_bytes == 1024 * 1024
    env.setenv("TENANTCRM_ENV", "production")
    assert Settings.from_env().log_format == "json"


def test_values_are_read(env):
    env.setenv("TENANTCRM_LOG_FORMAT", "JSON")
    env.setenv("TENANTCRM_LOG_LEVEL", "warning")
    env.setenv("TENANTCRM_METRICS_TOKEN", "scrape-me")
    env.setenv("TENANTCRM_RATE_LIMIT_TOKEN", "0")
    env.setenv("TENANTCRM_RATE_LIMIT_USER", "30")
    env.setenv("TENANTCRM_MAX_BODY_BYTES", "2048")
    settings = Settings.from_env()
    assert settings.log_format == "json" and settings.log_level == "WARNING"
    assert settings.metrics_token == "scrape-me"
    assert settings.rate_limit_token == 0 and settings.rate_limit_user == 30
    assert settings.max_body_bytes == 2048


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TENANTCRM_LOG_FORMAT", "yaml"),
        ("TENANTCRM_LOG_LEVEL", "loud"),
        ("TENANTCRM_RATE_LIMIT_TENANT", "-1"),
        ("TENANTCRM_RATE_LIMIT_USER", "ten"),
        ("TENANTCRM_MAX_BODY_BYTES", "1.5"),
    ],
)
def test_a_value_that_is_not_understood_is_refused(env, name, value):
    env.setenv(name, value)
    with pytest.raises(SystemExit, match=name):
        Settings.from_env()
