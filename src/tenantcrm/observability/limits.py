"""Request rate limits per API token, signed-in user and tenant; answers for 429 and 413.

The buckets live in the process: N app processes let N times the limit through. That is the
trade for a check with no database round trip; the limits are there against runaway clients,
not as billing quotas.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from litestar import MediaType, Request, Response
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from tenantcrm.auth.permissions import Principal
from tenantcrm.settings import Settings
from tenantcrm.web.rendering import page

MINUTE_NS = 60_000_000_000
SWEEP_EVERY = 1024


class RateLimited(Exception):
    """Too many requests for one of the caller's buckets; `retry_after` in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class RateLimiter:
    """A minute's allowance per key that refills continuously (GCRA, the token bucket kept as one
    timestamp a key): a burst of the whole allowance passes, then one request per 1/limit minute.

    Integer nanoseconds throughout; the state of a key is its "theoretical arrival time".
    """

    def __init__(self, settings: Settings, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.per_minute = {
            "token": settings.rate_limit_token,
            "user": settings.rate_limit_user,
            "tenant": settings.rate_limit_tenant,
        }
        self.clock = clock
        self._arrivals: dict[tuple[str, str], int] = {}
        self._calls = 0

    def take(self, keys: dict[str, str]) -> None:
        """Count one request against every named bucket (kind -> key), or against none and raise."""
        now = self.clock()
        self._sweep(now)
        wait_ns = 0
        updates: dict[tuple[str, str], int] = {}
        for kind, key in keys.items():
            limit = self.per_minute[kind]
            if limit <= 0:
                continue
            interval = MINUTE_NS // limit
            arrival = max(self._arrivals.get((kind, key), now), now)
            ahead = arrival - now - (MINUTE_NS - interval)  # beyond the burst a minute allows
            if ahead > 0:
                wait_ns = max(wait_ns, ahead)
            updates[(kind, key)] = arrival + interval
        if wait_ns:
            raise RateLimited(max(1, -(-wait_ns // 1_000_000_000)))
        self._arrivals.update(updates)

    def _sweep(self, now: int) -> None:
        """Forget keys whose allowance is whole again, so memory follows the active keys only."""
        self._calls += 1
        if self._calls % SWEEP_EVERY:
            return
        for key in [k for k, arrival in self._arrivals.items() if arrival <= now]:
            del self._arrivals[key]


def token_key(secret: str) -> str:
    """A bucket key for an API token that is not the token."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def enforce_rate_limits(request: Request, principal: Principal, *, api_token: str | None = None) -> None:
    """Count an authenticated request against its buckets; raises RateLimited when one is empty.

    Only after authentication: a forged cookie naming a tenant must not spend that tenant's
    allowance."""
    limiter: RateLimiter = request.app.state.rate_limiter
    tenant_id = principal.tenant.id
    keys = {"tenant": tenant_id}
    if api_token is not None:
        keys["token"] = f"{tenant_id}:{token_key(api_token)}"
    else:
        keys["user"] = f"{tenant_id}:{principal.user_id}"
    limiter.take(keys)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/graphql") and "json" not in request.headers.get("accept", "")


def rate_limited(request: Request, exc: RateLimited) -> Response:
    headers = {"Retry-After": str(exc.retry_after)}
    if _wants_html(request):
        return page(
            request, "errors/rate_limited.html", status_code=429, headers=headers, retry_after=exc.retry_after
        )
    # The shape of a GraphQL error, so API clients read it like any other.
    body = {
        "data": None,
        "errors": [
            {
                "message": f"too many requests; retry after {exc.retry_after} seconds",
                "extensions": {"code": "RATE_LIMITED", "retryAfter": exc.retry_after},
            }
        ],
    }
    return Response(body, status_code=429, media_type=MediaType.JSON, headers=headers)


def too_large(request: Request, exc: RequestEntityTooLarge) -> Response:
    settings: Settings = request.app.state.settings
    if _wants_html(request):
        return page(request, "errors/too_large.html", status_code=413)
    body = {
        "data": None,
        "errors": [
            {
                "message": "the request body is too large",
                "extensions": {"code": "PAYLOAD_TOO_LARGE", "limitBytes": settings.max_body_bytes},
            }
        ],
    }
    return Response(body, status_code=413, media_type=MediaType.JSON)


LIMIT_HANDLERS = {RateLimited: rate_limited, RequestEntityTooLarge: too_large}
