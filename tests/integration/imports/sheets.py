"""Sheets made in the tests: synthetic people with valid resident IDs, as .xlsx or .csv bytes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from openpyxl import Workbook

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
AREAS = ("110105", "310115", "420106", "510107", "330106", "440305")
CITIES = ("北京市朝阳区", "上海市浦东新区", "武汉市武昌区", "成都市武侯区", "杭州市西湖区", "深圳市南山区")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
HEADERS = ("序号", "客户姓名", "身份证号", "联系电话", "住址", "月收入(元)", "信用评级")


def resident_id(n: int) -> str:
    """A valid 18-digit resident ID, different for every n below 1,000,000."""
    born = date(1960, 1, 1) + timedelta(days=n % 15000)
    body = f"{AREAS[n % len(AREAS)]}{born:%Y%m%d}{(n // 15000) % 1000:03d}"
    return body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def person(n: int) -> list[object]:
    name = SURNAMES[n % len(SURNAMES)] + GIVEN[(n // 20) % len(GIVEN)] + GIVEN[(n // 500) % len(GIVEN)]
    return [
        n + 1,
        name,
        resident_id(n),
        f"1{3 + n % 7}{n:09d}"[:11],
        f"{CITIES[n % len(CITIES)]}{n % 300}路{n % 97}号",
        8000 + (n % 50) * 1000,
        ("AAA", "AA", "A", "BBB", "BB")[n % 5],
    ]


def people(count: int, start: int = 0) -> list[list[object]]:
    return [person(n) for n in range(start, start + count)]


def xlsx(
    rows: Iterable[Sequence[object]], headers: Sequence[str] = HEADERS, *, title_row: str | None = None
) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    if title_row:
        sheet.append([title_row])
    sheet.append(list(headers))
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(
    rows: Iterable[Sequence[object]], headers: Sequence[str] = HEADERS, *, encoding: str = "utf-8"
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)
