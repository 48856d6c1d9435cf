"""Import pages: the jobs, upload, column mapping, progress, preview with the mode, result and report."""

from __future__ import annotations

from functools import partial
from typing import ClassVar
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.response import Redirect

from tenantcrm.database import Database
from tenantcrm.imports.fields import LABELS, TARGETS
from tenantcrm.imports.models import COMMITTING, KINDS, MODES, STAGED, STAGING, ImportJob
from tenantcrm.imports.report import ProblemReport, field_label
from tenantcrm.imports.service import (
    MAX_FILE_BYTES,
    ImportNotFound,
    ImportService,
    columns_of,
    row_errors,
)
from tenantcrm.imports.tasks import queue_commit, queue_staging
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput
from tenantcrm.web.errors import not_found
from tenantcrm.web.rendering import gettext_for, is_htmx, page
from tenantcrm.web.scope import WebScope

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROGRESS_TARGET = "import-progress"
UPLOAD_LIMIT = MAX_FILE_BYTES + 1024 * 1024  # the form around the file


def attachment(file_name: str) -> str:
    """Content-Disposition for a download; the UTF-8 name for browsers, an ASCII one for the rest."""
    ascii_name = file_name.encode("ascii", "ignore").decode() or "download.xlsx"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"


def _service(scope: WebScope) -> ImportService:
    return ImportService(scope.session, scope.principal, scope.cipher)


def _url(scope: WebScope, job: ImportJob) -> str:
    return f"/t/{scope.tenant.slug}/imports/{job.id}"


def _list_page(
    request: Request,
    scope: WebScope,
    jobs: list[ImportJob],
    errors: InvalidInput | None = None,
    kind: str = "",
) -> Response:
    return page(
        request,
        "imports/list.html",
        status_code=422 if errors else 200,
        jobs=jobs,
        errors=errors,
        kinds=KINDS,
        kind=kind or "customers",
        slug=scope.tenant.slug,
        max_megabytes=MAX_FILE_BYTES // (1024 * 1024),
    )


async def _job_page(
    request: Request, scope: WebScope, job: ImportJob, errors: InvalidInput | None = None
) -> Response:
    """The job at its step: the mapping form, progress, the preview with the mode, or the result."""
    service = _service(scope)
    rows = await service.preview(job.id) if job.status == STAGED or job.finished else {}
    return page(
        request,
        "imports/job.html",
        status_code=422 if errors else 200,
        job=job,
        errors=errors,
        columns=columns_of(job),
        targets=TARGETS,
        labels=LABELS,
        kinds=KINDS,
        modes=MODES,
        row_errors=row_errors,
        field_label=partial(field_label, gettext=gettext_for(request)),
        slug=scope.tenant.slug,
        **rows,
    )


