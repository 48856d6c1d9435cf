"""`tenantcrm import` and `tenantcrm worker` run as the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from tenantcrm.audit.models import AuditEvent
from tenantcrm.customers.models import Customer
from tenantcrm.imports.models import ImportJob
from tenantcrm.tenancy.session import tenant_session
from tests.integration.imports.conftest import SAMPLES
from tests.integration.imports.sheets import people, resident_id, xlsx


@pytest.fixture
def cli_env(settings, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTCRM_")}
    env.update(
        DATABASE_URL=database_url,
        TENANTCRM_APP_ROLE=settings.app_role,
        TENANTCRM_DATA_DIR=str(settings.data_dir),
        TENANTCRM_SECRET_KEY=settings.secret_key,
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantcrm.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


async def test_import_prints_a_json_summary_and_acts_as_the_platform(cli_env, shop):
    result = run_cli(cli_env, "import", shop.fixture.slug, str(SAMPLES / "mortgage-customers.xlsx"), "--json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["status"], summary["rows"], summary["created"], summary["problems"]) == (
        "done",
        60,
        60,
        [],
    )
    async with tenant_session(shop.db, shop.tenant) as session:
        owners = set(await session.scalars(select(Customer.owner_id)))
        event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "import"))
    assert owners == {None} and (event.actor, event.actor_id) == ("cli", None)


async def test_import_as_a_user_with_progress_lines_and_problems(cli_env, shop, tmp_path):
    rows = people(30)
    rows[4][2] = resident_id(4)[:-1] + ("1" if resident_id(4)[-1] == "0" else "0")
    path = tmp_path / "客户.xlsx"
    path.write_bytes(xlsx(rows))
    result = run_cli(cli_env, "import", shop.fixture.slug, str(path), "--as", shop.fixture.admin_email)

    assert result.returncode == 0, result.stderr
    assert "checked 29/30 rows" in result.stderr or "checked 30/30 rows" in result.stderr
    assert result.stdout.splitlines()[0].startswith("done: 29 customers created")
    assert "row 6 national_id: The check digit of this ID number is wrong." in result.stdout
    assert rows[4][2] not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (
            b"not a spreadsheet \x00\x01",
            (),
            "error: file: This file is not a readable .xlsx or .csv spreadsheet.",
        ),
        (xlsx([[1, "x"]], headers=("序号", "身份证号")), (), "error: mapping: Choose the column"),
        (None, ("--mode", "all_or_nothing"), "error: mode: 1 rows have problems"),
    ],
)
async def test_bad_input_exits_non_zero_with_one_line_and_creates_nothing(
    cli_env, shop, tmp_path, content, args, message
):
    if content is None:
        rows = people(3)
        rows[1][1] = ""
        content = xlsx(rows)
    path = tmp_path / "bad.xlsx"
    path.write_bytes(content)
    result = run_cli(cli_env, "import", shop.fixture.slug, str(path), *args)

    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("checked ")]
    assert line.startswith(message)
    assert await shop.count(Customer) == 0
    if not args:
        assert await shop.count(ImportJob) == 0


def test_an_unknown_tenant_or_file_is_one_line(cli_env, tmp_path):
    missing = run_cli(cli_env, "import", "no-such-tenant", str(tmp_path / "nothing.xlsx"))
    assert missing.returncode == 1 and missing.stderr.startswith("error: cannot read nothing.xlsx")


def test_worker_drain_runs_what_is_queued_and_exits(cli_env):
    result = run_cli(cli_env, "worker", "--drain")
    assert result.returncode == 0, result.stderr
