"""Prometheus metrics: requests, latency, DB pools, per-tenant requests and job runs; GET /metrics."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException, NotFoundException
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from tenantcrm.settings import Settings

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # a path no route answers: its raw text is the client's, never a label
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Jobs run in whichever process takes them, outside any app: one registry for the process.
PROCESS_REGISTRY = CollectorRegistry()
JOB_RUNS = Counter(
    "tenantcrm_job_runs",
    "Background jobs run, by entrypoint and outcome (succeeded, failed, deferred, dropped).",
    ["entrypoint", "outcome"],
    registry=PROCESS_REGISTRY,
)


class PoolCollector(Collector):
    """Checked-out connections and pool size of both engines, read when scraped."""

    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        checked_out = GaugeMetricFamily(
            "tenantcrm_db_pool_checked_out", "Connections in use, by engine.", labels=["engine"]
        )
        size = GaugeMetricFamily(
            "tenantcrm_db_pool_size", "Connections the pool keeps (overflow excluded).", labels=["engine"]
        )
        db = getattr(self.state, "db", None)
        if db is not None:
            for name, engine in (("app", db.app_engine), ("admin", db.admin_engine)):
                pool = engine.sync_engine.pool
                if hasattr(pool, "checkedout") and hasattr(pool, "size"):
                    checked_out.add_metric([name], pool.checkedout())
                    size.add_metric([name], pool.size())
        yield checked_out
        yield size


class AppMetrics:
    """The metrics of one app; a registry per app so each test app starts from zero."""

    def __init__(self, state: State) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tenantcrm_http_requests",
            "HTTP requests, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tenantcrm_http_request_duration_seconds",
            "Time to answer, by method, route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Slugs are created by operators, not by visitors: the label's values stay bounded.
        self.tenant_requests = Counter(
            "tenantcrm_tenant_requests",
            "Authenticated requests, by tenant slug.",
            ["tenant"],
            registry=self.registry,
        )
        self.registry.register(PoolCollector(state))

    def observe(
        self, method: str, route: str | None, status: int, duration_ns: int, tenant: str | None
    ) -> None:
        labels = (method if method in METHODS else "OTHER", route or UNMATCHED, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(duration_ns / 1e9)
        if tenant is not None:
            self.tenant_requests.labels(tenant).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(PROCESS_REGISTRY)


def _authorised(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text; behind TENANTCRM_METRICS_TOKEN, or absent in production without one."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token:
        if not _authorised(request, settings.metrics_token):
            raise NotAuthorizedException(
                detail="a valid metrics token is required", headers={"WWW-Authenticate": "Bearer"}
            )
    elif settings.production:
        raise NotFoundException()
    app_metrics: AppMetrics = request.app.state.metrics
    return Response(
        app_metrics.exposition(),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
