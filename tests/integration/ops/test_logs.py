"""Access lines: JSON with request id, route template, status, duration and tenant; never PII."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tenantcrm.observability.logs import JsonFormatter, TextFormatter
from tests.conftest import PASSWORD, api_token_for, web_sign_in

PHONE = "13912345678"
NATIONAL_ID = "11010519850612771X"
EMAIL_IN_HEADER = "someone@example.com"


@contextmanager
def captured(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """Everything the server logs at INFO and above, formatted as the process would write it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    # The test's own HTTP client logs the URLs it calls; the server is what is under test.
    handler.addFilter(lambda record: not record.name.startswith(("httpx", "httpcore")))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_access_lines_carry_ids_and_tenant_but_no_pii(ops_app, db, tenant_a):
    token = await api_token_for(db, tenant_a.tenant, tenant_a.admin_email)
    incoming = str(uuid.uuid4())
    with captured(JsonFormatter()) as stream:
        async with ops_app() as (_, client):
            await web_sign_in(client, tenant_a.slug, tenant_a.admin_email)
            session_cookie = client.cookies["tcrm_session"]
            listed = await client.get(
                f"/t/{tenant_a.slug}/customers",
                params={"q": PHONE, "national_id": NATIONAL_ID},
                headers={"X-Request-ID": incoming},
            )
            searched = await client.post(
                f"/t/{tenant_a.slug}/customers",
                data={"search": NATIONAL_ID, "phone": PHONE, "_csrf_token": client.cookies["csrftoken"]},
                headers={"X-Request-ID": EMAIL_IN_HEADER},
            )
            graphql = await client.post(
                "/graphql",
                json={
                    "query": "query($q: String) { customers(first: 1, search: $q) { totalCount } }",
                    "variables": {"q": PHONE},
                },
                headers={"Authorization": f"Bearer {token}"},
            )
    output = stream.getvalue()
    assert listed.status_code == 200 and searched.status_code in (200, 303) and graphql.status_code == 200
    for secret in (
        PHONE,
        NATIONAL_ID,
        EMAIL_IN_HEADER,
        tenant_a.admin_email,
        PASSWORD,
        token,
        session_cookie,
    ):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    access = [line for line in lines if line["logger"] == "tenantcrm.access"]
    by_id = {line["request_id"]: line for line in access}
    assert listed.headers["x-request-id"] == incoming
    line = by_id[incoming]
    assert line["method"] == "GET" and line["route"] == "/t/{slug}/customers" and line["status"] == 200
    assert line["tenant"] == tenant_a.slug and isinstance(line["duration_ms"], float)
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")
    # An id that is not a UUID or 32 hex digits could be anything a client typed: replaced.
    generated = searched.headers["x-request-id"]
    assert generated != EMAIL_IN_HEADER and by_id[generated]["route"] == "/t/{slug}/customers"
    assert by_id[graphql.headers["x-request-id"]]["tenant"] == tenant_a.slug
    sign_in = [a for a in access if a["route"] == "/t/{slug}/login" and a["method"] == "POST"]
    assert sign_in and "tenant" not in sign_in[0]  # not yet a principal: no tenant claimed from the URL


async def test_unhandled_errors_log_type_and_frames_without_the_message():
    try:
        raise ValueError(f"customer {PHONE} broke it")
    except ValueError:
        record = logging.LogRecord(
            "tenantcrm.errors", logging.ERROR, __file__, 1, "unhandled %s", ("X",), sys.exc_info()
        )
    for formatter in (JsonFormatter(), TextFormatter()):
        text = formatter.format(record)
        assert "ValueError" in text and "test_logs.py" in text
        assert PHONE not in text


async def test_an_unexpected_failure_is_logged_once_with_its_route_and_no_message():
    from litestar.exceptions import NotFoundException

    from tenantcrm.observability.requests import log_unhandled

    hook = log_unhandled(())
    with captured(JsonFormatter()) as stream:
        try:
            raise KeyError(PHONE)
        except KeyError as exc:
            await hook(exc, {"path_template": "/t/{slug}/customers"})
        await hook(NotFoundException(), {"path_template": "/t/{slug}/customers"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1  # an HTTP error is an answer, not a failure
    assert lines[0]["logger"] == "tenantcrm.errors" and lines[0]["exception"] == "KeyError"
    assert "/t/{slug}/customers" in lines[0]["message"] and PHONE not in stream.getvalue()
