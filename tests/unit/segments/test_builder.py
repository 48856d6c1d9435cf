"""The builder form: flat fields to a tree and a filter, edits by posted actions, saved filters back."""

from __future__ import annotations

from tenantcrm.segments.builder import Box, Row, apply, empty, from_filter, from_form, mark_error, to_filter
from tenantcrm.segments.filter import parse_filter, to_raw


class MultiDict(dict):
    """What a posted form looks like to the builder: several values per name."""

    def getall(self, key):
        return self[key]


def form(*pairs: tuple[str, str]) -> MultiDict:
    data = MultiDict()
    for key, value in pairs:
        data.setdefault(key, []).append(value)
    return data


NESTED = form(
    ("g0.kind", "and"),
    ("g0.c0.field", "riskLevel"),
    ("g0.c0.op", "in"),
    ("g0.c0.value", "high"),
    ("g0.c0.value", "medium"),
    ("g0.g1.kind", "or"),
    ("g0.g1.not", "on"),
    ("g0.g1.c0.field", "creditScore"),
    ("g0.g1.c0.op", "between"),
    ("g0.g1.c0.value", "500"),
    ("g0.g1.c0.value2", "700"),
    ("g0.g1.c1.field", "tags"),
    ("g0.g1.c1.op", "contains"),
    ("g0.g1.c1.value", "vip, 老客户"),
    ("g0.c2.field", "flagged"),
    ("g0.c2.op", "eq"),
    ("g0.c2.value", "true"),
)
NESTED_FILTER = {
    "and": [
        {"field": "riskLevel", "op": "in", "value": ["high", "medium"]},
        {
            "not": {
                "or": [
                    {"field": "creditScore", "op": "between", "value": ["500", "700"]},
                    {"field": "tags", "op": "contains", "value": ["vip", "老客户"]},
                ]
            }
        },
        {"field": "flagged", "op": "eq", "value": "true"},
    ]
}


def test_a_posted_form_becomes_the_tree_and_its_filter():
    tree = from_form(NESTED)
    raw, paths = to_filter(tree)
    assert raw == NESTED_FILTER
    assert parse_filter(raw)  # what the form describes is a valid filter
    assert paths["and[1].not.or[1]"] == "g0.g1.c1" and paths["and[2]"] == "g0.c2"


def test_unknown_fields_and_operators_fall_back_and_stray_keys_are_ignored():
    tree = from_form(
        form(
            ("g0.c0.field", "name; DROP TABLE"),
            ("g0.c0.op", "contains"),
            ("g0.c0.value", "x"),
            ("g0.c1.field", "creditScore"),
            ("g0.c1.op", "like"),
            ("x.c0.field", "kind"),
            ("g0.g5.c0.field", "kind"),  # a row of a group whose own fields were not posted: dropped
            ("g0.c9.c0.field", "kind"),  # a row under a row: dropped
        )
    )
    first, second = tree.items[0], tree.items[1]
    assert isinstance(first, Row) and (first.field, first.op) == ("riskLevel", "eq")
    assert isinstance(second, Row) and second.op == "eq"
    assert [item.key for item in tree.items] == ["g0.c0", "g0.c1"]


def test_add_and_remove_renumber_the_tree():
    tree = from_form(NESTED)
    tree = apply(tree, "add_condition:g0.g1")
    group = tree.items[1]
    assert isinstance(group, Box) and [item.key for item in group.items] == [
        "g0.g1.c0",
        "g0.g1.c1",
        "g0.g1.c2",
    ]
    tree = apply(tree, "add_group:g0")
    assert isinstance(tree.items[3], Box) and tree.items[3].key == "g0.g3"
    tree = apply(tree, "remove:g0.c0")
    assert [item.key for item in tree.items] == ["g0.g0", "g0.c1", "g0.g2"]
    assert apply(tree, "remove:g0").key == "g0"  # the root stays
    assert len(apply(tree, "add_condition:g0.nowhere").items) == 3


def test_empty_groups_are_left_out_and_an_empty_builder_means_everyone():
    assert to_filter(empty())[0] == {"and": []}
    tree = from_form(
        form(("g0.kind", "or"), ("g0.g0.kind", "and"), ("g0.c1.field", "kind"), ("g0.c1.value", "enterprise"))
    )
    assert to_filter(tree)[0] == {"or": [{"field": "kind", "op": "eq", "value": "enterprise"}]}


def test_groups_nest_no_deeper_than_filters_allow():
    tree = empty()
    innermost = tree
    for _ in range(10):
        tree = apply(tree, f"add_group:{innermost.key}")
        while innermost.items and isinstance(innermost.items[-1], Box):
            innermost = innermost.items[-1]

    def fill(box: Box) -> int:
        depth = 1
        for item in box.items:
            if isinstance(item, Box):
                depth = max(depth, 1 + fill(item))
            else:
                item.values = ["high"]
        return depth

    assert fill(tree) == 5  # then the builder offers no deeper group
    parse_filter(to_filter(tree)[0])  # within parse_filter's depth limit


def test_a_saved_filter_comes_back_as_the_same_form():
    tree = from_filter(to_raw(parse_filter(NESTED_FILTER)))
    raw, _ = to_filter(tree)
    assert parse_filter(raw) == parse_filter(NESTED_FILTER)
    negated_row = from_filter({"not": {"field": "kind", "op": "eq", "value": "individual"}})
    assert negated_row.negate and negated_row.items[0].values == ["individual"]
    flagged = {"field": "flagged", "op": "eq", "value": "true"}
    double = from_filter({"not": {"not": {"and": [flagged]}}})
    assert to_filter(double)[0] == {"not": {"and": [{"not": {"and": [flagged]}}]}}


def test_errors_land_on_the_row_they_name():
    tree = from_form(NESTED)
    _, paths = to_filter(tree)
    assert mark_error(tree, paths, "and[1].not.or[0]", "bad")
    assert tree.items[1].items[0].error == "bad"
    assert not mark_error(tree, paths, "and[9]", "nowhere")
