"""Running jobs: handlers registered by name, the worker loop, and draining the queue in tests."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from pgqueuer.domain.errors import RetryRequested
from pgqueuer.domain.models import Job, TracebackRecord
from pgqueuer.domain.types import Channel, QueueEntrypoint, QueueExecutionMode, QueueManagerId
from pgqueuer.ports.repository import EntrypointExecutionParameter
from pgqueuer.qm import QueueManager
from pgqueuer.sm import SchedulerManager

from tenantcrm.database import Database
from tenantcrm.jobs.queue import CHANNEL, queries_for
from tenantcrm.observability.metrics import JOB_RUNS
from tenantcrm.pii.keys import KeyProvider
from tenantcrm.settings import Settings
from tenantcrm.tenancy.registry import find_tenant_by_id
from tenantcrm.tenancy.tenant import ACTIVE, SUSPENDED, Tenant

logger = logging.getLogger("tenantcrm.jobs")

# Modules whose import registers handlers; the worker imports them all before it starts.
HANDLER_MODULES = ("tenantcrm.imports.tasks", "tenantcrm.retention.tasks", "tenantcrm.tenancy.tasks")
SUSPENDED_RETRY = timedelta(minutes=5)
BATCH_SIZE = 2
# A job whose worker stopped sending heartbeats this long ago is picked up again elsewhere.
HEARTBEAT_TIMEOUT = timedelta(seconds=60)
RESTART_DELAY = timedelta(seconds=5)


@dataclass(frozen=True)
class JobContext:
    """What a handler gets besides its tenant and payload: the engines and the master key ring."""

    db: Database
    ring: KeyProvider


Handler = Callable[[JobContext, Tenant, dict[str, Any]], Awaitable[None]]
_handlers: dict[str, Handler] = {}


class JobFailed(Exception):
    """A handler's failure as the queue records it: the exception type only, never its message,
    which could quote a value."""


def job_handler(name: str) -> Callable[[Handler], Handler]:
    """Register `handler` for the entrypoint `name`; it opens its own tenant unit(s) of work."""

    def register(handler: Handler) -> Handler:
        if _handlers.get(name, handler) is not handler:
            raise RuntimeError(f"two handlers for job {name!r}")
        _handlers[name] = handler
        return handler

    return register


def handlers() -> dict[str, Handler]:
    for module in HANDLER_MODULES:
        importlib.import_module(module)
    return dict(_handlers)


# A scheduled task gets the process's database and settings (the ones the app or worker started with).
Periodic = Callable[[Database, Settings], Awaitable[None]]
_schedules: dict[str, tuple[str, Periodic]] = {}


def scheduled(name: str, cron: str) -> Callable[[Periodic], Periodic]:
    """Register `task` to run on the cron expression (UTC) in one app process of all: pgqueuer's
    scheduler keeps the schedule in the queue's tables, so several processes fire it once. The
    task should only queue jobs, which do the work per tenant."""

    def register(task: Periodic) -> Periodic:
        if _schedules.get(name, (cron, task)) != (cron, task):
            raise RuntimeError(f"two schedules named {name!r}")
        _schedules[name] = (cron, task)
        return task

    return register


def schedules() -> dict[str, tuple[str, Periodic]]:
    handlers()  # the same modules register both
    return dict(_schedules)


async def run_job(context: JobContext, name: str, body: bytes | None) -> None:
    """Resolve the job's tenant and run its handler; what the worker calls for every job."""
    handler = handlers()[name]
    message = json.loads(body or b"{}")
    tenant = await find_tenant_by_id(context.db, str(message.get("tenant_id", "")))
    if tenant is None or tenant.status not in (ACTIVE, SUSPENDED):
        logger.warning("job %s dropped: its tenant is gone or not provisioned", name)
        JOB_RUNS.labels(name, "dropped").inc()
        return
    if tenant.status == SUSPENDED:
        JOB_RUNS.labels(name, "deferred").inc()
        raise RetryRequested(delay=SUSPENDED_RETRY, reason="tenant suspended")
    try:
        await handler(context, tenant, message.get("payload") or {})
    except Exception as exc:
        logger.warning("job %s for tenant %s failed: %s", name, tenant.id, type(exc).__name__)
        JOB_RUNS.labels(name, "failed").inc()
        raise JobFailed(type(exc).__name__) from None
    JOB_RUNS.labels(name, "succeeded").inc()


