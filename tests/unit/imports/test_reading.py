"""Reading sheets: formats, encodings, header detection, cell values."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tenantcrm.imports.reading import cell_value, count_rows, data_rows, inspect
from tenantcrm.validation import InvalidInput
from tests.integration.imports.sheets import csv_bytes, people, xlsx


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("", None),
        (18789328792, "18789328792"),
        (50000.0, "50000"),
        (0.055, "0.055"),
        (datetime(1971, 9, 16), "1971-09-16"),
        (date(2024, 3, 1), "2024-03-01"),
        (True, "true"),
        ("张三", "张三"),
    ],
)
def test_cell_values(value, text):
    assert cell_value(value) == text


def test_xlsx_layout_and_rows():
    content = xlsx(people(3), title_row="客户台账")
    layout = inspect(content, "a.xlsx")
    assert (layout.format, layout.sheet, layout.header_row, layout.data_rows) == ("xlsx", "客户", 2, 3)
    assert layout.headers[1] == "客户姓名"
    rows = list(data_rows(content, layout))
    assert [number for number, _ in rows] == [3, 4, 5]
    assert rows[0][1][1] == people(1)[0][1]
    assert count_rows(content, layout) == 3


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_encodings(encoding):
    content = csv_bytes(people(2), encoding=encoding)
    layout = inspect(content, "a.csv")
    assert layout.headers[1] == "客户姓名" and layout.format == "csv"
    assert [cells[1] for _, cells in data_rows(content, layout)] == [row[1] for row in people(2)]
    assert count_rows(content, layout) == 2


def test_semicolon_csv():
    content = "客户姓名;联系电话\n张三;13800138000\n".encode()
    layout = inspect(content, "a.csv")
    assert list(data_rows(content, layout)) == [(2, ["张三", "13800138000"])]


@pytest.mark.parametrize(
    ("content", "name", "code"),
    [
        (b"", "a.csv", "empty"),
        (b"\xd0\xcf\x11\xe0" + b"\x00" * 50, "a.xls", "legacy_xls"),
        (b"PK\x03\x04garbage", "a.xlsx", "unreadable"),
        (b"plain text", "a.xlsx", "unreadable"),
        (b"\x00\x01\x02\x03", "a.csv", "unreadable"),
        ("日期,金额\n2024-01-01,5\n".encode(), "a.csv", "no_header"),
    ],
)
def test_refused_files(content, name, code):
    with pytest.raises(InvalidInput) as refused:
        inspect(content, name)
    assert [(e.field, e.code) for e in refused.value.errors] == [("file", code)]
