"""Segment pages: the list, the builder (plain form without JS, live preview with htmx), a segment's
results with a breakdown and its chart, and the export."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.customers.regions import region_name
from tenantcrm.customers.service import CustomerPage
from tenantcrm.exports.service import VALUE_LABELS, ExportService
from tenantcrm.messages import N_
from tenantcrm.segments.builder import (
    ACTIONS,
    Box,
    Row,
    apply,
    empty,
    from_filter,
    from_form,
    mark_error,
    to_filter,
)
from tenantcrm.segments.filter import FIELDS
from tenantcrm.segments.models import Segment
from tenantcrm.segments.service import BREAKDOWNS, NONE, SegmentService, Slice
from tenantcrm.validation import FieldError, InvalidInput
from tenantcrm.web.exports import _download
from tenantcrm.web.rendering import gettext_for, is_htmx, page, request_locale
from tenantcrm.web.scope import WebScope

PREVIEW_SIZE = 10
RESULT_SIZE = 25
PREVIEW_TARGET = "segment-preview"
BREAKDOWN_TARGET = "segment-breakdown"
DEFAULT_BREAKDOWN = "riskLevel"
FIELD_LABELS = {
    "kind": N_("Type"),
    "status": N_("Status"),
    "regionCode": N_("Region"),
    "riskLevel": N_("Risk level"),
    "creditGrade": N_("Credit grade"),
    "creditScore": N_("Credit score"),
    "monthlyIncome": N_("Monthly income"),
    "tags": N_("Tags"),
    "ownerId": N_("Owner"),
    "teamId": N_("Team"),
    "createdAt": N_("Created"),
    "daysSinceLastContact": N_("Days since last contact"),
    "outstandingBalance": N_("Outstanding balance"),
    "classification": N_("Classification"),
    "daysPastDue": N_("Days past due"),
    "arrearsBucket": N_("Arrears bucket"),
    "product": N_("Product"),
    "hasOpenRiskCase": N_("Has an open risk case"),
    "flagged": N_("Flagged by early warning"),
}
OP_LABELS = {
    "eq": N_("is"),
    "ne": N_("is not"),
    "in": N_("is one of"),
    "gt": N_("more than"),
    "gte": N_("at least"),
    "lt": N_("less than"),
    "lte": N_("at most"),
    "between": N_("between"),
    "contains": N_("contains"),
}
HINTS = {
    "int": N_("A whole number"),
    "decimal": N_("An amount in yuan"),
    "date": N_("YYYY-MM-DD"),
    "text": N_("Text"),
    "text_array": N_("Tags, separated by commas"),
}
WHOLE_FILTER = N_("Conditions")
CONDITION_AT = N_("Condition {number}")
GROUP_AT = N_("Group {number}")
CHOOSE_VALUE = N_("{where}: choose a value for {label}.")
ENTER_VALUE = N_("{where}: enter a value for {label}.")
# The builder's words for a filter problem: the row's number and the field's label where GraphQL
# reports a JSON path and a field name (filter.py's messages, kept for the API's contract). Codes not
# listed here keep filter.py's message with the position and label filled in.
PROBLEMS = {
    "invalid_choice": CHOOSE_VALUE,
    "invalid_uuid": CHOOSE_VALUE,
    "invalid_bool": CHOOSE_VALUE,
    "invalid_int": N_("{where}: {label} needs a whole number from {low} to {high}."),
    "invalid_decimal": N_("{where}: {label} needs an amount in yuan."),
    "invalid_date": N_("{where}: {label} needs a date (YYYY-MM-DD)."),
    "invalid_text": N_("{where}: {label} needs text of 1 to 100 characters."),
    "invalid_text_array": N_("{where}: {label} needs tags of 1 to 30 characters, separated by commas."),
    "invalid_between": N_("{where}: {label} needs a lower and an upper value, the lower one first."),
    "invalid_list": N_("{where}: choose 1 to {max} values for {label}."),
    "unknown_field": N_("{where}: this field can no longer be used; choose another one."),
    "unknown_operator": N_("{where}: choose another operator for {label}."),
    "operator_not_allowed": N_("{where}: choose another operator for {label}."),
}
SELECTED = ("choice", "bool", "uuid")  # fields whose value the builder offers as a list
NO_VALUE = N_("None")
CURRENT = N_("Current")
ASSERTED = {"true": N_("Yes"), "false": N_("No")}


@dataclass(frozen=True)
class Labels:
    """Stored codes of segment fields in the reader's language (builder options, breakdowns, chart)."""

    gettext: Callable[[str], str]
    locale: str

    def value(self, field: str, key: str, label: str | None = None) -> str:
        _ = self.gettext
        if key == NONE:
            return _(NO_VALUE)
        if label:
            return label
        if field == "regionCode":
            return region_name(key, self.locale) or key
        if field == "arrearsBucket" and key == "current":
            return _(CURRENT)
        if key in VALUE_LABELS:
            return _(VALUE_LABELS[key])
        return key


