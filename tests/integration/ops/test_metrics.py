"""GET /metrics: request counts and latency by route template, tenants, DB pools, job runs; its token."""

from __future__ import annotations

import base64
import json
import re
import secrets

from prometheus_client.parser import text_string_to_metric_families

from tenantcrm.imports.tasks import STAGE
from tenantcrm.jobs.worker import JobContext, JobFailed, run_job
from tests.conftest import web_sign_in


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_status_and_tenant(ops_app, tenant_a):
    async with ops_app() as (_, client):
        assert (await web_sign_in(client, tenant_a.slug, tenant_a.admin_email)).status_code == 303
        for _ in range(2):
            assert (await client.get(f"/t/{tenant_a.slug}/customers")).status_code == 200
        assert (await client.get("/no/such/13800138000")).status_code == 404
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/t/{slug}/customers"
    assert value(text, "tenantcrm_http_requests_total", method="GET", route=route, status="200") == 2
    assert (
        value(text, "tenantcrm_http_request_duration_seconds_count", method="GET", route=route, status="200")
        == 2
    )
    assert value(text, "tenantcrm_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert "13800138000" not in text and "/no/such" not in text
    # The sign-in page and form are not yet the tenant's; the two list pages are.
    assert value(text, "tenantcrm_tenant_requests_total", tenant=tenant_a.slug) == 2


async def test_database_pools_of_both_engines_are_reported(ops_app, db):
    async with ops_app() as (_, client):
        async with db.app_engine.connect():
            text = (await client.get("/metrics")).text
    assert value(text, "tenantcrm_db_pool_checked_out", engine="app") >= 1
    assert value(text, "tenantcrm_db_pool_size", engine="app") == db.app_engine.sync_engine.pool.size()
    assert ("tenantcrm_db_pool_size", frozenset({("engine", "admin")})) in samples(text)


async def test_job_runs_are_counted_by_entrypoint_and_outcome(ops_app, db, app, tenant_a):
    context = JobContext(db, app.state.key_ring)
    async with ops_app() as (_, client):
        before = (await client.get("/metrics")).text
        await run_job(context, STAGE, json.dumps({"tenant_id": "0" * 16}).encode())
        try:
            await run_job(
                context, STAGE, json.dumps({"tenant_id": tenant_a.tenant.id, "payload": {}}).encode()
            )
        except JobFailed:
            pass
        else:
            raise AssertionError("a stage job without its import should fail")
        after = (await client.get("/metrics")).text
    for outcome in ("dropped", "failed"):
        name, labels = "tenantcrm_job_runs_total", {"entrypoint": STAGE, "outcome": outcome}
        assert value(after, name, **labels) == value(before, name, **labels) + 1


async def test_a_metrics_token_is_required_when_set(ops_app):
    token = secrets.token_urlsafe(24)
    async with ops_app(metrics_token=token) as (_, client):
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {token}x"})
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == wrong.status_code == 401
    assert "tenantcrm_http_requests" not in missing.text + wrong.text
    assert right.status_code == 200 and "tenantcrm_http_requests_total" in right.text


async def test_production_without_a_token_has_no_metrics(ops_app):
    master_key = base64.b64encode(secrets.token_bytes(32)).decode()
    async with ops_app(environment="production", master_key=master_key) as (_, client):
        response = await client.get("/metrics", headers={"Accept": "application/json"})
        healthz = await client.get("/healthz")
    assert response.status_code == 404 and "tenantcrm_" not in response.text
    assert healthz.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", healthz.headers["x-request-id"])
