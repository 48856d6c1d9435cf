"""AuditService: append hash-chained audit events, verify a tenant's chain, list events.

Every audited write calls `record()` inside the tenant transaction that makes the write, so the
event commits or rolls back with it. Each event's hash is SHA-256 over the previous event's hash
followed by a canonical JSON encoding of the event; the first event's previous hash is empty.

Concurrency: `record()` locks the tenant's single `audit_chain_head` row (SELECT ... FOR UPDATE)
before it reads the last sequence number and hash. The lock is held until the transaction ends,
so a tenant's audited writes are serialised at that point: a second writer waits, then reads the
head the first one committed (READ COMMITTED re-reads a row that changed while it waited). That
is what keeps the chain gap-free and linear under any number of concurrent writers; a rolled
back write rolls back its event and the head together, so no sequence number is lost. Tenants
never wait for each other (each has its own head row). Call `record()` as the last statement of
a write so the head stays locked for as short a time as possible.

What is hashed must be recomputable from the stored row. jsonb reorders keys and normalises
numbers, so `changes` is first turned into plain JSON values (`to_jsonable`: Decimal and float
become strings, dates ISO strings, UUIDs strings), and the hash covers the canonical encoding of
that (sorted keys, no spaces, UTF-8). `verify()` loads the stored jsonb back and encodes it the
same way, which gives the same bytes because strings, integers, booleans, null, lists and objects
survive jsonb unchanged.

Retention may remove a prefix of the chain (ADR 0011): `prune()` verifies the events from the
latest checkpoint up to the last one due, then calls the schema's `audit_prune` function, which
checks the prefix again, records a checkpoint (seq and hash of the last removed event) and deletes
the prefix in the same transaction. `verify()` starts after the latest checkpoint, whose hash the
first remaining event must carry as its previous hash, and checks the checkpoints' own chain first.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, LargeBinary, Text, func, insert, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import SelectBase

from tenantcrm.audit.models import HEAD_ID, AuditChainHead, AuditCheckpoint, AuditEvent
from tenantcrm.auth.models import User
from tenantcrm.auth.permissions import Principal
from tenantcrm.customers.models import PiiAccess

AUDIT_READ = "audit.read"

# The actions the issue names; `action` is free-form within NAME_PATTERN, these keep them uniform.
CREATE = "create"
UPDATE = "update"
DELETE = "delete"
SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
SIGN_OUT = "sign_out"
PERMISSION_CHANGE = "permission_change"
EXPORT = "export"
IMPORT = "import"
REVEAL = "reveal"
REVERSE = "reverse"
CLASSIFY = "classify"

ACTIONS = (
    CREATE,
    UPDATE,
    DELETE,
    SIGN_IN,
    SIGN_OUT,
    PERMISSION_CHANGE,
    EXPORT,
    IMPORT,
    REVEAL,
    REVERSE,
    CLASSIFY,
)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.]{0,62}$")
MAX_LABEL_LENGTH = 320
VERIFY_BATCH = 1000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
REDACTED = "[redacted]"

VERIFY_ATTEMPTS = 3
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_events = AuditEvent.__table__
_head = AuditChainHead.__table__
_checkpoints = AuditCheckpoint.__table__


# --- canonical encoding and hashing ---


def _clean_text(value: str) -> str:
    """Text PostgreSQL accepts unchanged: no NUL (text and jsonb refuse it), no lone surrogates."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def to_jsonable(value: Any) -> Any:
    """Plain JSON values that survive a jsonb round trip exactly.

    Decimal becomes its string ("1.10" stays "1.10"), float its repr string (jsonb would turn
    1e20 into 100000000000000000000), datetime/date/time ISO strings, UUID its string, Enum its
    value, bytes hex, tuples and sets lists (sets sorted), mapping keys strings.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((to_jsonable(v) for v in value), key=canonical_json)
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot record a {type(value).__name__} in an audit event")


def _key(key: Any) -> str:
    converted = to_jsonable(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _at_iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit timestamps are timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    prev_hash: bytes,
    *,
    seq: int,
    at: datetime,
    actor_id: uuid.UUID | None,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | None,
    changes: Any,
) -> bytes:
    """SHA-256 over the previous hash and the canonical encoding of one event."""
    body = canonical_json(
        [
            seq,
            _at_iso(at),
            None if actor_id is None else str(actor_id),
            actor,
            action,
            entity_type,
            entity_id,
            changes,
        ]
    )
    return hashlib.sha256(bytes(prev_hash) + body.encode("utf-8")).digest()


# --- recording ---


def _same(old: Any, new: Any) -> bool:
    # Decimal("1.1") equals Decimal("1.10") (a numeric column reloaded); True equals 1 does not count.
    return isinstance(old, bool) == isinstance(new, bool) and old == new


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any], *, redact: Collection[str] = ()
) -> dict[str, dict[str, Any]]:
    """{field: {"from": old, "to": new}} for the fields whose value changed (a missing field is None).

    Fields in `redact` (PII such as national ID or phone) record that they changed, not the values.
    """
    changed: dict[str, dict[str, Any]] = {}
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if _same(old, new):
            continue
        if field in redact:
            old, new = (None if old is None else REDACTED), (None if new is None else REDACTED)
        changed[field] = {"from": old, "to": new}
    return changed


def _actor(actor: Principal | None, actor_label: str | None) -> tuple[uuid.UUID | None, str]:
    if actor is not None:
        label = actor_label or actor.email
        actor_id: uuid.UUID | None = actor.user_id
    elif actor_label:
        label, actor_id = actor_label, None
    else:
        raise ValueError("an audit event needs a principal or an actor label (e.g. 'system:cli')")
    label = _clean_text(label.strip())[:MAX_LABEL_LENGTH]
    if not label:
        raise ValueError("empty actor label")
    return actor_id, label


def _check_name(kind: str, value: str) -> None:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"invalid audit {kind} {value!r}")


async def record(
    session: AsyncSession,
    *,
    actor: Principal | None,
    actor_label: str | None = None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    changes: Mapping[str, Any],
) -> int:
    """Append one event to the tenant's chain inside the caller's transaction; returns its seq.

    `actor` None means a system or CLI actor named by `actor_label` (e.g. "system:retention").
    With a principal the label defaults to the principal's e-mail address.
    """
    actor_id, label = _actor(actor, actor_label)
    _check_name("action", action)
    _check_name("entity type", entity_type)
    payload = to_jsonable(dict(changes))
    entity = None if entity_id is None else _clean_text(str(entity_id))
    # The caller's pending ORM changes reach the database (and fail) before the chain is locked.
    await session.flush()

    head = (
        await session.execute(
            select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID).with_for_update()
        )
    ).one()
    seq = head.seq + 1
    at = datetime.now(UTC)  # taken under the lock, so time follows seq as far as the clock does
    digest = event_hash(
        head.hash,
        seq=seq,
        at=at,
        actor_id=actor_id,
        actor=label,
        action=action,
        entity_type=entity_type,
        entity_id=entity,
        changes=payload,
    )
    appended = (
        insert(_events)
        .values(
            seq=seq,
            at=at,
            actor_id=actor_id,
            actor=label,
            action=action,
            entity_type=entity_type,
            entity_id=entity,
            changes=payload,
            prev_hash=bytes(head.hash),
            hash=digest,
        )
        .cte("appended")
    )
    # One round trip for the event and the new head (a data-modifying CTE always runs).
    await session.execute(
        update(_head).where(_head.c.id == HEAD_ID).values(seq=seq, hash=digest).add_cte(appended)
    )
    return seq


# --- verification ---


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def checkpoint_hash(
    prev_row_hash: bytes,
    *,
    seq: int,
    hash: bytes,
    prev_seq: int,
    events_removed: int,
    at: datetime,
    cutoff: datetime,
    run_id: uuid.UUID,
    actor: str,
) -> bytes:
    """The row hash `audit_prune` (t0009) stores: SHA-256 over the previous checkpoint's row hash
    and `seq|hash hex|prev_seq|events_removed|at µs|cutoff µs|run id|actor` in UTF-8."""
    body = "|".join(
        (
            str(seq),
            bytes(hash).hex(),
            str(prev_seq),
            str(events_removed),
            str(_micros(at)),
            str(_micros(cutoff)),
            str(run_id),
            actor,
        )
    )
    return hashlib.sha256(bytes(prev_row_hash) + body.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the remaining chain starts: the latest checkpoint, or the empty start of the chain."""

    seq: int
    hash: bytes
    row_hash: bytes