def _dsn(db: Database) -> str:
    return db.app_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _queue_manager(context: JobContext, connection: asyncpg.Connection) -> QueueManager:
    manager = QueueManager(queries_for(connection), channel=Channel(CHANNEL))
    for name in handlers():

        async def run(job: Job, name: str = name) -> None:
            await run_job(context, name, job.payload)

        manager.entrypoint(name)(run)
    return manager


async def run_worker(db: Database, ring: KeyProvider, *, stop: asyncio.Event | None = None) -> None:
    """Take jobs until `stop` is set, on a connection of its own (it LISTENs for new jobs)."""
    connection = await asyncpg.connect(_dsn(db))
    try:
        manager = _queue_manager(JobContext(db, ring), connection)
        watcher = asyncio.create_task(_stop_when(stop, manager)) if stop is not None else None
        try:
            await manager.run(
                dequeue_timeout=timedelta(seconds=10),
                batch_size=BATCH_SIZE,
                mode=QueueExecutionMode.continuous,
                max_concurrent_tasks=2 * BATCH_SIZE,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                log_aggregation_interval=timedelta(seconds=60),
            )
        finally:
            if watcher is not None:
                watcher.cancel()
    finally:
        await connection.close()


async def run_scheduler(db: Database, settings: Settings, *, stop: asyncio.Event) -> None:
    """Fire the registered schedules until `stop` is set, on a connection of its own."""
    registered = schedules()
    if not registered:
        return
    connection = await asyncpg.connect(_dsn(db))
    try:
        manager = SchedulerManager(queries_for(connection))
        for name, (cron, task) in registered.items():

            async def fire(schedule: Any, task: Periodic = task) -> None:
                await task(db, settings)

            manager.schedule(name, cron, accepts_context=False)(fire)
        watcher = asyncio.create_task(_stop_when(stop, manager))
        try:
            await manager.run()
        finally:
            watcher.cancel()
    finally:
        await connection.close()


async def _stop_when(stop: asyncio.Event, manager: QueueManager | SchedulerManager) -> None:
    await stop.wait()
    manager.shutdown.set()


async def run_pending(db: Database, ring: KeyProvider) -> int:
    """Run every job that is due, one after the other, then return how many ran (tests and
    `tenantcrm worker --drain`). Deterministic: no listener, no heartbeat, no concurrency; a job
    deferred to later (a suspended tenant's) stays queued for a real worker."""
    context = JobContext(db, ring)
    entrypoints = {
        QueueEntrypoint(name): EntrypointExecutionParameter(concurrency_limit=0) for name in handlers()
    }
    connection = await asyncpg.connect(_dsn(db))
    ran = 0
    try:
        queries = queries_for(connection)
        while jobs := await queries.dequeue(
            batch_size=1,
            entrypoints=entrypoints,
            queue_manager_id=QueueManagerId(uuid.uuid4()),
            global_concurrency_limit=None,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        ):
            for job in jobs:
                ran += 1
                try:
                    await run_job(context, job.entrypoint, job.payload)
                except RetryRequested as retry:
                    await queries.retry_job(job, retry.delay, None)
                    continue
                except JobFailed as failed:
                    record = TracebackRecord.from_exception(failed, job.id)
                    await queries.log_jobs([(job, "exception", record)])
                    continue
                await queries.log_jobs([(job, "successful", None)])
    finally:
        await connection.close()
    return ran


async def serve_jobs(db: Database, settings: Settings, ring: KeyProvider, stop: asyncio.Event) -> None:
    """The worker and the scheduler of the app process, each restarted after a failure (a lost
    connection) until `stop`."""
    scheduler = asyncio.create_task(
        _supervised("scheduler", lambda: run_scheduler(db, settings, stop=stop), stop)
    )
    try:
        await _supervised("job worker", lambda: run_worker(db, ring, stop=stop), stop)
    finally:
        await scheduler


async def _supervised(what: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await run()
        except Exception as exc:
            logger.warning("%s stopped (%s); restarting", what, type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=RESTART_DELAY.total_seconds())
