"""The limiter on a clock of its own: bursts, refill, all-or-nothing across buckets, off at 0."""

from __future__ import annotations

import pytest

from tenantcrm.observability.limits import SWEEP_EVERY, RateLimited, RateLimiter
from tenantcrm.settings import Settings

SECOND = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 10**15

    def __call__(self) -> int:
        return self.now


def limiter(**limits: int) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(Settings(**limits), clock=clock), clock


def test_a_minute_of_allowance_then_one_request_per_interval():
    rate, clock = limiter(rate_limit_user=6)  # one request back every 10 s
    for _ in range(6):
        rate.take({"user": "u"})
    with pytest.raises(RateLimited) as refused:
        rate.take({"user": "u"})
    assert refused.value.retry_after == 10
    clock.now += 9 * SECOND
    with pytest.raises(RateLimited) as still:
        rate.take({"user": "u"})
    assert still.value.retry_after == 1
    clock.now += SECOND
    rate.take({"user": "u"})
    with pytest.raises(RateLimited):
        rate.take({"user": "u"})


def test_a_refused_request_spends_nothing_from_the_other_buckets():
    rate, _ = limiter(rate_limit_user=1, rate_limit_tenant=2)
    rate.take({"user": "a", "tenant": "t"})
    with pytest.raises(RateLimited):
        rate.take({"user": "a", "tenant": "t"})  # a's bucket is empty; the tenant's keeps its one
    rate.take({"user": "b", "tenant": "t"})
    with pytest.raises(RateLimited):
        rate.take({"user": "c", "tenant": "t"})


def test_zero_is_no_limit_and_idle_keys_are_forgotten():
    rate, clock = limiter(rate_limit_token=0, rate_limit_user=60)
    for _ in range(500):
        rate.take({"token": "t"})
    rate.take({"user": "idle"})
    assert ("user", "idle") in rate._arrivals
    clock.now += 2 * SECOND
    for index in range(SWEEP_EVERY):
        rate.take({"token": f"t{index}"})
    assert rate._arrivals == {}
