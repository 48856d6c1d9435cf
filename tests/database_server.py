"""Which PostgreSQL the tests use: the given URL, a testcontainer, or the embedded server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def postgres_server() -> Iterator[str]:
    """An admin URL of a server the tests may create databases and roles on."""
    given = os.environ.get("TENANTCRM_TEST_DATABASE_URL")
    if given:
        yield given
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    from tenantcrm.embedded import start_embedded_server

    folder = Path(tempfile.mkdtemp(prefix="tenantcrm-test-pg-"))
    yield start_embedded_server(folder, delete_on_exit=True)