@dataclass
class Preview:
    count: int | None = None
    result: CustomerPage | None = None
    error: str | None = None


async def _preview(service: SegmentService, tree: Box, gettext: Callable[[str], str], size: int) -> Preview:
    """Count and first page of the tree's filter, or its first problem marked on its row."""
    raw, paths = to_filter(tree)
    try:
        where = service.condition(raw)
    except InvalidInput as invalid:
        return Preview(error=_mark(tree, paths, invalid, gettext))
    return Preview(
        count=await service.count(where),
        result=await service.customers(where, first=size),
    )


def _mark(
    tree: Box, paths: dict[str, str], invalid: InvalidInput, gettext: Callable[[str], str]
) -> str | None:
    """Put each filter problem on its row or group, in the builder's words; the first problem's text
    for the summary."""
    first = None
    places = {item.key: (item, number) for item, number in _places(tree)}
    for error in invalid.errors:
        if error.field != "filter":
            continue
        path = (error.params or {}).get("path", "")
        item, number = places.get(paths.get(path, ""), (None, 0))
        if isinstance(item, Row):
            where = gettext(CONDITION_AT).format(number=number)
        elif number:
            where = gettext(GROUP_AT).format(number=number)
        else:
            where = gettext(WHOLE_FILTER)
        text = _problem(error, item, where, gettext)
        first = first or text
        mark_error(tree, paths, path, text)
    return first


def _places(tree: Box) -> Iterator[tuple[Row | Box, int]]:
    """Every row and group in reading order with its number on the page (rows and groups counted
    apart: "Condition 2", "Group 1"); the whole filter is 0."""
    counts = {Row: 0, Box: 0}

    def walk(box: Box) -> Iterator[tuple[Row | Box, int]]:
        for item in box.items:
            counts[type(item)] += 1
            yield item, counts[type(item)]
            if isinstance(item, Box):
                yield from walk(item)

    yield tree, 0
    yield from walk(tree)


def _problem(error: FieldError, item: Row | Box | None, where: str, gettext: Callable[[str], str]) -> str:
    params = dict(error.params or {})
    name = item.field if isinstance(item, Row) else params.get("name", "")  # some problems name no field
    label = gettext(FIELD_LABELS[name]) if name in FIELD_LABELS else name
    message = PROBLEMS.get(error.code, error.message)
    if isinstance(item, Row) and not item.values and item.op != "between" and error.code != "unknown_field":
        message = CHOOSE_VALUE if item.spec.type in SELECTED else ENTER_VALUE
    return gettext(message).format(**{**params, "path": where, "where": where, "name": label, "label": label})


async def _saved_breakdown(service: SegmentService, segment: Segment, by: str) -> list[Any]:
    """A saved filter that no longer passes the rules (they changed since) breaks down to nothing;
    the builder on the same page shows what to correct."""
    try:
        return list(await service.breakdown(segment.filter, by))
    except InvalidInput:
        return []


async def _options(service: SegmentService, labels: Labels) -> dict[str, list[tuple[str, str]]]:
    """(value, label) choices of the fields whose values come from a list."""
    users, teams = await service.directory()
    options: dict[str, list[tuple[str, str]]] = {}
    for name, spec in FIELDS.items():
        if spec.type == "choice":
            options[name] = [(code, labels.value(name, code)) for code in spec.choices]
        elif spec.type == "bool":
            options[name] = [(code, labels.gettext(text)) for code, text in ASSERTED.items()]
    options["ownerId"] = [(str(user_id), name) for user_id, name in users]
    options["teamId"] = [(str(team_id), name) for team_id, name in teams]
    return options


