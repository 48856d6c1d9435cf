"""ImportService: import jobs from upload to commit, with their permission checks and all their SQL.

A job goes uploaded -> mapped -> staging -> staged -> committing -> done (or failed, cancelled).
Staging reads the file in chunks, each committed with its checkpoint (`staged_rows`), so a crash
resumes from the last chunk. The commit creates every customer, collateral and loan in one
transaction, so an interrupted import leaves nothing half-written; rerunning it resumes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import LargeBinary, any_, bindparam, delete, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import CUSTOMERS_READ, CUSTOMERS_WRITE, IMPORT, LOANS_WRITE, Principal
from tenantcrm.auth.service import principal_for_user
from tenantcrm.collateral.models import Appraisal, Collateral
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import (
    DUPLICATE_IDENTITY,
    INDEXED_PII,
    MASKS,
    CipherSource,
    CustomerService,
)
from tenantcrm.database import Database
from tenantcrm.imports.fields import IGNORE, REPEATABLE, TARGETS
from tenantcrm.imports.models import (
    CANCELLED,
    COMMITTING,
    DONE,
    DUPLICATE,
    FAILED,
    INVALID,
    KINDS,
    MAPPED,
    MODES,
    STAGED,
    STAGING,
    UPLOADED,
    VALID,
    ImportJob,
    ImportRow,
)
from tenantcrm.imports.reading import Layout, count_rows, data_rows, inspect
from tenantcrm.imports.rows import RowOutcome, notes_text, read_row
from tenantcrm.loans import ledger as book
from tenantcrm.loans.models import InstallmentRow, Loan, loan_collateral
from tenantcrm.loans.schedule import build_schedule
from tenantcrm.loans.service import refresh_summaries
from tenantcrm.messages import N_
from tenantcrm.pii.cipher import TenantCipher, version_of
from tenantcrm.tenancy import quotas
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

CHUNK_ROWS = 2000
COMMIT_BATCH = 2000
PREVIEW_ROWS = 20
MAX_FILE_BYTES = 30 * 1024 * 1024
FILE_NAME_MAX = 255
LIST_LIMIT = 50
CLI_ACTOR = "cli"
DUPLICATE_PHONE = N_("A customer with this name and phone number already exists.")
SAME_ID_AS_ROW = N_("The same identity number as row {row}.")
SAME_PHONE_AS_ROW = N_("The same name and phone number as row {row}.")
# Why a job failed, as message ids shown in the reader's language.
PROBLEMS_REFUSED = N_("Some rows have problems and all-or-nothing was chosen, so nothing was imported.")
FILE_UNREADABLE = N_("The file could not be read to the end, so nothing was imported.")
INTERRUPTED = N_("The import was interrupted. Resume it to continue from where it stopped.")

Progress = Callable[[ImportJob], None]


class ImportNotFound(Exception):
    """No such import job for this principal (the same for a random id and another user's job)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _bytes_array(values: list[bytes]) -> Any:
    # One array parameter, not thousands of IN parameters to render and bind.
    return bindparam(None, values, type_=ARRAY(LargeBinary))


def _errors_json(errors: Iterable[FieldError]) -> list[dict[str, Any]]:
    return [
        {
            "field": e.field,
            "code": e.code,
            "message": e.message,
            **({"params": dict(e.params)} if e.params else {}),
        }
        for e in errors
    ]


def row_errors(row: ImportRow) -> list[FieldError]:
    """A staged row's problems as FieldErrors, ready to be translated."""
    return [FieldError(e["field"], e["code"], e["message"], e.get("params")) for e in row.errors]


def _row_key(job_id: uuid.UUID, row_number: int) -> str:
    return f"{job_id}:{row_number}"


async def copy_rows(session: AsyncSession, table: str, records: list[dict[str, Any]]) -> None:
    """Bulk insert by COPY on the session's own connection and transaction (so inside the tenant's
    role and schema): an order of magnitude faster than an INSERT per row for 100,000 rows.
    jsonb values are given as JSON text; every record has the keys of the first."""
    if not records:
        return
    await session.flush()
    columns = list(records[0])
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(
        table, columns=columns, records=[tuple(record[c] for c in columns) for record in records]
    )


def layout_of(job: ImportJob) -> Layout:
    return Layout(
        format=job.mapping.get("format", "xlsx"),
        sheet=job.sheet,
        header_row=int(job.mapping.get("header_row", 1)),
        headers=list(job.headers),
        data_rows=job.mapping.get("data_rows"),
    )


def columns_of(job: ImportJob) -> dict[int, str]:
    return {int(index): target for index, target in job.mapping.get("columns", {}).items()}


def check_columns(columns: Mapping[int, str], width: int) -> dict[int, str]:
    """A mapping the user chose: known targets, each field once, a name column among them."""
    clean: dict[int, str] = {}
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, target in columns.items():
        if not 0 <= index < width or target not in TARGETS:
            errors.append(FieldError("mapping", "invalid_choice", N_("Choose one of the listed values.")))
            continue
        if target in seen and target not in REPEATABLE:
            errors.append(
                FieldError(
                    f"column.{index}", "mapped_twice", N_("Two columns cannot be imported as the same field.")
                )
            )
        seen.add(target)
        clean[index] = target
    if "name" not in seen:
        errors.append(
            FieldError("mapping", "no_name", N_("Choose the column that holds the customer's name."))
        )
    if errors:
        raise InvalidInput(errors)
    return {index: clean.get(index, IGNORE) for index in range(width)}


@dataclass
class SeenRows:
    """Identity numbers and (phone, name) pairs of the valid rows staged so far, for duplicates
    within the file; rebuilt from the staged rows when staging resumes."""

    ids: dict[bytes, int] = field(default_factory=dict)
    phones: dict[bytes, list[tuple[int, str, bool]]] = field(default_factory=dict)

    def add(self, row_number: int, name: str, id_bidx: bytes | None, phone_bidx: bytes | None) -> None:
        if id_bidx is not None:
            self.ids.setdefault(id_bidx, row_number)
        if phone_bidx is not None:
            self.phones.setdefault(phone_bidx, []).append((row_number, name, id_bidx is not None))


def _same_person_by_phone(name: str, has_id: bool, matches: Iterable[tuple[str, bool]]) -> bool:
    # Families share phones: the same phone is the same person only under the same name, and two
    # different identity numbers are two people whatever their phone.
    return any(other == name and not (has_id and other_has_id) for other, other_has_id in matches)


def _duplicate(
    outcome: RowOutcome,
    id_bidx: bytes | None,
    phone_bidx: bytes | None,
    seen: SeenRows,
    existing_ids: set[bytes],
    existing_phones: Mapping[bytes, list[tuple[str, bool]]],
) -> FieldError | None:
    has_id = id_bidx is not None
    if id_bidx is not None:
        if id_bidx in existing_ids:
            return DUPLICATE_IDENTITY
        if (row := seen.ids.get(id_bidx)) is not None:
            return FieldError("national_id", "duplicate_in_file", SAME_ID_AS_ROW, {"row": str(row)})
    if phone_bidx is not None:
        if _same_person_by_phone(outcome.name, has_id, existing_phones.get(phone_bidx, [])):
            return FieldError("phone", "duplicate", DUPLICATE_PHONE)
        for row, name, other_has_id in seen.phones.get(phone_bidx, []):
            if _same_person_by_phone(outcome.name, has_id, [(name, other_has_id)]):
                return FieldError("phone", "duplicate_in_file", SAME_PHONE_AS_ROW, {"row": str(row)})
    return None


class ImportService:
    """Import jobs of the tenant whose unit of work `session` is.

    `principal` None is the platform's CLI, acting below the permission checks like
    `tenantcrm users create`: its customers have no owner and its audit actor is "cli".
    A job is seen by the user who started it, and by roles whose record scope is all.
    """

    def __init__(self, session: AsyncSession, principal: Principal | None, cipher: CipherSource) -> None:
        self.session = session
        self.principal = principal
        self._cipher_source = cipher

    async def _cipher(self, need_version: int | None = None) -> TenantCipher:
        return await self._cipher_source(need_version)

    def check_can_import(self, kind: str = "customers") -> None:
        """Importing writes customers (and for loans, collateral and loans): it needs those rights
        as well as `import`."""
        if self.principal is None:
            return
        self.principal.require(IMPORT)
        self.principal.require(CUSTOMERS_WRITE)
        if kind == "loans":
            self.principal.require(LOANS_WRITE)

    async def _check_can_create_lending(self, job: ImportJob) -> None:
        """Rows that bring collateral or loans need loans.write, whatever the job's kind."""
        if self.principal is None or self.principal.can(LOANS_WRITE):
            return
        lending = await self.session.scalar(
            select(ImportRow.row_number)
            .where(
                ImportRow.job_id == job.id,
                ImportRow.status == VALID,
                ImportRow.values["loan"].astext.is_not(None)
                | ImportRow.values["collateral"].astext.is_not(None),
            )
            .limit(1)
        )
        if lending is not None:
            self.principal.require(LOANS_WRITE)

    def _visible(self, statement: Any) -> Any:
        if self.principal is None or self.principal.record_scope == "all":
            return statement
        return statement.where(ImportJob.created_by == self.principal.user_id)

    # --- reading ---

    async def get_job(self, job_id: str | uuid.UUID, *, for_update: bool = False) -> ImportJob:
        self.check_can_import()
        parsed = parse_uuid(job_id)
        statement = self._visible(select(ImportJob).where(ImportJob.id == parsed))
        if for_update:
            statement = statement.with_for_update()
        job = await self.session.scalar(statement) if parsed else None
        if job is None:
            raise ImportNotFound
        return job

    async def list_jobs(self, limit: int = LIST_LIMIT) -> list[ImportJob]:
        self.check_can_import()
        rows = await self.session.scalars(
            self._visible(select(ImportJob)).order_by(ImportJob.created_at.desc(), ImportJob.id).limit(limit)
        )
        return list(rows)

    async def preview(self, job_id: str | uuid.UUID, limit: int = PREVIEW_ROWS) -> dict[str, list[ImportRow]]:
        """The first staged rows, and the first rows with problems (masked PII only)."""
        job = await self.get_job(job_id)
        first = await self.session.scalars(
            select(ImportRow).where(ImportRow.job_id == job.id).order_by(ImportRow.row_number).limit(limit)
        )
        problems = await self.session.scalars(
            select(ImportRow)
            .where(ImportRow.job_id == job.id, ImportRow.status != VALID)
            .order_by(ImportRow.row_number)
            .limit(limit)
        )
        return {"rows": list(first), "problems": list(problems)}

    async def problem_rows(self, job_id: str | uuid.UUID) -> AsyncIterator[ImportRow]:
        """Every refused row (invalid or duplicate), in sheet order, for the downloadable report."""
        job = await self.get_job(job_id)
        last = 0
        while True:
            batch = list(
                await self.session.scalars(
                    select(ImportRow)
                    .where(ImportRow.job_id == job.id, ImportRow.status != VALID, ImportRow.row_number > last)
                    .order_by(ImportRow.row_number)
                    .limit(COMMIT_BATCH)
                )
            )
            if not batch:
                return
            for row in batch:
                yield row
            last = batch[-1].row_number

    async def notes_for_customer(self, customer_id: str | uuid.UUID) -> list[str]:
        """What imports kept as notes about a customer the principal may see (customer pages)."""
        if self.principal is not None:
            self.principal.require(CUSTOMERS_READ)
            customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
            customer_id = customer.id
        notes = await self.session.scalars(
            select(ImportRow.notes)
            .where(ImportRow.customer_id == parse_uuid(customer_id), ImportRow.notes != "")
            .order_by(ImportRow.job_id, ImportRow.row_number)
        )
        return list(notes)

    # --- the steps a user takes ---

    async def upload(self, file_name: str, content: bytes, kind: str = "customers") -> ImportJob:
        """Check the file (readable, a header row) and keep it encrypted until the job ends."""
        kind = kind if kind in KINDS else "customers"
        self.check_can_import(kind)
        if len(content) > MAX_FILE_BYTES:
            raise InvalidInput([FieldError("file", "too_large", N_("The file is larger than 30 MB."))])
        name = " ".join(str(file_name or "upload").split())[-FILE_NAME_MAX:] or "upload"
        layout = inspect(content, name)
        job = ImportJob(
            id=uuid.uuid4(),
            kind=kind,
            file_name=name,
            sheet=layout.sheet,
            headers=layout.headers,
            mapping={
                "format": layout.format,
                "header_row": layout.header_row,
                "data_rows": layout.data_rows,
                "columns": {str(i): target for i, target in layout.guessed_mapping().items()},
                **({"actor": CLI_ACTOR} if self.principal is None else {}),
            },
            status=UPLOADED,
            created_by=None if self.principal is None else self.principal.user_id,
        )
        cipher = await self._cipher()
        job.file_enc = cipher.encrypt(
            "import_jobs", "file_enc", job.id, base64.b64encode(content).decode("ascii")
        )
        job.pii_key_version = cipher.current_version
        self.session.add(job)
        await self.session.flush()
        return job

    async def save_mapping(
        self, job_id: str | uuid.UUID, columns: Mapping[int, str], kind: str | None = None
    ) -> ImportJob:
        """The columns as the user mapped them; the job is then ready to be staged."""
        job = await self.get_job(job_id, for_update=True)
        if job.status not in (UPLOADED, MAPPED):
            raise _wrong_step()
        if kind in KINDS:
            job.kind = kind
        self.check_can_import(job.kind)
        clean = check_columns(columns, len(job.headers))
        job.mapping = {**job.mapping, "columns": {str(i): target for i, target in clean.items()}}
        job.status = MAPPED
        job.updated_at = _now()
        return job

    async def start_staging(self, job_id: str | uuid.UUID) -> ImportJob:
        """Mark a mapped job for staging (the caller queues the work); resuming a stopped one is
        the same call."""
        job = await self.get_job(job_id, for_update=True)
        self.check_can_import(job.kind)
        if job.status not in (MAPPED, STAGING):
            raise _wrong_step()
        if job.status == MAPPED:
            job.total_rows = job.mapping.get("data_rows") or 0  # for the progress bar until counted
        job.status, job.error, job.updated_at = STAGING, None, _now()
        return job

    async def start_commit(self, job_id: str | uuid.UUID, mode: str) -> ImportJob:
        """Choose the mode and mark the staged job for committing (the caller queues the work).
        All-or-nothing over rows with problems is refused here already, with nothing changed."""
        job = await self.get_job(job_id, for_update=True)
        self.check_can_import(job.kind)
        if job.status not in (STAGED, COMMITTING):
            raise _wrong_step()
        await self._check_can_create_lending(job)
        if mode not in MODES:
            raise InvalidInput([FieldError("mode", "invalid_choice", N_("Choose one of the listed values."))])
        if mode == "all_or_nothing" and job.problem_rows:
            raise InvalidInput(
                [
                    FieldError(
                        "mode",
                        "rows_with_problems",
                        N_("{count} rows have problems: correct the file, or import the others only."),
                        {"count": str(job.problem_rows)},
                    )
                ]
            )
        if self.principal is not None and job.valid_rows:  # early word on the page; commit() decides
            await quotas.check_customers(self.session, self.principal.tenant, job.valid_rows)
        job.mode, job.status, job.error, job.updated_at = mode, COMMITTING, None, _now()
        return job

    async def cancel(self, job_id: str | uuid.UUID) -> ImportJob:
        """Stop a job before its commit; the file and the staged personal data are dropped."""
        job = await self.get_job(job_id, for_update=True)
        if job.status in (COMMITTING, DONE, FAILED, CANCELLED):
            raise _wrong_step()
        await self._finish(job, CANCELLED)
        return job

    # --- the work, run by a job (or the CLI) ---

    async def _file(self, job: ImportJob) -> bytes:
        if job.file_enc is None:
            raise InvalidInput([FieldError("file", "gone", FILE_UNREADABLE)])
        cipher = await self._cipher(version_of(job.file_enc))
        return base64.b64decode(cipher.decrypt("import_jobs", "file_enc", job.id, job.file_enc))

    async def _seen_rows(self, job: ImportJob) -> SeenRows:
        seen = SeenRows()
        rows = await self.session.execute(
            select(
                ImportRow.row_number,
                ImportRow.values["name"].astext,
                ImportRow.national_id_bidx,
                ImportRow.phone_bidx,
            )
            .where(ImportRow.job_id == job.id, ImportRow.status == VALID)
            .order_by(ImportRow.row_number)
        )
        for number, name, id_bidx, phone_bidx in rows:
            seen.add(number, name or "", id_bidx, phone_bidx)
        return seen

    async def _existing(
        self, id_bidxs: list[bytes], phone_bidxs: list[bytes]
    ) -> tuple[set[bytes], dict[bytes, list[tuple[str, bool]]]]:
        """Customers of the whole tenant (not only the principal's scope) with these indexes: the
        same person must not be entered twice by two officers."""
        ids = set(
            await self.session.scalars(
                select(Customer.national_id_bidx).where(
                    Customer.national_id_bidx == any_(_bytes_array(id_bidxs))
                )
            )
            if id_bidxs
            else []
        )
        phones: dict[bytes, list[tuple[str, bool]]] = {}
        if phone_bidxs:
            rows = await self.session.execute(
                select(Customer.phone_bidx, Customer.name, Customer.national_id_bidx.is_not(None)).where(
                    Customer.phone_bidx == any_(_bytes_array(phone_bidxs))
                )
            )
            for phone, name, has_id in rows:
                phones.setdefault(bytes(phone), []).append((name, has_id))
        return {bytes(b) for b in ids}, phones

    async def _stage_chunk(
        self,
        job: ImportJob,
        chunk: list[tuple[int, list[str | None]]],
        seen: SeenRows,
        cipher: TenantCipher,
        today: date,
    ) -> None:
        columns, headers = columns_of(job), job.headers
        # Pure Python work, in a thread: an app process taking jobs keeps answering pages meanwhile.
        outcomes = await asyncio.to_thread(_read_rows, chunk, columns, headers, job.kind, today)
        indexes = {
            outcome.row_number: (
                cipher.blind_index("national_id", outcome.pii["national_id"])
                if "national_id" in outcome.pii
                else None,
                cipher.blind_index("phone", outcome.pii["phone"]) if "phone" in outcome.pii else None,
            )
            for outcome in outcomes
            if outcome.valid
        }
        existing_ids, existing_phones = await self._existing(
            [i for i, _ in indexes.values() if i is not None],
            [p for _, p in indexes.values() if p is not None],
        )
        records = []
        counts = {VALID: 0, INVALID: 0, DUPLICATE: 0}
        for outcome in outcomes:
            status, errors = (VALID, []) if outcome.valid else (INVALID, outcome.errors)
            id_bidx, phone_bidx = indexes.get(outcome.row_number, (None, None))
            if status == VALID:
                if duplicate := _duplicate(outcome, id_bidx, phone_bidx, seen, existing_ids, existing_phones):
                    status, errors = DUPLICATE, [duplicate]
                else:
                    seen.add(outcome.row_number, outcome.name, id_bidx, phone_bidx)
            counts[status] += 1
            records.append(
                {
                    "job_id": job.id,
                    "row_number": outcome.row_number,
                    "status": status,
                    "values": json.dumps(outcome.values(), ensure_ascii=False),
                    # Only rows that may become customers keep their PII (encrypted).
                    "pii_enc": cipher.encrypt(
                        "import_rows",
                        "pii_enc",
                        _row_key(job.id, outcome.row_number),
                        json.dumps(outcome.pii),
                    )
                    if status == VALID and outcome.pii
                    else None,
                    "national_id_bidx": id_bidx if status == VALID else None,
                    "phone_bidx": phone_bidx if status == VALID else None,
                    "errors": json.dumps(_errors_json(errors), ensure_ascii=False),
                    "notes": notes_text(outcome.notes),
                }
            )
        if records:
            await copy_rows(self.session, ImportRow.__tablename__, records)
        job.valid_rows += counts[VALID]
        job.invalid_rows += counts[INVALID]
        job.duplicate_rows += counts[DUPLICATE]

    async def _recheck_duplicates(self, job: ImportJob) -> None:
        """Customers created since staging (by another import or an officer) make rows duplicates."""
        last = 0
        while True:
            rows = (
                await self.session.execute(
                    select(
                        ImportRow.row_number,
                        ImportRow.values["name"].astext,
                        ImportRow.national_id_bidx,
                        ImportRow.phone_bidx,
                    )
                    .where(ImportRow.job_id == job.id, ImportRow.status == VALID, ImportRow.row_number > last)
                    .order_by(ImportRow.row_number)
                    .limit(COMMIT_BATCH)
                )
            ).all()
            if not rows:
                return
            last = rows[-1].row_number
            ids, phones = await self._existing(
                [r.national_id_bidx for r in rows if r.national_id_bidx is not None],
                [r.phone_bidx for r in rows if r.phone_bidx is not None],
            )
            for number, name, id_bidx, phone_bidx in rows:
                outcome = RowOutcome(number, name or "")
                found = _duplicate(
                    outcome,
                    None if id_bidx is None else bytes(id_bidx),
                    None if phone_bidx is None else bytes(phone_bidx),
                    SeenRows(),
                    ids,
                    phones,
                )
                if found is None:
                    continue
                await self.session.execute(
                    update(ImportRow)
                    .where(ImportRow.job_id == job.id, ImportRow.row_number == number)
                    .values(status=DUPLICATE, errors=_errors_json([found]), pii_enc=None)
                )
                job.valid_rows -= 1
                job.duplicate_rows += 1

    async def _create(self, job: ImportJob, cipher: TenantCipher) -> dict[str, int]:
        """Customers, their collateral and loans from every valid row, in the caller's transaction."""
        counts = {"customers": 0, "collateral": 0, "loans": 0}
        owner = None if self.principal is None else self.principal.user_id
        team = None if self.principal is None else self.principal.team_id
        last = 0
        while True:
            rows = (
                await self.session.execute(
                    select(ImportRow.row_number, ImportRow.values, ImportRow.pii_enc)
                    .where(ImportRow.job_id == job.id, ImportRow.status == VALID, ImportRow.row_number > last)
                    .order_by(ImportRow.row_number)
                    .limit(COMMIT_BATCH)
                )
            ).all()
            if not rows:
                return counts
            last = rows[-1].row_number
            versions = {version_of(pii_enc) for _, _, pii_enc in rows if pii_enc is not None}
            if not versions <= set(cipher.versions):  # staged before another process rotated the key
                cipher = await self._cipher(max(versions))
            batch = await asyncio.to_thread(_Batch.build, rows, job, cipher, owner, team)
            await batch.insert(self.session, job.id)
            # The import writes loans without LoanService: their customers' stored figures here.
            await refresh_summaries(self.session, {loan["customer_id"] for loan in batch.loans})
            counts["customers"] += len(batch.customers)
            counts["collateral"] += len(batch.collateral)
            counts["loans"] += len(batch.loans)

    async def _finish(self, job: ImportJob, status: str, error: str | None = None) -> None:
        """End the job: drop the file and every staged identity number and phone."""
        job.status, job.error = status, error
        job.file_enc, job.pii_key_version = None, None
        job.finished_at = job.updated_at = _now()
        await self.session.execute(
            update(ImportRow)
            .where(
                ImportRow.job_id == job.id,
                ImportRow.pii_enc.is_not(None)
                | ImportRow.national_id_bidx.is_not(None)
                | ImportRow.phone_bidx.is_not(None),
            )
            .values(pii_enc=None, national_id_bidx=None, phone_bidx=None)
        )


def _wrong_step() -> InvalidInput:
    return InvalidInput(
        [FieldError("status", "wrong_step", N_("This import is not at that step any more. Reload the page."))]
    )


# --- creating the records of one batch of rows ---

CUSTOMER_COLUMNS = (
    "id",
    "kind",
    "name",
    "region_code",
    "monthly_income",
    "gender",
    "birth_date",
    "marital_status",
    "occupation",
    "industry",
    "assets",
    "liabilities",
    "credit_score",
    "credit_grade",
    "tags",
    "source",
    "key_customer",
    "legal_hold",
    "risk_level",
    "status",
    "owner_id",
    "team_id",
    "pii_key_version",
    *(f"{name}_{suffix}" for name in MASKS for suffix in ("enc", "masked")),
    *(f"{name}_bidx" for name in INDEXED_PII),
)
MONEY_FIELDS = ("monthly_income", "assets", "liabilities")
# Each row gets its customer, and gives up its encrypted PII and indexes in the same write.
LINK_ROWS = text(
    "UPDATE import_rows SET customer_id = link.customer_id,"
    " pii_enc = NULL, national_id_bidx = NULL, phone_bidx = NULL"
    " FROM unnest(CAST(:numbers AS integer[]), CAST(:customers AS uuid[])) AS link(row_number, customer_id)"
    " WHERE import_rows.job_id = :job_id AND import_rows.row_number = link.row_number"
)


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _read_rows(
    chunk: list[tuple[int, list[str | None]]],
    columns: dict[int, str],
    headers: list[str],
    kind: str,
    today: date,
) -> list[RowOutcome]:
    return [
        outcome
        for number, cells in chunk
        if (outcome := read_row(number, cells, columns, headers, kind=kind, today=today)) is not None
    ]


@dataclass
class _Batch:
    customers: list[dict[str, Any]] = field(default_factory=list)
    collateral: list[dict[str, Any]] = field(default_factory=list)
    appraisals: list[dict[str, Any]] = field(default_factory=list)
    loans: list[dict[str, Any]] = field(default_factory=list)
    installments: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    row_customers: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        rows: Iterable[Any],
        job: ImportJob,
        cipher: TenantCipher,
        owner: uuid.UUID | None,
        team: uuid.UUID | None,
    ) -> _Batch:
        """The records of staged rows (number, values, encrypted PII), the PII decrypted from
        the staging row and encrypted anew for the customer's."""
        batch = cls()
        for number, values, pii_enc in rows:
            pii = {}
            if pii_enc is not None:
                pii = json.loads(cipher.decrypt("import_rows", "pii_enc", _row_key(job.id, number), pii_enc))
            batch.add(number, values, pii, cipher, owner, team, job.created_by)
        return batch

    def add(
        self,
        row_number: int,
        values: Mapping[str, Any],
        pii: Mapping[str, str],
        cipher: TenantCipher,
        owner: uuid.UUID | None,
        team: uuid.UUID | None,
        created_by: uuid.UUID | None,
    ) -> None:
        customer_id = uuid.uuid4()
        record: dict[str, Any] = dict.fromkeys(CUSTOMER_COLUMNS)
        record.update(
            {k: v for k, v in values["customer"].items() if k in CUSTOMER_COLUMNS},
            id=customer_id,
            owner_id=owner,
            team_id=team,
            tags=values["customer"].get("tags") or [],
            legal_hold=False,
        )
        for name in MONEY_FIELDS:
            record[name] = _money(record[name])
        if record["birth_date"]:
            record["birth_date"] = date.fromisoformat(record["birth_date"])
        # As CustomerService._store_pii: encrypted for this row and column, masked, indexed.
        for name, value in pii.items():
            column = f"{name}_enc"
            record[column] = cipher.encrypt("customers", column, customer_id, value)
            record[f"{name}_masked"] = MASKS[name](value)
            if name in INDEXED_PII:
                record[f"{name}_bidx"] = cipher.blind_index(name, value)
        if pii:
            record["pii_key_version"] = cipher.current_version
        self.customers.append(record)
        self.row_customers.append({"row_number": row_number, "customer_id": customer_id})
        collateral_id = None
        if item := values.get("collateral"):
            collateral_id = uuid.uuid4()
            self.collateral.append(
                {
                    "id": collateral_id,
                    "customer_id": customer_id,
                    "kind": item["kind"],
                    "description": item.get("description", ""),
                    "location": item.get("location", ""),
                    "region_code": item.get("region_code"),
                    "area_m2": _money(item.get("area_m2")),
                    "appraised_value": Decimal(item["appraised_value"]),
                    "appraised_on": date.fromisoformat(item["appraised_on"]),
                    "title_status": item.get("title_status", "clear"),
                    "lien_order": item.get("lien_order", 1),
                }
            )
            self.appraisals.append(
                {
                    "collateral_id": collateral_id,
                    "value": Decimal(item["appraised_value"]),
                    "appraised_on": date.fromisoformat(item["appraised_on"]),
                    "appraiser": item.get("appraiser", ""),
                    "recorded_by": created_by,
                }
            )
        if terms := values.get("loan"):
            self._add_loan(terms, customer_id, collateral_id, created_by)

    def _add_loan(
        self,
        terms: Mapping[str, Any],
        customer_id: uuid.UUID,
        collateral_id: uuid.UUID | None,
        created_by: Any,
    ) -> None:
        loan_id = uuid.uuid4()
        amount, rate = Decimal(terms["amount"]), Decimal(terms["annual_rate"])
        start, first_due = (
            date.fromisoformat(terms["start_date"]),
            date.fromisoformat(terms["first_due_date"]),
        )
        # Exactly what LoanService.create_loan stores: the contractual schedule replayed without payments.
        schedule = build_schedule(amount, rate, terms["term_months"], terms["method"], start, first_due)
        lines = book.replay(schedule, rate, terms["method"], []).lines
        self.loans.append(
            {
                "id": loan_id,
                "customer_id": customer_id,
                "product": terms["product"],
                "amount": amount,
                "annual_rate": rate,
                "term_months": terms["term_months"],
                "method": terms["method"],
                "start_date": start,
                "first_due_date": first_due,
                "status": "active",
                "classification": "normal",
                "flags": [],
                "created_by": created_by,
            }
        )
        self.installments.extend(
            {
                "loan_id": loan_id,
                "number": line.number,
                "due_date": line.due_date,
                "principal": line.principal,
                "interest": line.interest,
                "principal_paid": line.principal_paid,
                "interest_paid": line.interest_paid,
                "paid_on": line.paid_on,
            }
            for line in lines
        )
        if collateral_id is not None:
            self.links.append({"loan_id": loan_id, "collateral_id": collateral_id})

    async def insert(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        for table, records in (
            (Customer.__tablename__, self.customers),
            (Collateral.__tablename__, self.collateral),
            (Appraisal.__tablename__, self.appraisals),
            (Loan.__tablename__, self.loans),
            (InstallmentRow.__tablename__, self.installments),
            (loan_collateral.name, self.links),
        ):
            await copy_rows(session, table, records)
        await session.execute(
            LINK_ROWS,
            {
                "job_id": job_id,
                "numbers": [link["row_number"] for link in self.row_customers],
                "customers": [link["customer_id"] for link in self.row_customers],
            },
        )


# --- the engine: runs outside any request, in units of work of its own ---


async def _acting(session: AsyncSession, tenant: Tenant, job: ImportJob) -> Principal | None:
    """Who the job acts for: its user as they are now (a disabled user's job stops), or the CLI."""
    if job.created_by is None:
        if job.mapping.get("actor") != CLI_ACTOR:
            raise ImportNotFound
        return None
    principal = await principal_for_user(session, tenant, job.created_by)
    if principal is None:
        raise ImportNotFound
    return principal


async def _locked_job(session: AsyncSession, job_id: uuid.UUID) -> ImportJob | None:
    return await session.scalar(select(ImportJob).where(ImportJob.id == job_id).with_for_update())


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while chunk := list(islice(rows, size)):
        yield chunk


async def stage(
    db: Database,
    cipher: CipherSource,
    tenant: Tenant,
    job_id: str | uuid.UUID,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> ImportJob | None:
    """Validate and stage the job's rows, `chunk_rows` per transaction with its checkpoint;
    resumes after the last committed chunk. Returns the job as it ended up (None if not found)."""
    parsed = parse_uuid(job_id)
    async with tenant_session(db, tenant) as session:
        job = await _locked_job(session, parsed) if parsed else None
        if job is None or job.status != STAGING:  # marked by start_staging, committed by its caller
            return job
        service = ImportService(session, await _acting(session, tenant, job), cipher)
        service.check_can_import(job.kind)
        content = await service._file(job)
        layout = layout_of(job)
        if not job.staged_rows:
            await session.execute(delete(ImportRow).where(ImportRow.job_id == job.id))
            job.status, job.error = STAGING, None
            job.staged_rows = job.valid_rows = job.invalid_rows = job.duplicate_rows = 0
            job.total_rows = count_rows(content, layout)
        job.updated_at = _now()
        seen = await service._seen_rows(job)
        done, today = job.staged_rows, date.today()
    rows = islice(data_rows(content, layout), done, None)
    try:
        for chunk in _chunks(rows, chunk_rows):
            async with tenant_session(db, tenant) as session:
                job = await _locked_job(session, job.id)
                if job is None or job.status != STAGING:
                    return job  # cancelled meanwhile
                service = ImportService(session, await _acting(session, tenant, job), cipher)
                await service._stage_chunk(job, chunk, seen, await service._cipher(), today)
                job.staged_rows += len(chunk)
                job.updated_at = _now()
            if progress is not None:
                progress(job)
    except InvalidInput:  # the file broke off part-way: nothing of it can be trusted
        async with tenant_session(db, tenant) as session:
            job = await _locked_job(session, job.id)
            if job is not None:
                await ImportService(session, None, cipher)._finish(job, FAILED, FILE_UNREADABLE)
        return job
    async with tenant_session(db, tenant) as session:
        job = await _locked_job(session, job.id)
        if job is not None and job.status == STAGING:
            job.status, job.total_rows, job.updated_at = STAGED, job.staged_rows, _now()
    return job


async def commit(
    db: Database, cipher: CipherSource, tenant: Tenant, job_id: str | uuid.UUID
) -> ImportJob | None:
    """Create the records of every valid row in ONE transaction, audited as one `import` event.
    Anything failing rolls all of it back and leaves the job `committing`, to be run again."""
    parsed = parse_uuid(job_id)
    async with tenant_session(db, tenant) as session:
        job = await _locked_job(session, parsed) if parsed else None
        if job is None or job.status != COMMITTING:
            return job
        principal = await _acting(session, tenant, job)
        service = ImportService(session, principal, cipher)
        service.check_can_import(job.kind)
        await service._check_can_create_lending(job)
        await service._recheck_duplicates(job)
        if job.mode == "all_or_nothing" and job.problem_rows:
            await service._finish(job, FAILED, PROBLEMS_REFUSED)
            return job
        if job.valid_rows:
            try:  # before anything is written: every valid row becomes a customer
                await quotas.check_customers(session, tenant, job.valid_rows)
            except quotas.QuotaExceeded as exceeded:
                await service._finish(job, FAILED, quotas.IMPORT_REFUSED[exceeded.resource])
                return job
        counts = await service._create(job, await service._cipher())
        job.created_rows = counts["customers"]
        await audit.record(
            session,
            actor=principal,
            actor_label=None if principal is not None else CLI_ACTOR,
            action=audit.IMPORT,
            entity_type="import_job",
            entity_id=str(job.id),
            changes={
                "kind": job.kind,
                "mode": job.mode,
                "rows": job.valid_rows + job.problem_rows,
                "created_customers": counts["customers"],
                "created_collateral": counts["collateral"],
                "created_loans": counts["loans"],
                "skipped_invalid": job.invalid_rows,
                "skipped_duplicate": job.duplicate_rows,
            },
        )
        await service._finish(job, DONE)
    return job


async def mark_interrupted(db: Database, tenant: Tenant, job_id: str | uuid.UUID) -> None:
    """Note on a job whose run failed that it can be resumed (its status is left as it was)."""
    parsed = parse_uuid(job_id)
    async with tenant_session(db, tenant) as session:
        job = await _locked_job(session, parsed) if parsed else None
        if job is not None and job.running:
            job.error, job.updated_at = INTERRUPTED, _now()


async def run_import(
    db: Database,
    cipher: CipherSource,
    tenant: Tenant,
    principal: Principal | None,
    file_name: str,
    content: bytes,
    *,
    kind: str = "customers",
    mode: str = "skip_invalid",
    progress: Progress | None = None,
) -> ImportJob:
    """Every step at once with the columns as guessed (the CLI, tests, benches): nothing is
    written when the file or its headers are refused. All-or-nothing over rows with problems
    cancels the job and raises InvalidInput naming them."""
    async with tenant_session(db, tenant) as session:  # a refusal rolls it all back: nothing kept
        service = ImportService(session, principal, cipher)
        job = await service.upload(file_name, content, kind)
        await service.save_mapping(job.id, columns_of(job))
        await service.start_staging(job.id)
    staged = await stage(db, cipher, tenant, job.id, progress=progress)
    if staged is None or staged.status != STAGED:
        return staged or job
    try:
        async with tenant_session(db, tenant) as session:
            await ImportService(session, principal, cipher).start_commit(job.id, mode)
    except InvalidInput:
        async with tenant_session(db, tenant) as session:
            await ImportService(session, principal, cipher).cancel(job.id)
        raise
    done = await commit(db, cipher, tenant, job.id)
    assert done is not None
    return done
