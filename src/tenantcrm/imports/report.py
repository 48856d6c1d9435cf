"""The downloadable validation report: one line per problem (row, field, what is wrong), in the
reader's language, without any refused value."""

from __future__ import annotations

import io
from collections.abc import Callable

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from tenantcrm.imports.fields import LABELS
from tenantcrm.imports.models import ImportRow
from tenantcrm.imports.service import row_errors
from tenantcrm.messages import N_

Gettext = Callable[[str], str]
HEADERS = (N_("Row"), N_("Name"), N_("Field"), N_("Problem"))
WIDTHS = (8, 20, 24, 70)


def field_label(field: str, gettext: Gettext) -> str:
    if field in LABELS:
        return gettext(LABELS[field])
    prefix = field.split(".", 1)[0]
    return gettext(LABELS[prefix]) if prefix in LABELS else field


class ProblemReport:
    """Rows are added as they are read, so a report of 100,000 problems streams to the file."""

    def __init__(self, gettext: Gettext) -> None:
        self.gettext = gettext
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(gettext(N_("Problems")))
        for column, width in enumerate(WIDTHS):
            self.sheet.column_dimensions[chr(ord("A") + column)].width = width
        self.sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for text in HEADERS:
            cell = WriteOnlyCell(self.sheet, value=gettext(text))
            cell.font = bold
            header.append(cell)
        self.sheet.append(header)

    def add(self, row: ImportRow) -> None:
        errors = row_errors(row)
        # The name locates the row for the reader, unless the name is what was refused.
        name = "" if any(e.field == "name" for e in errors) else row.values.get("name", "")
        for error in errors:
            self.sheet.append(
                [row.row_number, name, field_label(error.field, self.gettext), error.text(self.gettext)]
            )

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.workbook.save(buffer)
        return buffer.getvalue()