def _form_values(form: Any, segment: Segment | None) -> dict[str, Any]:
    if form is None:
        return {
            "name": segment.name if segment else "",
            "description": segment.description if segment else "",
            "shared": segment.shared if segment else False,
        }
    return {
        "name": str(form.get("name") or ""),
        "description": str(form.get("description") or ""),
        "shared": form.get("shared") in ("on", "true", "1"),
    }


async def _builder(
    request: Request,
    scope: WebScope,
    *,
    tree: Box,
    values: dict[str, Any],
    segment: Segment | None = None,
    errors: InvalidInput | None = None,
    status_code: int | None = None,
    by: str | None = None,
) -> Response:
    """The builder page, new or of a saved segment (then with results, breakdown and export)."""
    service = SegmentService(scope.session, scope.principal, scope.cipher)
    gettext = gettext_for(request)
    labels = Labels(gettext, request_locale(request))
    preview = await _preview(service, tree, gettext, PREVIEW_SIZE)
    breakdown: list[Slice] | None = None
    chosen = by if by in BREAKDOWNS else DEFAULT_BREAKDOWN
    saved_count = None
    if segment is not None:
        try:
            saved = service.condition(segment.filter)
            saved_count = await service.count(saved)
            breakdown = await service.breakdown(saved, chosen)
        except InvalidInput:
            breakdown = None
    if status_code is None:
        status_code = 422 if errors or preview.error else 200
    return page(
        request,
        "segments/builder.html",
        status_code=status_code,
        slug=scope.tenant.slug,
        segment=segment,
        tree=tree,
        values=values,
        errors=errors,
        preview=preview,
        saved_count=saved_count,
        breakdown=breakdown,
        by=chosen,
        breakdowns=BREAKDOWNS,
        labels=labels,
        field_labels=FIELD_LABELS,
        numbers={item.key: number for item, number in _places(tree)},
        op_labels=OP_LABELS,
        hints=HINTS,
        options=await _options(service, labels),
        can_manage=service.principal.can("segments.manage"),
        can_edit=segment is not None and service.can_edit(segment),
        can_export=service.principal.can("export"),
    )


def _breakdown_json(slices: list[Slice], by: str, labels: Labels) -> dict[str, Any]:
    return {
        "by": by,
        "title": labels.gettext(FIELD_LABELS[by]),
        "slices": [
            {"key": s.key, "label": labels.value(by, s.key, s.label), "count": s.count} for s in slices
        ],
    }