START = Anchor(0, b"", b"")


class BrokenCheckpoint(Exception):
    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq


async def _anchor(session: AsyncSession) -> Anchor:
    """The latest checkpoint after checking every checkpoint against the one before it; raises
    BrokenCheckpoint naming the first checkpoint (by its seq) that is not."""
    anchor = START
    for row in await session.execute(select(_checkpoints).order_by(_checkpoints.c.seq)):
        recomputed = checkpoint_hash(
            anchor.row_hash,
            seq=row.seq,
            hash=row.hash,
            prev_seq=row.prev_seq,
            events_removed=row.events_removed,
            at=row.at,
            cutoff=row.cutoff,
            run_id=row.run_id,
            actor=row.actor,
        )
        linked = row.prev_seq == anchor.seq and row.events_removed == row.seq - anchor.seq
        if not linked or recomputed != bytes(row.row_hash):
            raise BrokenCheckpoint(row.seq)
        anchor = Anchor(row.seq, bytes(row.hash), recomputed)
    return anchor


async def _planted(session: AsyncSession, anchor: Anchor) -> int | None:
    """The first event at or below the anchor's seq (0 without a checkpoint), which no write of the
    application leaves: pruning frees the seqs it removed and the tenant role may insert, so an event
    there was not vouched for by the checkpoint (and `audit_prune` would refuse every prefix)."""
    planted = await session.scalar(select(func.min(_events.c.seq)).where(_events.c.seq <= anchor.seq))
    return None if planted is None else int(planted)