class ImportPages(Controller):
    path = "/t/{slug:str}/imports"
    exception_handlers: ClassVar = {ImportNotFound: not_found}

    @get("/", name="import_list")
    async def list_jobs(self, request: Request, web_scope: WebScope) -> Response:
        return _list_page(request, web_scope, await _service(web_scope).list_jobs())

    @post("/", name="import_upload", request_max_body_size=UPLOAD_LIMIT)
    async def upload(self, request: Request, web_scope: WebScope) -> Response:
        """A multipart upload; a refused file comes back on the list with its reason, nothing kept."""
        service = _service(web_scope)
        service.check_can_import()
        try:
            form = await request.form()
        except ClientException:
            form = None
        upload = form.get("file") if form is not None else None
        kind = str(form.get("kind") or "customers") if form is not None else "customers"
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise InvalidInput([FieldError("file", "required", N_("Choose a .xlsx or .csv file."))])
            content = await upload.read()
            job = await service.upload(upload.filename, content, kind)
        except InvalidInput as invalid:
            return _list_page(request, web_scope, await service.list_jobs(), invalid, kind)
        return Redirect(_url(web_scope, job), status_code=303)

    @get("/{job_id:str}", name="import_job")
    async def job(self, request: Request, web_scope: WebScope, job_id: str) -> Response:
        return await _job_page(request, web_scope, await _service(web_scope).get_job(job_id))

    @get("/{job_id:str}/progress", name="import_progress")
    async def progress(self, request: Request, web_scope: WebScope, job_id: str) -> Response:
        """Polled by htmx every second while the job runs; once it stops, the page reloads to show
        the preview or the result. Without htmx it is the job page itself."""
        job = await _service(web_scope).get_job(job_id)
        if not (is_htmx(request) and request.headers.get("hx-target") == PROGRESS_TARGET):
            return await _job_page(request, web_scope, job)
        if not job.running or job.error:
            return Response(
                content="", status_code=200, headers={"HX-Refresh": "true", "Cache-Control": "no-store"}
            )
        return page(request, "imports/_progress.html", job=job, slug=web_scope.tenant.slug)

    @post("/{job_id:str}/mapping", name="import_mapping")
    async def mapping(self, request: Request, web_scope: WebScope, job_id: str) -> Response:
        """Save the columns as mapped and start staging in the background."""
        service = _service(web_scope)
        job = await service.get_job(job_id)
        form = await request.form()
        columns = {index: str(form.get(f"column_{index}") or "") for index in range(len(job.headers))}
        try:
            job = await service.save_mapping(job.id, columns, str(form.get("kind") or job.kind))
            job = await service.start_staging(job.id)
        except InvalidInput as invalid:
            # Show the choices as posted, so the user corrects only what was refused.
            job.mapping = {**job.mapping, "columns": {str(i): t for i, t in columns.items() if t}}
            return await _job_page(request, web_scope, job, invalid)
        # Queued now; the worker waits on this job's row lock until the request commits.
        await queue_staging(request.app.state.db, web_scope.tenant, job)
        return Redirect(_url(web_scope, job), status_code=303)

    @post("/{job_id:str}/commit", name="import_commit")
    async def commit(self, request: Request, web_scope: WebScope, job_id: str) -> Response:
        service = _service(web_scope)
        form = await request.form()
        try:
            job = await service.start_commit(job_id, str(form.get("mode") or ""))
        except InvalidInput as invalid:
            return await _job_page(request, web_scope, await service.get_job(job_id), invalid)
        await queue_commit(request.app.state.db, web_scope.tenant, job)
        return Redirect(_url(web_scope, job), status_code=303)

    @post("/{job_id:str}/resume", name="import_resume")
    async def resume(self, request: Request, web_scope: WebScope, job_id: str) -> Response:
        """Run an interrupted step again; it continues from its last checkpoint."""
        service = _service(web_scope)
        job = await service.get_job(job_id, for_update=True)
        db: Database = request.app.state.db
        if job.status == STAGING:
            job = await service.start_staging(job.id)
            await queue_staging(db, web_scope.tenant, job)
        elif job.status == COMMITTING:
            job = await service.start_commit(job.id, job.mode)
            await queue_commit(db, web_scope.tenant, job)
        return Redirect(_url(web_scope, job), status_code=303)

    @post("/{job_id:str}/cancel", name="import_cancel")
    async def cancel(self, request: Request, web_scope: WebScope, job_id: str) -> Response:
        service = _service(web_scope)
        try:
            job = await service.cancel(job_id)
        except InvalidInput as invalid:
            return await _job_page(request, web_scope, await service.get_job(job_id), invalid)
        return Redirect(_url(web_scope, job), status_code=303)

    @get("/{job_id:str}/report.xlsx", name="import_report")
    async def report(self, request: Request, web_scope: WebScope, job_id: str) -> Response:
        """Every refused row with its field and problem in the reader's language; no values."""
        service = _service(web_scope)
        job = await service.get_job(job_id)
        report = ProblemReport(gettext_for(request))
        async for row in service.problem_rows(job.id):
            report.add(row)
        name = f"import-problems-{job.created_at:%Y%m%d}-{str(job.id)[:8]}.xlsx"
        return Response(
            content=report.to_bytes(),
            media_type=XLSX,
            headers={"Content-Disposition": attachment(name), "Cache-Control": "no-store"},
        )
