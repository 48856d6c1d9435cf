"""One row to its staged outcome: clean values without PII, masked forms, parsed collateral and
loan, notes, problems by field and code."""

from __future__ import annotations

from datetime import date

from tenantcrm.imports.fields import guess_mapping
from tenantcrm.imports.rows import read_row, region_from_text

TODAY = date(2025, 6, 1)
HEADERS = [
    "客户姓名",
    "联系方式",
    "身份证号",
    "住址",
    "财务状况",
    "抵押物详情",
    "贷款信息",
    "还款方式",
    "客户反馈",
]
COLUMNS = guess_mapping(HEADERS)


def row(**cells):
    values = {
        "客户姓名": "武丹丹",
        "联系方式": "18789328792",
        "身份证号": "420106197109166447",
        "住址": "武汉市武昌区大冶路96号",
        "财务状况": "月收入5万元,已有1笔车贷",
        "抵押物详情": "位于深圳市南山区的一套公寓,面积68平方米,市场价值约650万元",
        "贷款信息": "申请贷款金额455万元,贷款期限10年,年利率5.5%",
        "还款方式": "等额本金",
        "客户反馈": "无",
        **cells,
    }
    return read_row(7, [values[h] for h in HEADERS], COLUMNS, HEADERS, kind="customers", today=TODAY)


def test_a_full_row():
    outcome = row()
    assert outcome.valid and outcome.row_number == 7
    assert outcome.pii == {
        "national_id": "420106197109166447",
        "phone": "18789328792",
        "address": "武汉市武昌区大冶路96号",
    }
    values = outcome.values()
    assert "420106197109166447" not in repr(values) and "18789328792" not in repr(values)
    assert values["masked"]["national_id"] == "4201**********6447"
    assert values["customer"]["monthly_income"] == "50000.00"
    assert values["customer"]["region_code"] == "420100"
    assert values["customer"]["status"] == "active"
    assert values["loan"]["method"] == "equal_principal" and values["loan"]["term_months"] == 120
    assert values["loan"]["start_date"] == "2025-06-01" and values["loan"]["product"] == "抵押贷款"
    assert values["collateral"]["appraised_value"] == "6500000.00"
    assert outcome.notes == ["财务状况: 已有1笔车贷"], "无 (none) is not a note"


def test_unparsed_text_becomes_notes_and_creates_nothing():
    outcome = row(抵押物详情="一辆宝马", 贷款信息="看情况再说")
    assert outcome.valid and outcome.values()["collateral"] is None and outcome.values()["loan"] is None
    assert outcome.notes == [
        "财务状况: 已有1笔车贷",
        "抵押物详情: 一辆宝马",
        "贷款信息: 看情况再说",
        "还款方式: 等额本金",
    ]
    assert outcome.values()["customer"]["status"] == "prospect"


def test_problems_name_the_field_never_the_value():
    outcome = row(身份证号="420106197109166440", 客户姓名="")
    assert [(e.field, e.code) for e in outcome.errors] == [
        ("name", "required"),
        ("national_id", "invalid_check_digit"),
    ]
    assert outcome.pii == {}
    assert outcome.masked["national_id"] == "4201**********6440"


def test_a_blank_row_is_skipped():
    assert read_row(3, [None, " ", "", None], COLUMNS, HEADERS, kind="customers", today=TODAY) is None


def test_regions_from_addresses():
    assert region_from_text("上海市浦东新区世纪大道") == "310000"
    assert region_from_text("湖北省武汉市武昌区") == "420100"
    assert region_from_text("深圳南山") == "440300"
    assert region_from_text("火星") is None
