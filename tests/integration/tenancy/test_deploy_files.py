"""deploy/ without a Docker engine: the compose files parse and wire what docs/scale-out.md says."""

from __future__ import annotations

import configparser
import json
import re

import yaml

from tests.conftest import repo_path

DEPLOY = repo_path("deploy")


def compose(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def env_of(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in service.get("environment", {}).items()}


def test_compose_runs_two_apps_a_worker_postgres_16_and_pgbouncer_in_transaction_mode():
    services = compose("compose.yaml")["services"]
    assert set(services) == {"postgres", "pgbouncer", "migrate", "app1", "app2", "worker", "proxy"}
    assert services["postgres"]["image"] == "postgres:16"
    for name in ("app1", "app2"):
        app = services[name]
        assert app["command"] == ["serve"] and app["build"]["dockerfile"] == "deploy/Dockerfile"
        env = env_of(app)
        assert "@pgbouncer:6432/" in env["TENANTCRM_APP_DATABASE_URL"]
        assert "@postgres:5432/" in env["DATABASE_URL"]  # DDL and advisory locks bypass the pooler
        assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"] == ["worker"]
    assert services["migrate"]["command"][:3] == ["tenants", "migrate", "--all"]

    ini = configparser.ConfigParser(inline_comment_prefixes=(";",))
    ini.read(DEPLOY / "pgbouncer" / "pgbouncer.ini")
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert int(ini["pgbouncer"]["max_prepared_statements"]) > 0  # asyncpg prepares statements
    mounted = " ".join(services["pgbouncer"]["volumes"])
    assert "pgbouncer.ini" in mounted and "userlist.txt" in mounted

    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server app1:8000" in nginx and "server app2:8000" in nginx


def test_citus_variant_has_a_coordinator_with_schema_sharding_and_two_workers():
    services = compose("compose.citus.yaml")["services"]
    assert {"coordinator", "worker1", "worker2", "cluster-setup", "app1", "app2", "worker"} <= set(services)
    assert "citus.enable_schema_based_sharding=on" in services["coordinator"]["command"]
    setup = " ".join(services["cluster-setup"]["command"])
    assert "citus_add_node('worker1'" in setup and "citus_add_node('worker2'" in setup
    # Platform and queue schemas are made plain before bootstrap, so only tenant schemas distribute.
    assert "enable_schema_based_sharding = off" in setup and "CREATE SCHEMA IF NOT EXISTS platform" in setup
    for name in ("app1", "app2", "worker", "migrate"):
        assert "@coordinator:5432/" in env_of(services[name])["TENANTCRM_APP_DATABASE_URL"]


def test_every_required_variable_is_in_the_env_example_and_read_by_settings():
    example = (DEPLOY / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", example, flags=re.MULTILINE))
    for name in ("compose.yaml", "compose.citus.yaml"):
        required = set(re.findall(r"\$\{([A-Z_]+):\?", (DEPLOY / name).read_text()))
        assert required and required <= defined, name
    settings_source = repo_path("src", "tenantcrm", "settings.py").read_text()
    for variable in sorted(v for v in defined if v.startswith("TENANTCRM_") and v != "TENANTCRM_HTTP_PORT"):
        assert f'"{variable}"' in settings_source, f"{variable} is not read by Settings.from_env"


def test_dockerfile_builds_assets_with_npm_and_runs_the_app_unprivileged():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    assert stages[0].startswith("node:") and stages[-1] == "python:3.11-slim"
    assert "npm ci" in dockerfile and "pip install" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    ignored = (repo_path(".dockerignore")).read_text().split()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.MULTILINE):
        for path in source.split():
            assert repo_path(path).exists(), path
            assert not any(path == pattern or path.startswith(pattern + "/") for pattern in ignored), path
    packages = json.loads(repo_path("web", "package.json").read_text())["dependencies"]
    installed = repo_path("web", "node_modules").is_dir()  # `make install` runs npm ci
    for vendored in re.findall(r"cp (node_modules/\S+)", dockerfile):
        assert vendored.split("/")[1] in packages, vendored
        if installed:
            assert repo_path("web", vendored).exists(), vendored  # the package really ships the file
