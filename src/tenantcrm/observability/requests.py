"""Around every HTTP request: its id, one access log line and the request metrics."""

from __future__ import annotations

import logging
import time
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tenantcrm.observability.logs import ACCESS_LOGGER, REQUEST_ID, REQUEST_ID_PATTERN
from tenantcrm.observability.metrics import AppMetrics

access_log = logging.getLogger(ACCESS_LOGGER)
errors_log = logging.getLogger("tenantcrm.errors")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if REQUEST_ID_PATTERN.fullmatch(text) else None
    return None


def tenant_slug(scope: Scope) -> str | None:
    """The tenant of an authenticated request: from its principal, never from the URL."""
    principal = scope.get("principal")  # type: ignore[call-overload]
    return principal.tenant.slug if principal is not None else None


class RequestObserver:
    """Wraps the app's whole ASGI handler, so unmatched paths and error pages are seen too.

    Logs the route template, never the raw path or query string, body, cookies or headers.
    """

    def __init__(self, app: ASGIApp, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        reset = REQUEST_ID.set(request_id)
        started = time.perf_counter_ns()
        status = 500  # what the client sees if nothing was sent

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration_ns = time.perf_counter_ns() - started
            method, route, tenant = scope["method"], scope.get("path_template"), tenant_slug(scope)
            self.metrics.observe(method, route, status, duration_ns, tenant)
            duration_ms = round(duration_ns / 1e6, 1)
            access_log.info(
                "%s %s %s %.1fms",
                method,
                route or "-",
                status,
                duration_ms,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                    "tenant": tenant,
                    "request_id": request_id,
                },
            )
            REQUEST_ID.reset(reset)


def log_unhandled(handled: tuple[type[Exception], ...]):
    """An after_exception hook: a failure no handler expects is logged, type and frames only."""

    async def hook(exception: Exception, scope: Scope) -> None:
        if isinstance(exception, (HTTPException, *handled)):
            return
        errors_log.error(
            "unhandled %s on %s",
            type(exception).__name__,
            scope.get("path_template") or "-",
            exc_info=(type(exception), exception, exception.__traceback__),
        )

    return hook
