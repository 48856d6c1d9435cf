"""Reading an uploaded sheet: .xlsx (streamed) or .csv (UTF-8 with or without BOM, or GB18030 as
Chinese Excel writes it), finding its header row and yielding its data rows as plain values."""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from openpyxl import load_workbook

from tenantcrm.imports.fields import guess_field, guess_mapping
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls
HEADER_SEARCH_ROWS = 20
HEADER_MAX = 100
MAX_COLUMNS = 200
_ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s>]")
UNREADABLE = N_("This file is not a readable .xlsx or .csv spreadsheet.")


def file_error(code: str, message: str) -> InvalidInput:
    return InvalidInput([FieldError("file", code, message)])


@dataclass(frozen=True)
class Layout:
    """Where the data is: the sheet, its header row (1-based) and the headers' text."""

    format: str  # xlsx | csv
    sheet: str | None
    header_row: int
    headers: list[str]
    data_rows: int | None  # rows below the header as the file declares them, when it does

    def guessed_mapping(self) -> dict[int, str]:
        return guess_mapping(self.headers)


def cell_value(value: Any) -> str | None:
    """A cell as text the validators take: integral numbers without ".0", dates as ISO."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return str(Decimal(repr(value)))  # repr is the shortest text that round-trips
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def _format(content: bytes, file_name: str) -> str:
    if content.startswith(OLE_MAGIC) or file_name.lower().endswith(".xls"):
        raise file_error(
            "legacy_xls", N_("Old .xls workbooks cannot be read: save the sheet as .xlsx or .csv first.")
        )
    if content.startswith(XLSX_MAGIC):
        return "xlsx"
    if file_name.lower().endswith((".xlsx", ".xlsm")):
        raise file_error("unreadable", UNREADABLE)
    return "csv"


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:  # a binary file that happens to decode
            break
        return text
    raise file_error("unreadable", UNREADABLE)


def _csv_rows(content: bytes) -> Iterator[list[str | None]]:
    text = _decode(content)
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        for row in csv.reader(io.StringIO(text, newline=""), dialect):
            yield [cell_value(cell) for cell in row[:MAX_COLUMNS]]
    except csv.Error as exc:
        raise file_error("unreadable", UNREADABLE) from exc


def _workbook(content: bytes) -> Any:
    try:
        return load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # zip, XML and openpyxl's own errors alike: the file is not usable
        raise file_error("unreadable", UNREADABLE) from exc


def _sheet_rows(sheet: Any) -> Iterator[list[str | None]]:
    try:
        for row in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
            yield [cell_value(cell) for cell in row]
    except InvalidInput:
        raise
    except Exception as exc:  # a truncated or damaged part of the file, found while streaming
        raise file_error("unreadable", UNREADABLE) from exc


def _find_header(rows: Iterator[list[str | None]]) -> tuple[int, list[str]] | None:
    """The row among the first ones naming the most known columns (a title row above is skipped)."""
    best: tuple[int, int, list[str]] | None = None
    for number, row in enumerate(rows, start=1):
        if number > HEADER_SEARCH_ROWS:
            break
        known = sum(1 for cell in row if cell and guess_field(cell) is not None)
        if known and (best is None or known > best[0]):
            best = (known, number, [(cell or "").strip()[:HEADER_MAX] for cell in row])
    return (best[1], best[2]) if best else None


def inspect(content: bytes, file_name: str) -> Layout:
    """The layout of an uploaded file, or InvalidInput on the field "file" saying what is wrong."""
    if not content:
        raise file_error("empty", N_("The file is empty."))
    kind = _format(content, file_name)
    if kind == "csv":
        found = _find_header(_csv_rows(content))
        if found is None:
            raise _no_header()
        return Layout("csv", None, found[0], _trimmed(found[1]), None)
    workbook = _workbook(content)
    try:
        for sheet in workbook.worksheets:
            found = _find_header(_sheet_rows(sheet))
            if found is not None:
                rows = sheet.max_row or _row_tags(content, sheet)
                return Layout("xlsx", sheet.title, found[0], _trimmed(found[1]), rows and rows - found[0])
    finally:
        workbook.close()
    raise _no_header()


def _trimmed(headers: list[str]) -> list[str]:
    while headers and not headers[-1]:
        headers = headers[:-1]
    return headers


def _no_header() -> InvalidInput:
    return file_error(
        "no_header",
        N_("No header row was found: one of the first rows must name the columns (客户姓名, 身份证号, ...)."),
    )


def data_rows(content: bytes, layout: Layout) -> Iterator[tuple[int, list[str | None]]]:
    """(row number as the sheet shows it, values) for every row below the header, blank ones too."""
    if layout.format == "csv":
        for number, row in enumerate(_csv_rows(content), start=1):
            if number > layout.header_row:
                yield number, row
        return
    workbook = _workbook(content)
    try:
        if layout.sheet not in workbook.sheetnames:
            raise file_error("unreadable", UNREADABLE)
        for number, row in enumerate(_sheet_rows(workbook[layout.sheet]), start=1):
            if number > layout.header_row:
                yield number, row
    finally:
        workbook.close()


def count_rows(content: bytes, layout: Layout) -> int:
    """Rows below the header, for the progress bar: as inspect found them, else counted."""
    if layout.data_rows is not None:
        return max(layout.data_rows, 0)
    return sum(1 for _ in data_rows(content, layout))


def _row_tags(content: bytes, sheet: Any) -> int | None:
    """The sheet's <row> elements counted in its XML, when the workbook does not declare its size:
    far faster than parsing every cell, and exact enough for a progress bar."""
    path = getattr(sheet, "_worksheet_path", None)
    if path is None:
        return None
    count, tail = 0, b""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive, archive.open(path) as xml:
            while block := xml.read(1 << 20):
                block = tail + block
                # A tag ending in the carried-over tail was counted with the previous block.
                count += sum(1 for match in _ROW_TAG.finditer(block) if match.end() > len(tail))
                tail = block[-16:]
    except (zipfile.BadZipFile, KeyError, OSError, zlib.error):
        return None
    return count
