"""SavedViewService: a user's own saved list views (columns, filters, order), one of them the default."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.auth.permissions import CUSTOMERS_READ, Principal
from tenantcrm.customers.inputs import RISK_LEVELS, STATUSES, clean_text
from tenantcrm.customers.service import SORT_FIELDS
from tenantcrm.messages import N_
from tenantcrm.saved_views.models import SavedView
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

NAME_MAX = 60
MAX_VIEWS = 30  # per user and list: a bar of views, not a second database


@dataclass(frozen=True)
class ListSpec:
    """What a list page can show and how it can be filtered and ordered."""

    permission: str
    columns: tuple[str, ...]  # every column the list can show, in the order shown
    default_columns: tuple[str, ...]
    required: tuple[str, ...]  # always shown: the link to the record
    filters: Mapping[str, tuple[str, ...]]  # filter name -> the values it takes
    sorts: tuple[str, ...]
    default_sort: str


LISTS: dict[str, ListSpec] = {
    "customers": ListSpec(
        permission=CUSTOMERS_READ,
        columns=(
            "name",
            "kind",
            "phone",
            "region",
            "monthly_income",
            "credit_grade",
            "risk_level",
            "status",
            "tags",
            "owner",
            "last_contact_at",
            "created_at",
        ),
        default_columns=(
            "name",
            "kind",
            "phone",
            "region",
            "monthly_income",
            "risk_level",
            "status",
            "owner",
            "created_at",
        ),
        required=("name",),
        filters={"risk_level": RISK_LEVELS, "status": STATUSES},
        sorts=SORT_FIELDS,
        default_sort="created_at",
    )
}


class SavedViewNotFound(Exception):
    """No such view among the principal's own (another user's looks exactly like a missing one)."""


def spec_for(list_name: str) -> ListSpec:
    try:
        return LISTS[list_name]
    except KeyError:
        raise ValueError(f"no saved views for list {list_name!r}") from None


def _choice(field: str) -> FieldError:
    return FieldError(field, "invalid_choice", N_("Choose one of the listed values."))


def validate_view(spec: ListSpec, data: Mapping[str, Any]) -> dict[str, Any]:
    """A view as it is stored, or InvalidInput naming every refused field. Columns come back in the
    list's own order with the required ones added; empty filters are dropped."""
    errors: list[FieldError] = []
    name = " ".join(clean_text(data.get("name")).split())
    if not 1 <= len(name) <= NAME_MAX:
        errors.append(
            FieldError(
                "name",
                "required",
                N_("Enter a name of 1 to {max} characters."),
                params={"max": str(NAME_MAX)},
            )
        )
    raw_columns = data.get("columns") or ()
    if isinstance(raw_columns, str) or not all(isinstance(c, str) for c in raw_columns):
        errors.append(_choice("columns"))
        raw_columns = ()
    chosen = set(raw_columns)
    if chosen - set(spec.columns):
        errors.append(_choice("columns"))
    columns = [c for c in spec.columns if c in chosen or c in spec.required]
    raw_filters = data.get("filters") or {}
    filters: dict[str, str] = {}
    if not isinstance(raw_filters, Mapping):
        errors.append(_choice("filters"))
    else:
        for key, value in raw_filters.items():
            if key not in spec.filters or (value and value not in spec.filters[key]):
                errors.append(_choice(f"filters.{key}" if key in spec.filters else "filters"))
            elif value:
                filters[key] = str(value)
    sort = data.get("sort") or spec.default_sort
    if sort not in spec.sorts:
        errors.append(_choice("sort"))
    direction = data.get("direction") or "desc"
    if direction not in ("asc", "desc"):
        errors.append(_choice("direction"))
    if errors:
        raise InvalidInput(errors)
    return {
        "name": name,
        "columns": columns,
        "filters": filters,
        "sort": sort,
        "descending": direction == "desc",
        "is_default": bool(data.get("is_default")),
    }


class SavedViewService:
    """The principal's own saved views: nobody reads or changes another user's."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    def _mine(self, list_name: str):
        spec = spec_for(list_name)
        self.principal.require(spec.permission)
        return spec, select(SavedView).where(
            SavedView.user_id == self.principal.user_id, SavedView.list_name == list_name
        )

    async def _serialise(self, list_name: str) -> None:
        """One writer of a user's views of a list at a time, so name and default checks hold
        (a double-clicked save must not reach the unique indexes as a server error)."""
        key = f"saved_views|{self.principal.user_id}|{list_name}"
        await self.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))

    async def views(self, list_name: str) -> list[SavedView]:
        """The principal's views of a list, by name."""
        _spec, statement = self._mine(list_name)
        return list((await self.session.scalars(statement.order_by(SavedView.name))).all())

    async def default_view(self, list_name: str) -> SavedView | None:
        _spec, statement = self._mine(list_name)
        return await self.session.scalar(statement.where(SavedView.is_default))

    async def get(self, list_name: str, view_id: str | uuid.UUID) -> SavedView:
        _spec, statement = self._mine(list_name)
        parsed = parse_uuid(view_id)
        found = await self.session.scalar(statement.where(SavedView.id == parsed)) if parsed else None
        if found is None:
            raise SavedViewNotFound
        return found

    async def create(self, list_name: str, data: Mapping[str, Any]) -> SavedView:
        """A new view of the principal's; made the default when asked (the old default stops being one)."""
        spec, statement = self._mine(list_name)
        values = validate_view(spec, data)
        await self._serialise(list_name)
        existing = list((await self.session.scalars(statement)).all())
        if any(view.name == values["name"] for view in existing):
            raise InvalidInput(
                [FieldError("name", "duplicate", N_("You already have a view with this name."))]
            )
        if len(existing) >= MAX_VIEWS:
            raise InvalidInput(
                [
                    FieldError(
                        "name",
                        "too_many",
                        N_("You have {max} saved views of this list: delete one first."),
                        params={"max": str(MAX_VIEWS)},
                    )
                ]
            )
        if values["is_default"]:
            await self._clear_default(list_name)
        view = SavedView(id=uuid.uuid4(), user_id=self.principal.user_id, list_name=list_name, **values)
        self.session.add(view)
        await self.session.flush()
        return view

    async def set_default(self, list_name: str, view_id: str | uuid.UUID, default: bool) -> SavedView:
        """Make the view the list's default (opening the list without parameters shows it), or stop."""
        view = await self.get(list_name, view_id)
        await self._serialise(list_name)
        if default and not view.is_default:
            await self._clear_default(list_name)
        view.is_default = default
        view.updated_at = datetime.now(UTC)
        await self.session.flush()
        return view

    async def delete(self, list_name: str, view_id: str | uuid.UUID) -> None:
        view = await self.get(list_name, view_id)
        await self.session.delete(view)
        await self.session.flush()

    async def _clear_default(self, list_name: str) -> None:
        await self.session.execute(
            update(SavedView)
            .where(
                SavedView.user_id == self.principal.user_id,
                SavedView.list_name == list_name,
                SavedView.is_default,
            )
            .values(is_default=False, updated_at=datetime.now(UTC))
        )
