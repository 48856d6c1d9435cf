"""Settings refuse values that would quietly weaken a deployment."""

import pytest

from tenantcrm.settings import Settings


@pytest.mark.parametrize("env", ["prod", "Production", "staging"])
def test_unknown_environment_is_refused(monkeypatch, tmp_path, env):
    monkeypatch.setenv("TENANTCRM_ENV", env)
    monkeypatch.setenv("TENANTCRM_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit):
        Settings.from_env()


def test_production_needs_a_secret_and_defaults_to_safe_values(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANTCRM_ENV", "production")
    monkeypatch.setenv("TENANTCRM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TENANTCRM_SECRET_KEY", raising=False)
    with pytest.raises(SystemExit):
        Settings.from_env()
    monkeypatch.setenv("TENANTCRM_SECRET_KEY", "s" * 40)
    settings = Settings.from_env()
    assert settings.secure_cookies and not settings.graphql_introspection and settings.trusted_proxies == ""


def test_trusting_every_proxy_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TENANTCRM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TENANTCRM_TRUSTED_PROXIES", "*")
    with pytest.raises(SystemExit):
        Settings.from_env()
