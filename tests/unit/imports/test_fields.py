"""Header synonyms (Chinese and English, with units and full-width brackets) and value words."""

from __future__ import annotations

import pytest

from tenantcrm.imports.fields import IGNORE, NOTE, guess_field, guess_mapping, is_blank, word


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("客户姓名", "name"),
        ("客户名称", "name"),
        (" Name ", "name"),
        ("身份证号", "national_id"),
        ("证件号码", "national_id"),
        ("National ID", "national_id"),
        ("联系方式", "phone"),
        ("手机", "phone"),
        ("电子邮箱", "email"),
        ("通讯地址", "address"),
        ("月收入(元)", "monthly_income"),
        ("月收入（元）", "monthly_income"),  # full-width brackets
        ("月收入（万元）", "monthly_income"),
        ("信用评级", "credit_grade"),
        ("风险等级", "risk_level"),
        ("客户类型", "kind"),
        ("借款期限(月)", "loan_term_months"),
        ("贷款期限（年）", "loan_term_years"),
        ("还款方式", "loan_method"),
        ("抵押物详情", "collateral_text"),
        ("客户反馈", NOTE),
        ("序号", IGNORE),
        ("随便什么", None),
    ],
)
def test_headers(header, field):
    assert guess_field(header) == field


def test_mapping_keeps_unknown_columns_as_notes_and_each_field_once():
    mapping = guess_mapping(["序号", "姓名", "客户名称", "奇怪的列", "", "电话"])
    assert mapping == {0: IGNORE, 1: "name", 2: NOTE, 3: NOTE, 4: IGNORE, 5: "phone"}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("gender", "男", "male"),
        ("marital_status", "离异", "divorced"),
        ("risk_level", "高风险", "high"),
        ("kind", "企业", "enterprise"),
        ("loan_method", "先息后本", "interest_only"),
        ("loan_method", "到期一次还本付息", "bullet"),
        ("status", "已结清", "settled"),
        ("gender", "unknown", "unknown"),  # left for validation to refuse
        ("occupation", "男", "男"),
    ],
)
def test_words(field, value, expected):
    assert word(field, value) == expected


@pytest.mark.parametrize("value", [None, "", "  ", "无", "—", "N/A", "-"])
def test_blank_cells(value):
    assert is_blank(value)


@pytest.mark.parametrize("value", ["0", "无锡", "张三"])
def test_not_blank(value):
    assert not is_blank(value)