async def _walk(
    session: AsyncSession, anchor: Anchor, through: int, batch_size: int
) -> tuple[int | None, bytes]:
    """Recompute the events after `anchor` up to `through`; (first broken seq or None, last hash)."""
    expected, prev = anchor.seq + 1, anchor.hash
    while expected <= through:
        rows = (
            await session.execute(
                select(_events)
                .where(_events.c.seq >= expected, _events.c.seq <= through)
                .order_by(_events.c.seq)
                .limit(batch_size)
            )
        ).all()
        if not rows:
            return expected, prev
        for row in rows:
            if row.seq != expected or bytes(row.prev_hash) != prev:
                return expected, prev
            recomputed = event_hash(
                prev,
                seq=row.seq,
                at=row.at,
                actor_id=row.actor_id,
                actor=row.actor,
                action=row.action,
                entity_type=row.entity_type,
                entity_id=row.entity_id,
                changes=row.changes,
            )
            if recomputed != bytes(row.hash):
                return expected, prev
            prev = recomputed
            expected += 1
    return None, prev


@dataclass(frozen=True, slots=True)
class VerifyResult:
    length: int
    """Events in the chain as its head records it (the head's seq when the walk began), pruned
    ones included."""
    first_broken_seq: int | None
    """The first sequence number whose event is missing, altered or out of chain; None: intact.
    With `broken_checkpoint`, the seq of the first checkpoint that does not verify."""
    checkpoint_seq: int = 0
    """Events up to this seq were removed under a verified checkpoint; the walk starts after it."""
    broken_checkpoint: bool = False

    @property
    def intact(self) -> bool:
        return self.first_broken_seq is None


