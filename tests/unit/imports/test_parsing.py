"""Free text of real sheets to typed values; what is not understood comes back to be kept."""

from __future__ import annotations

import pytest

from tenantcrm.imports.parsing import Parsed, parse_collateral, parse_financial, parse_loan


@pytest.mark.parametrize(
    ("text", "income", "rest"),
    [
        ("月收入1.5万元,已有1笔车贷", "15000.00", "已有1笔车贷"),
        ("月收入0.8万元，无其他负债", "8000.00", "无其他负债"),
        ("月收入约12000元左右", "12000.00", ""),
        ("年收入30万", "25000.00", ""),
        ("月收入１.５万元", "15000.00", ""),  # full-width digits
        ("已有1笔经营贷30万元", None, "已有1笔经营贷30万元"),
    ],
)
def test_financial_status(text, income, rest):
    parsed = parse_financial(text)
    assert parsed.values.get("monthly_income") == income
    assert parsed.rest == rest


def test_collateral_description():
    parsed = parse_collateral("位于上海市黄浦区的一套公寓,面积80平方米,市场价值约400万元")
    assert parsed.values == {
        "kind": "residence",
        "appraised_value": "4000000.00",
        "description": "位于上海市黄浦区的一套公寓,面积80平方米,市场价值约400万元",
        "location": "上海市黄浦区",
        "area_m2": "80",
    }
    assert parsed.rest == ""
    assert parse_collateral("深圳南山商铺一间，评估价值1.2亿元").values["appraised_value"] == "120000000.00"
    assert parse_collateral("位于杭州市西湖区的一套商铺,市场价值约650万元").values["kind"] == "commercial"


@pytest.mark.parametrize("text", ["一辆宝马", "位于北京市的一套公寓", "市场价值约400万元", ""])
def test_collateral_without_kind_or_value_stays_a_note(text):
    assert parse_collateral(text) == Parsed(rest=text)


def test_loan_terms():
    parsed = parse_loan("申请贷款金额200万元,贷款期限8年,年利率5.5%")
    assert parsed == Parsed({"amount": "2000000.00", "term_months": "96", "annual_rate": "5.5%"}, "")
    parsed = parse_loan("借款金额80万元，期限36个月，利率4.35%，等额本金，需担保人")
    assert parsed.values == {
        "amount": "800000.00",
        "term_months": "36",
        "annual_rate": "4.35%",
        "method": "equal_principal",
    }
    assert parsed.rest == "需担保人"


@pytest.mark.parametrize("text", ["申请贷款金额200万元,贷款期限8年", "贷款 看情况", "年利率5.5%"])
def test_incomplete_loan_terms_stay_a_note(text):
    assert parse_loan(text) == Parsed(rest=text)
