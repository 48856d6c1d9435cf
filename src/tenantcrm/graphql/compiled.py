"""Compiled reads: a query of the customer list answered from one SQL statement (ADR 0015).

The customer list with its loans and next instalments is what API clients page through all day.
Resolved field by field (Strawberry, graphql-core, ORM rows) a page of 50 cost about 17 ms of
Python; here PostgreSQL writes each customer's JSON in one statement (CustomerService.
list_customers_json) and Python only wraps it in the connection. An operation is compiled when it
asks only for `customers` (and __typename) with fields the statement builds, and no directives;
anything else, and any request the compiled path would refuse (bad variables, a cursor or page
size out of bounds, a missing permission), goes to Strawberry, which answers or explains as always.
"""

from __future__ import annotations

import datetime
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.utils.str_converters import to_snake_case

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.json_read import customer_json
from tenantcrm.customers.service import (
    CustomerJsonPage,
    CustomerService,
    InvalidCursor,
)
from tenantcrm.graphql.common import check_page_size
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.customers import CustomerFilterInput, CustomerOrderInput, list_arguments
from tenantcrm.graphql.errors import PublicError
from tenantcrm.json_sql import JsonField, NotCompilable

logger = logging.getLogger(__name__)
T = TypeVar("T")
PAGE_INFO = ("hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename")
_NOT_COMPILED = object()  # cached for operations that go to Strawberry
Fragments = dict[str, FragmentDefinitionNode]


class CompiledReadFailed(Exception):
    """An unexpected error while answering the root field `key` (the cause says which)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _Refused(Exception):
    """A request the compiled path would refuse: Strawberry answers it, with its error."""


@dataclass(frozen=True, slots=True)
class _CustomerList:
    """A `customers` root field: its arguments' nodes and what its connection selects."""

    node: FieldNode
    # (key, "totalCount" | "pageInfo" | "edges" | "__typename", the keys and fields under it)
    connection: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]
    node_fields: tuple[JsonField, ...]
    with_total: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    variable_definitions: Sequence[Any]
    roots: tuple[tuple[str, _CustomerList | None], ...]  # None: __typename


def _collect(
    selection_set: SelectionSetNode | None,
    fragments: Fragments,
    into: dict[str, list[FieldNode]] | None = None,
) -> dict[str, list[FieldNode]]:
    """The fields of a selection set by response key, fragments looked through (validation has
    checked that their type conditions match: every type here is an object type)."""
    fields: dict[str, list[FieldNode]] = {} if into is None else into
    for selection in selection_set.selections if selection_set else ():
        if selection.directives:
            raise NotCompilable("directives")
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            fields.setdefault(key, []).append(selection)
        elif isinstance(selection, InlineFragmentNode):
            _collect(selection.selection_set, fragments, fields)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            if fragment.directives:
                raise NotCompilable("directives")
            _collect(fragment.selection_set, fragments, fields)
    return fields


def _subfields(nodes: list[FieldNode], fragments: Fragments) -> dict[str, list[FieldNode]]:
    merged: dict[str, list[FieldNode]] = {}
    for node in nodes:
        _collect(node.selection_set, fragments, merged)
    return merged


def _json_fields(nodes: list[FieldNode], fragments: Fragments) -> tuple[JsonField, ...]:
    """What is selected under `nodes` as the services' JsonField tree. Fields with arguments are
    left to Strawberry (none of the ones compiled takes any)."""
    out: list[JsonField] = []
    for key, group in _subfields(nodes, fragments).items():
        if any(node.arguments for node in group):
            raise NotCompilable("arguments")
        leaf = group[0].selection_set is None
        out.append((key, group[0].name.value, None if leaf else _json_fields(group, fragments)))
    return tuple(out)


def _names(
    nodes: list[FieldNode], fragments: Fragments, allowed: Sequence[str]
) -> tuple[tuple[str, str], ...]:
    pairs = tuple((key, group[0].name.value) for key, group in _subfields(nodes, fragments).items())
    if any(name not in allowed for _, name in pairs):
        raise NotCompilable("field")
    return pairs


def _customer_list(nodes: list[FieldNode], fragments: Fragments) -> _CustomerList:
    connection: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    node_fields: tuple[JsonField, ...] = ()
    edges_seen = False
    for key, group in _subfields(nodes, fragments).items():
        name = group[0].name.value
        if name in ("totalCount", "__typename"):
            connection.append((key, name, ()))
        elif name == "pageInfo":
            connection.append((key, name, _names(group, fragments, PAGE_INFO)))
        elif name == "edges" and not edges_seen:
            edges_seen = True
            edge = _names(group, fragments, ("cursor", "node", "__typename"))
            if sum(1 for _, field in edge if field == "node") > 1:
                raise NotCompilable("two nodes")
            node_groups = [g for g in _subfields(group, fragments).values() if g[0].name.value == "node"]
            if node_groups:
                node_fields = _json_fields(node_groups[0], fragments)
            connection.append((key, name, edge))
        else:
            raise NotCompilable(name)
    customer_json(node_fields, datetime.date.today())  # NotCompilable for a field it does not build
    with_total = any(kind == "totalCount" for _, kind, _ in connection)
    return _CustomerList(nodes[0], tuple(connection), node_fields, with_total)


