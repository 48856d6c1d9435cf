"""Interrupted imports: a crash between staging chunks or inside one keeps the committed chunks and
resumes after them; a crash during the commit leaves nothing half-written and the rerun completes."""

from __future__ import annotations

import pytest

from tenantcrm.collateral.models import Collateral
from tenantcrm.customers.models import Customer
from tenantcrm.imports import service as imports
from tenantcrm.imports.models import ImportRow
from tenantcrm.imports.service import INTERRUPTED, row_errors
from tenantcrm.imports.tasks import queue_commit, queue_staging
from tenantcrm.jobs.worker import run_pending
from tenantcrm.loans.models import InstallmentRow, Loan
from tenantcrm.tenancy.session import tenant_session
from tests.integration.imports.conftest import sample
from tests.integration.imports.sheets import people, xlsx

CHUNK = 10


class Crash(Exception):
    """Stands in for a killed process: nothing after it runs."""


async def mapped_job(shop, content: bytes, name: str = "sheet.xlsx"):
    async with tenant_session(shop.db, shop.tenant) as session:
        service = shop.service(session)
        job = await service.upload(name, content)
        await service.save_mapping(job.id, {int(k): v for k, v in job.mapping["columns"].items()})
        return await service.start_staging(job.id)


async def commit_started(shop, job, mode: str = "skip_invalid"):
    async with tenant_session(shop.db, shop.tenant) as session:
        return await shop.service(session).start_commit(job.id, mode)


def with_duplicate_across_chunks(count: int) -> bytes:
    rows = people(count)
    rows[-1][2] = rows[0][2]  # the last row repeats the first row's ID, chunks apart
    return xlsx(rows)


async def test_a_crash_between_staging_chunks_resumes_after_the_last_one(shop):
    job = await mapped_job(shop, with_duplicate_across_chunks(35))
    chunks = []

    def crash_after_two(progress):
        chunks.append(progress.staged_rows)
        if len(chunks) == 2:
            raise Crash

    with pytest.raises(Crash):
        await imports.stage(
            shop.db, shop.cipher, shop.tenant, job.id, chunk_rows=CHUNK, progress=crash_after_two
        )
    stopped = await shop.job(job.id)
    assert (stopped.status, stopped.staged_rows, stopped.total_rows) == ("staging", 20, 35)
    assert await shop.count(ImportRow) == 20 and await shop.count(Customer) == 0

    resumed = await imports.stage(shop.db, shop.cipher, shop.tenant, job.id, chunk_rows=CHUNK)
    assert (resumed.status, resumed.staged_rows, resumed.valid_rows, resumed.duplicate_rows) == (
        "staged",
        35,
        34,
        1,
    )
    rows = await shop.rows(resumed)
    assert [row.row_number for row in rows] == list(range(2, 37)), "every row once, none twice"
    assert [(e.code, e.params) for e in row_errors(rows[-1])] == [("duplicate_in_file", {"row": "2"})]


async def test_a_crash_inside_a_chunk_rolls_that_chunk_back(shop, monkeypatch):
    job = await mapped_job(shop, xlsx(people(30)))
    real_copy, calls = imports.copy_rows, []

    async def copy_then_crash(session, table, records):
        calls.append(table)
        if len(calls) == 3:
            await real_copy(session, table, records)
            raise Crash  # the rows are sent, the checkpoint not yet written: all of it rolls back
        await real_copy(session, table, records)

    monkeypatch.setattr(imports, "copy_rows", copy_then_crash)
    with pytest.raises(Crash):
        await imports.stage(shop.db, shop.cipher, shop.tenant, job.id, chunk_rows=CHUNK)
    assert (await shop.job(job.id)).staged_rows == 20
    assert await shop.count(ImportRow) == 20

    monkeypatch.setattr(imports, "copy_rows", real_copy)
    resumed = await imports.stage(shop.db, shop.cipher, shop.tenant, job.id, chunk_rows=CHUNK)
    assert (resumed.status, resumed.valid_rows) == ("staged", 30)


async def test_a_crash_during_the_commit_leaves_nothing_half_written_and_the_rerun_completes(
    shop, monkeypatch
):
    job = await mapped_job(shop, sample("mortgage-customers.xlsx"), "mortgage-customers.xlsx")
    await imports.stage(shop.db, shop.cipher, shop.tenant, job.id)
    await commit_started(shop, job)
    monkeypatch.setattr(imports, "COMMIT_BATCH", 25)  # three batches of customers, collateral and loans
    real_insert, batches = imports._Batch.insert, []

    async def insert_then_crash(self, session, job_id):
        batches.append(job_id)
        await real_insert(self, session, job_id)
        if len(batches) == 2:
            raise Crash

    monkeypatch.setattr(imports._Batch, "insert", insert_then_crash)
    with pytest.raises(Crash):
        await imports.commit(shop.db, shop.cipher, shop.tenant, job.id)
    for model in (Customer, Collateral, Loan, InstallmentRow):
        assert await shop.count(model) == 0, f"{model.__name__} half-written"
    stopped = await shop.job(job.id)
    assert stopped.status == "committing" and stopped.file_enc is not None

    monkeypatch.setattr(imports._Batch, "insert", real_insert)
    done = await imports.commit(shop.db, shop.cipher, shop.tenant, job.id)
    assert (done.status, done.created_rows) == ("done", 60)
    assert (await shop.count(Customer), await shop.count(Collateral), await shop.count(Loan)) == (60, 60, 60)
    again = await imports.commit(shop.db, shop.cipher, shop.tenant, job.id)
    assert again.status == "done" and await shop.count(Customer) == 60, "a second run creates nothing"


async def test_a_failed_queued_step_is_marked_interrupted_and_resumes(shop, monkeypatch):
    job = await mapped_job(shop, xlsx(people(12)))
    await queue_staging(shop.db, shop.tenant, job)
    await run_pending(shop.db, shop.ring)
    job = await commit_started(shop, job)

    async def crash(*args, **kwargs):
        raise Crash

    monkeypatch.setattr(imports.audit, "record", crash)  # the commit's last statement fails
    await queue_commit(shop.db, shop.tenant, job)
    await run_pending(shop.db, shop.ring)
    stopped = await shop.job(job.id)
    assert (stopped.status, stopped.error) == ("committing", INTERRUPTED)
    assert await shop.count(Customer) == 0

    monkeypatch.undo()
    job = await commit_started(shop, stopped)  # what the page's Resume button does
    await queue_commit(shop.db, shop.tenant, job)
    await run_pending(shop.db, shop.ring)
    done = await shop.job(job.id)
    assert (done.status, done.error, done.created_rows) == ("done", None, 12)