async def _verify_once(session: AsyncSession, batch_size: int) -> VerifyResult:
    head = (await session.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID))).one()
    length = int(head.seq)
    try:
        anchor = await _anchor(session)
    except BrokenCheckpoint as broken:
        return VerifyResult(length, broken.seq, broken_checkpoint=True)
    if anchor.seq > length:
        return VerifyResult(length, anchor.seq, anchor.seq, broken_checkpoint=True)
    if (planted := await _planted(session, anchor)) is not None:
        return VerifyResult(length, planted, anchor.seq)
    broken_seq, prev = await _walk(session, anchor, length, batch_size)
    if broken_seq is not None:
        return VerifyResult(length, broken_seq, anchor.seq)
    if bytes(head.hash) != prev:
        return VerifyResult(length, max(length, 1), anchor.seq)
    # One statement, one snapshot: an event and its head commit together, so a row beyond the
    # head seen in the same snapshot was not written through record().
    beyond = await session.scalar(
        select(func.min(_events.c.seq)).where(
            _events.c.seq > select(_head.c.seq).where(_head.c.id == HEAD_ID).scalar_subquery()
        )
    )
    if beyond is not None:
        current_head = await session.scalar(select(_head.c.seq).where(_head.c.id == HEAD_ID))
        return VerifyResult(length, int(current_head) + 1, anchor.seq)
    return VerifyResult(length, None, anchor.seq)


async def verify(session: AsyncSession, *, batch_size: int = VERIFY_BATCH) -> VerifyResult:
    """Check the checkpoints, then walk the chain after the latest one in seq order, `batch_size`
    events per query, recomputing every hash.

    A break is reported at the first checkpoint whose row hash or link to the one before is wrong
    (or that lies beyond the head); at the first seq after the latest checkpoint that is missing
    (a gap or a deleted row, including an event removed without a checkpoint), whose stored
    previous hash is not the hash before it (the checkpoint's hash for the first one), or whose
    stored hash differs from the recomputed one; at the first event found at or below the latest
    checkpoint's seq (inserted after the pruning); and at the head's seq when the head's hash is not
    the last event's. Events beyond the head (which no write of the application produces) are a
    break at head.seq + 1. Concurrent writers may append while this runs: the walk covers the
    chain up to the head read at the start. A retention run that prunes while this runs makes
    events vanish under the walk; a break found when a newer checkpoint has appeared meanwhile is
    checked again from the start.
    """
    for _ in range(VERIFY_ATTEMPTS):
        result = await _verify_once(session, batch_size)
        latest = await session.scalar(select(func.coalesce(func.max(_checkpoints.c.seq), 0)))
        if result.intact or latest == result.checkpoint_seq:
            break
    return result


# --- pruning (retention) ---


@dataclass(frozen=True, slots=True)
class PruneResult:
    removed: int
    through_seq: int | None = None
    """The seq of the last removed event (the new checkpoint's), None when nothing was removed."""
    broken_seq: int | None = None
    """The prefix (or a checkpoint) did not verify at this seq, so nothing was removed."""


async def prune(
    session: AsyncSession,
    *,
    cutoff: datetime,
    run_id: uuid.UUID,
    actor_label: str,
    keep: SelectBase | None = None,
    batch_size: int = VERIFY_BATCH,
) -> PruneResult:
    """Remove the events before `cutoff` from the start of the chain, in the caller's transaction.

    The prefix ends before the first event at or after the cut-off and before the first event
    whose (entity_type, entity_id) `keep` selects (legal hold); it starts after the latest
    checkpoint. It is verified here (hashes recomputed), then `audit_prune` checks it again in the
    database, records the checkpoint and deletes it. A prefix or checkpoint that does not verify is
    left alone and reported (`broken_seq`): evidence of tampering is never pruned away.
    """
    _aware("cutoff", cutoff)
    try:
        anchor = await _anchor(session)
    except BrokenCheckpoint as broken:
        return PruneResult(0, broken_seq=broken.seq)
    if (planted := await _planted(session, anchor)) is not None:
        return PruneResult(0, broken_seq=planted)
    young = await session.scalar(
        select(_events.c.seq)
        .where(_events.c.seq > anchor.seq, _events.c.at >= cutoff)
        .order_by(_events.c.seq)
        .limit(1)
    )
    if young is not None:
        through = int(young) - 1
    else:
        through = int(await session.scalar(select(_head.c.seq).where(_head.c.id == HEAD_ID)) or 0)
    if keep is not None and through > anchor.seq:
        kept = await session.scalar(
            select(func.min(_events.c.seq)).where(
                _events.c.seq > anchor.seq,
                _events.c.seq <= through,
                tuple_(_events.c.entity_type, _events.c.entity_id).in_(keep),
            )
        )
        if kept is not None:
            through = int(kept) - 1
    if through <= anchor.seq:
        return PruneResult(0)
    broken_seq, last_hash = await _walk(session, anchor, through, batch_size)
    if broken_seq is not None:
        return PruneResult(0, broken_seq=broken_seq)
    removed = await session.scalar(
        select(
            func.audit_prune(
                literal(through, BigInteger),
                literal(last_hash, LargeBinary),
                literal(cutoff, DateTime(timezone=True)),
                literal(run_id, UUID),
                literal(_actor(None, actor_label)[1], Text),
            )
        )
    )
    return PruneResult(int(removed), through_seq=through)


