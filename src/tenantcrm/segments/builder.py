"""The segment builder: a filter tree as flat form fields (g0.c1.field ...) and back, edited without JS."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenantcrm.segments.filter import FIELDS, MAX_DEPTH

ROOT = "g0"
MAX_ITEMS = 60  # rows and groups one form may carry (parse_filter allows 50 conditions)
DEFAULT_FIELD = "riskLevel"
_KEY = re.compile(r"^(g0(?:\.[cg]\d{1,3}){0,8})\.(kind|not|field|op|value|value2)$")
ACTIONS = ("add_condition", "add_group", "remove")


@dataclass
class Row:
    """One condition as the form shows it: values stay text until parse_filter types them."""

    field: str = DEFAULT_FIELD
    op: str = "eq"
    values: list[str] = dataclasses.field(default_factory=list)
    value2: str = ""
    key: str = ""
    error: str | None = None

    @property
    def value(self) -> str:
        return ", ".join(self.values)

    @property
    def spec(self) -> Any:
        # A saved filter may name a field a later release retired: show the row with the default
        # field's choices; the preview says what is wrong with it.
        return FIELDS.get(self.field, FIELDS[DEFAULT_FIELD])


@dataclass
class Box:
    """A group: AND or OR over its items, negated when `negate`."""

    kind: str = "and"
    negate: bool = False
    items: list[Row | Box] = dataclasses.field(default_factory=list)
    key: str = ROOT
    error: str | None = None

    @property
    def depth(self) -> int:
        return self.key.count(".") + 1


def empty() -> Box:
    return numbered(Box())


# --- form -> tree ---


def from_form(form: Any) -> Box:
    """The tree a posted builder form describes; unknown or excess keys are ignored, a field or
    operator outside the whitelist falls back to the first allowed one (the filter stays valid
    to edit), values are kept as typed."""
    getall: Callable[[str], list[Any]] = (
        form.getall if hasattr(form, "getall") else lambda k: [form[k]] if k in form else []
    )
    boxes: dict[str, Box] = {ROOT: Box()}
    rows: dict[str, Row] = {}
    for raw_key in list(dict.fromkeys(form.keys()))[: MAX_ITEMS * 6]:
        match = _KEY.match(str(raw_key))
        if not match:
            continue
        key, attribute = match.groups()
        values = [str(v) for v in getall(raw_key)]
        last = values[-1] if values else ""
        if key.rsplit(".", 1)[-1].startswith("c"):
            row = rows.setdefault(key, Row(key=key))
            if attribute == "field":
                row.field = last if last in FIELDS else DEFAULT_FIELD
            elif attribute == "op":
                row.op = last
            elif attribute == "value":
                row.values = [v.strip() for v in values if v.strip()]
            elif attribute == "value2":
                row.value2 = last.strip()
        else:
            box = boxes.setdefault(key, Box(key=key))
            if attribute == "kind":
                box.kind = "or" if last == "or" else "and"
            elif attribute == "not":
                box.negate = last in ("on", "true", "1")
    for row in rows.values():
        if row.op not in row.spec.ops:
            row.op = row.spec.ops[0]
    # Attach each item to its parent in index order; orphans (a missing parent) are dropped.
    items: dict[str, Row | Box] = {**rows, **{k: v for k, v in boxes.items() if k != ROOT}}
    for key in sorted(items, key=_order):
        parent = boxes.get(key.rsplit(".", 1)[0])
        if parent is not None and len(parent.items) < MAX_ITEMS:
            parent.items.append(items[key])
    return boxes[ROOT]


def _order(key: str) -> tuple[int, ...]:
    return tuple(int(part[1:]) for part in key.split(".")[1:])


# --- editing ---


def apply(tree: Box, action: str) -> Box:
    """add_condition:KEY / add_group:KEY add to the group KEY, remove:KEY removes an item; the
    tree comes back numbered afresh."""
    verb, _, key = action.partition(":")
    tree = numbered(tree)
    if verb in ("add_condition", "add_group"):
        box = _find(tree, key)
        if isinstance(box, Box) and _count(tree) < MAX_ITEMS:
            if verb == "add_condition":
                box.items.append(Row())
            elif box.depth < MAX_DEPTH - 1:
                box.items.append(Box(items=[Row()]))
    elif verb == "remove" and key != ROOT:
        parent = _find(tree, key.rsplit(".", 1)[0])
        if isinstance(parent, Box):
            parent.items = [item for item in parent.items if item.key != key]
    return numbered(tree)


def _find(box: Box, key: str) -> Row | Box | None:
    if box.key == key:
        return box
    for item in box.items:
        if item.key == key:
            return item
        if isinstance(item, Box) and key.startswith(item.key + "."):
            return _find(item, key)
    return None


def _count(box: Box) -> int:
    return sum(1 + (_count(item) if isinstance(item, Box) else 0) for item in box.items)


def numbered(box: Box, key: str = ROOT) -> Box:
    box.key = key
    for index, item in enumerate(box.items):
        if isinstance(item, Box):
            numbered(item, f"{key}.g{index}")
        else:
            item.key = f"{key}.c{index}"
    return box


# --- tree -> filter JSON, and back ---


def to_filter(tree: Box) -> tuple[dict[str, Any], dict[str, str]]:
    """The filter JSON of the form's tree and, for each JSON path parse_filter may name in an
    error, the form key of the row or group it is. Empty inner groups are left out."""
    paths: dict[str, str] = {}
    raw = _box_filter(numbered(tree), "", paths)
    return raw, paths


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _box_filter(box: Box, path: str, paths: dict[str, str]) -> dict[str, Any]:
    paths[path or "$"] = box.key
    inner = _join(path, "not") if box.negate else path
    if box.negate:
        paths[inner] = box.key
    children: list[dict[str, Any]] = []
    for item in box.items:
        child_path = _join(inner, f"{box.kind}[{len(children)}]")
        if isinstance(item, Box):
            if not item.items:
                continue
            children.append(_box_filter(item, child_path, paths))
        else:
            paths[child_path] = item.key
            children.append(_row_filter(item))
    if not children:
        body: dict[str, Any] = {"and": []}
    else:
        body = {box.kind: children}
    return {"not": body} if box.negate else body


def _row_filter(row: Row) -> dict[str, Any]:
    spec = row.spec
    if row.op == "between":
        value: Any = [row.value, row.value2]
    elif row.op == "in" or (spec.type == "text_array" and len(_split(row.values)) > 1):
        value = _split(row.values)
    else:
        value = row.value
    return {"field": row.field, "op": row.op, "value": value}


def _split(values: list[str]) -> list[str]:
    """Values from a multiple select arrive apart; typed ones are separated by commas."""
    return [part.strip() for value in values for part in re.split(r"[,，]", value) if part.strip()]


def from_filter(raw: dict[str, Any]) -> Box:
    """The builder tree of a saved (validated) filter JSON."""
    return numbered(_box_of(raw))


def _box_of(raw: dict[str, Any]) -> Box:
    if "not" in raw:
        inner = raw["not"]
        if "field" in inner:
            return Box(negate=True, items=[_row_of(inner)])
        box = _box_of(inner)
        if box.negate:  # not(not X) keeps both levels
            return Box(negate=True, items=[box])
        box.negate = True
        return box
    if "and" in raw or "or" in raw:
        kind = "and" if "and" in raw else "or"
        items: list[Row | Box] = []
        for child in raw[kind]:
            if "field" in child:
                items.append(_row_of(child))
            else:
                items.append(_box_of(child))
        return Box(kind=kind, items=items)
    return Box(items=[_row_of(raw)])


def _row_of(raw: dict[str, Any]) -> Row:
    value = raw.get("value")
    row = Row(field=raw["field"], op=raw["op"])
    if raw["op"] == "between" and isinstance(value, list) and len(value) == 2:
        row.values, row.value2 = [_text(value[0])], _text(value[1])
    elif isinstance(value, list):
        row.values = [_text(v) for v in value]
    else:
        row.values = [_text(value)]
    return row


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def mark_error(tree: Box, paths: dict[str, str], path: str, message: str) -> bool:
    """Put an error message on the row or group a filter path names; False when none matches."""
    target = _find(tree, paths.get(path, ""))
    if target is None:
        return False
    target.error = message
    return True