class SegmentPages(Controller):
    path = "/t/{slug:str}"

    @get("/segments", name="segment_list")
    async def list_page(self, request: Request, web_scope: WebScope) -> Response:
        """My segments and those my team shares, each with its count within my record scope."""
        service = SegmentService(web_scope.session, web_scope.principal)
        rows = []
        for segment in await service.list_segments():
            try:
                count: int | None = await service.count(segment.filter)
            except InvalidInput:  # saved under rules that have since changed
                count = None
            rows.append((segment, count))
        return page(
            request,
            "segments/list.html",
            rows=rows,
            slug=web_scope.tenant.slug,
            can_manage=web_scope.principal.can("segments.manage"),
        )

    @get("/segments/new", name="segment_new")
    async def new_page(self, request: Request, web_scope: WebScope) -> Response:
        return await _builder(request, web_scope, tree=empty(), values=_form_values(None, None))

    @post("/segments/new", name="segment_create")
    async def create(self, request: Request, web_scope: WebScope) -> Response:
        return await self._posted(request, web_scope, None)

    @post("/segments/preview", name="segment_preview")
    async def preview(self, request: Request, web_scope: WebScope) -> Response:
        """The live count and first customers while the builder is edited (htmx); without htmx,
        the builder page itself."""
        form = await request.form()
        tree = from_form(form)
        if not is_htmx(request):
            return await _builder(request, web_scope, tree=tree, values=_form_values(form, None))
        service = SegmentService(web_scope.session, web_scope.principal, web_scope.cipher)
        result = await _preview(service, tree, gettext_for(request), PREVIEW_SIZE)
        return page(
            request,
            "segments/_live.html",
            preview=result,
            items=[item for item, _number in _places(tree)],
            slug=web_scope.tenant.slug,
        )

    @get("/segments/{segment_id:str}", name="segment_detail")
    async def detail(
        self, request: Request, web_scope: WebScope, segment_id: str, by: str | None = None
    ) -> Response:
        service = SegmentService(web_scope.session, web_scope.principal)
        segment = await service.get(segment_id)
        if is_htmx(request) and request.headers.get("hx-target") == BREAKDOWN_TARGET:
            labels = Labels(gettext_for(request), request_locale(request))
            chosen = by if by in BREAKDOWNS else DEFAULT_BREAKDOWN
            slices = await _saved_breakdown(service, segment, chosen)
            return page(
                request,
                "segments/_breakdown.html",
                segment=segment,
                breakdown=slices,
                by=chosen,
                breakdowns=BREAKDOWNS,
                labels=labels,
                field_labels=FIELD_LABELS,
                slug=web_scope.tenant.slug,
                headers={"HX-Push-Url": f"/t/{web_scope.tenant.slug}/segments/{segment.id}?by={chosen}"},
            )
        return await _builder(
            request,
            web_scope,
            tree=from_filter(segment.filter),
            values=_form_values(None, segment),
            segment=segment,
            by=by,
        )

    @post("/segments/{segment_id:str}", name="segment_update")
    async def update(self, request: Request, web_scope: WebScope, segment_id: str) -> Response:
        segment = await SegmentService(web_scope.session, web_scope.principal).get(segment_id)
        return await self._posted(request, web_scope, segment)

    @post("/segments/{segment_id:str}/delete", name="segment_delete")
    async def delete(self, request: Request, web_scope: WebScope, segment_id: str) -> Redirect:
        await SegmentService(web_scope.session, web_scope.principal).delete(segment_id)
        return Redirect(f"/t/{web_scope.tenant.slug}/segments", status_code=303)

    @get("/segments/{segment_id:str}/breakdown.json", name="segment_breakdown", media_type=MediaType.JSON)
    async def breakdown_json(
        self, request: Request, web_scope: WebScope, segment_id: str, by: str | None = None
    ) -> Response[dict[str, Any]]:
        """The breakdown the chart draws, labels in the reader's language."""
        service = SegmentService(web_scope.session, web_scope.principal)
        segment = await service.get(segment_id)
        chosen = by if by in BREAKDOWNS else DEFAULT_BREAKDOWN
        slices = await _saved_breakdown(service, segment, chosen)
        labels = Labels(gettext_for(request), request_locale(request))
        return Response(
            _breakdown_json(slices, chosen, labels),
            media_type=MediaType.JSON,
            headers={"Cache-Control": "no-store", "Vary": "Cookie"},
        )

    @get("/segments/{segment_id:str}/export.xlsx", name="segment_export")
    async def export(self, request: Request, web_scope: WebScope, segment_id: str) -> Response:
        """The segment's customers in the exporter's scope, masked, as .xlsx (audited)."""
        service = ExportService(web_scope.session, web_scope.principal, web_scope.cipher)
        service.check_can_export()
        try:
            export = await service.segment(segment_id, gettext_for(request), request_locale(request))
        except InvalidInput:  # saved under rules that have since changed: the builder shows why
            return Redirect(f"/t/{web_scope.tenant.slug}/segments/{segment_id}", status_code=303)
        return _download(export.content, f"segment-{date.today():%Y%m%d}.xlsx")

    async def _posted(self, request: Request, scope: WebScope, segment: Segment | None) -> Response:
        """A builder form posted back: edit the tree (add, remove), preview, or save."""
        form = await request.form()
        action = str(form.get("action") or "preview")
        tree = from_form(form)
        values = _form_values(form, segment)
        if action.partition(":")[0] in ACTIONS:
            return await _builder(
                request, scope, tree=apply(tree, action), values=values, segment=segment, status_code=200
            )
        if action not in ("save", "save_new"):
            return await _builder(request, scope, tree=tree, values=values, segment=segment)
        service = SegmentService(scope.session, scope.principal)
        raw, _paths = to_filter(tree)
        data = {**values, "filter": raw}
        try:
            if segment is not None and action == "save":
                saved = await service.update(segment.id, data)
            else:
                saved = await service.save(data)
        except InvalidInput as invalid:  # the preview marks the filter's problems on their rows
            return await _builder(
                request, scope, tree=tree, values=values, segment=segment, errors=invalid, status_code=422
            )
        return Redirect(f"/t/{scope.tenant.slug}/segments/{saved.id}", status_code=303)