def _input(input_type: type[T], coerced: dict[str, Any] | None) -> T | None:
    """A Strawberry input object from graphql-core's coerced value (GraphQL names, enum members)."""
    return None if coerced is None else input_type(**{to_snake_case(k): v for k, v in coerced.items()})


class CompiledReads:
    """Plans per operation text (LRU, like the parser and validation caches) and answers."""

    def __init__(
        self, schema: GraphQLSchema, rules: Sequence[type[ValidationRule]], max_tokens: int, size: int
    ):
        self._schema = schema
        self._rules = [*specified_rules, *rules]
        self._max_tokens = max_tokens
        self._size = size
        self._plans: OrderedDict[tuple[str, str | None], _Plan | object] = OrderedDict()

    def _plan(self, query: str, operation_name: str | None) -> _Plan | None:
        key = (query, operation_name)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._compile(query, operation_name)
            self._plans[key] = plan
            if len(self._plans) > self._size:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan if isinstance(plan, _Plan) else None

    def _compile(self, query: str, operation_name: str | None) -> _Plan | object:
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError:
            return _NOT_COMPILED
        if validate(self._schema, document, self._rules):
            return _NOT_COMPILED
        operation = get_operation_ast(document, operation_name)
        if not isinstance(operation, OperationDefinitionNode) or operation.operation != OperationType.QUERY:
            return _NOT_COMPILED
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        try:
            if operation.directives:
                raise NotCompilable("directives")
            roots: list[tuple[str, _CustomerList | None]] = []
            for key, group in _collect(operation.selection_set, fragments).items():
                name = group[0].name.value
                if name == "__typename":
                    roots.append((key, None))
                elif name == "customers":
                    roots.append((key, _customer_list(group, fragments)))
                else:
                    raise NotCompilable(name)
        except NotCompilable:
            return _NOT_COMPILED
        return _Plan(operation.variable_definitions or (), tuple(roots))

    async def answer(
        self, ctx: GraphQLContext, query: str, operation_name: str | None, variables: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The operation's `data` (JSON built by PostgreSQL inside as msgspec.Raw), or None when
        Strawberry is to answer it."""
        plan = self._plan(query, operation_name)
        if plan is None:
            return None
        coerced = get_variable_values(self._schema, plan.variable_definitions, variables or {})
        if isinstance(coerced, list):
            return None
        field = self._schema.query_type.fields["customers"]
        data: dict[str, Any] = {}
        for key, root in plan.roots:
            if root is None:
                data[key] = "Query"
                continue
            try:
                data[key] = await self._customers(ctx, root, get_argument_values(field, root.node, coerced))
            except (_Refused, PublicError):
                return None  # reads only: Strawberry answers the whole operation, with its error
            except Exception as error:
                raise CompiledReadFailed(key) from error
        return data

    async def _customers(
        self, ctx: GraphQLContext, root: _CustomerList, args: dict[str, Any]
    ) -> dict[str, Any]:
        first, last = args["first"], args["last"]
        check_page_size(first, "first")
        check_page_size(last, "last")
        flt, order = list_arguments(
            _input(CustomerFilterInput, args["filter"]), _input(CustomerOrderInput, args["orderBy"])
        )
        service = CustomerService(ctx.session, ctx.principal, ctx.cipher)
        try:
            page = await ctx.run(
                lambda: service.list_customers_json(
                    root.node_fields,
                    filter=flt,
                    order=order,
                    first=first,
                    after=args["after"],
                    last=last,
                    before=args["before"],
                    with_total=root.with_total,
                    as_of=datetime.date.today(),
                )
            )
        except (PermissionDenied, InvalidCursor) as refused:
            raise _Refused from refused
        return _connection(root, page)


def _connection(root: _CustomerList, page: CustomerJsonPage) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind, under in root.connection:
        if kind == "__typename":
            out[key] = "CustomerConnection"
        elif kind == "totalCount":
            out[key] = page.total_count
        elif kind == "pageInfo":
            info = {
                "hasNextPage": page.has_next_page,
                "hasPreviousPage": page.has_previous_page,
                "startCursor": page.start_cursor,
                "endCursor": page.end_cursor,
                "__typename": "PageInfo",
            }
            out[key] = {k: info[name] for k, name in under}
        else:
            edges = []
            for cursor, node in zip(page.cursors, page.nodes, strict=True):
                edge = {"cursor": cursor, "node": msgspec.Raw(node.encode()), "__typename": "CustomerEdge"}
                edges.append({k: edge[name] for k, name in under})
            out[key] = edges
    return out