# --- reading ---


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[AuditEvent]
    has_next_page: bool

    @property
    def end_cursor(self) -> int | None:
        """Pass as `after_seq` for the next (older) page."""
        return self.events[-1].seq if self.events else None


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


async def list_events(
    session: AsyncSession,
    principal: Principal,
    *,
    actor: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    first: int = DEFAULT_PAGE_SIZE,
    after_seq: int | None = None,
) -> AuditPage:
    """One page of events, newest first, keyset on seq (`after_seq`: the previous page's end).

    `actor` is a user id (UUID) or an actor label matched without regard to case; `since` is
    inclusive and `until` exclusive. Needs `audit.read`.
    """
    principal.require(AUDIT_READ)
    since, until = _aware("since", since), _aware("until", until)
    size = min(max(int(first), 1), MAX_PAGE_SIZE)
    query = select(AuditEvent)
    if actor:
        try:
            query = query.where(AuditEvent.actor_id == uuid.UUID(actor))
        except ValueError:
            query = query.where(func.lower(AuditEvent.actor) == actor.strip().lower())
    if action:
        query = query.where(AuditEvent.action == action)
    if entity_type:
        query = query.where(AuditEvent.entity_type == entity_type)
    if entity_id:
        query = query.where(AuditEvent.entity_id == entity_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    if after_seq is not None:
        query = query.where(AuditEvent.seq < int(after_seq))
    events = list((await session.scalars(query.order_by(AuditEvent.seq.desc()).limit(size + 1))).all())
    return AuditPage(events=events[:size], has_next_page=len(events) > size)


@dataclass(frozen=True)
class PiiAccessPage:
    entries: list[tuple[PiiAccess, str]]
    """(log row, the e-mail of the user who looked)."""
    has_next_page: bool

    @property
    def end_cursor(self) -> int | None:
        return self.entries[-1][0].id if self.entries else None


async def list_pii_access(
    session: AsyncSession,
    principal: Principal,
    *,
    user_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    first: int = DEFAULT_PAGE_SIZE,
    after_id: int | None = None,
) -> PiiAccessPage:
    """Who saw which customer's which field, when and why; newest first. Needs `audit.read`."""
    principal.require(AUDIT_READ)
    since, until = _aware("since", since), _aware("until", until)
    size = min(max(int(first), 1), MAX_PAGE_SIZE)
    query = select(PiiAccess, User.email).join(User, User.id == PiiAccess.user_id)
    if user_id is not None:
        query = query.where(PiiAccess.user_id == user_id)
    if customer_id is not None:
        query = query.where(PiiAccess.customer_id == customer_id)
    if since is not None:
        query = query.where(PiiAccess.at >= since)
    if until is not None:
        query = query.where(PiiAccess.at < until)
    if after_id is not None:
        query = query.where(PiiAccess.id < after_id)
    rows = [tuple(row) for row in await session.execute(query.order_by(PiiAccess.id.desc()).limit(size + 1))]
    return PiiAccessPage(entries=rows[:size], has_next_page=len(rows) > size)


async def list_actors(session: AsyncSession, principal: Principal) -> list[tuple[uuid.UUID, str]]:
    """The tenant's users as (id, e-mail), for the log pages' filters. Needs `audit.read`."""
    principal.require(AUDIT_READ)
    return [tuple(row) for row in await session.execute(select(User.id, User.email).order_by(User.email))]
