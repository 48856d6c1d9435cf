"""Typed values from the free text of real sheets: incomes, collateral and loan terms in 万元, years
and percent. What is not understood is handed back, to be kept as a note."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from tenantcrm.imports.fields import METHOD_WORDS

_CLAUSES = re.compile(r"[,，;；。]+")
_NUMBER = r"(\d+(?:\.\d+)?)"
_UNIT = r"\s*(亿元|亿|万元|万|元)?"
_INCOME = re.compile(r"(月|年)(?:收入|薪|工资|薪资)\D{0,4}?" + _NUMBER + _UNIT)
_AREA = re.compile(r"(?:建筑)?面积\D{0,3}?" + _NUMBER + r"\s*(?:平方米|平米|平|㎡|m²|m2)")
_VALUE = re.compile(r"(?:市场价值|评估价值|评估价|市值|估值|价值)\D{0,4}?" + _NUMBER + _UNIT)
_LOCATION = re.compile(r"位于([^,，;；。]+?)(?:的|,|，|$)")
_LOAN_AMOUNT = re.compile(r"(?:金额|额度|借款|贷款)\D{0,4}?" + _NUMBER + _UNIT)
_TERM = re.compile(r"期限\D{0,3}?(\d+)\s*(年|个月|月|期)")
_RATE = re.compile(r"利率\D{0,3}?" + _NUMBER + r"\s*%")
_UNITS = {
    None: Decimal(1),
    "元": Decimal(1),
    "万": Decimal(10_000),
    "万元": Decimal(10_000),
    "亿": Decimal(100_000_000),
    "亿元": Decimal(100_000_000),
}
# Collateral kinds (collateral.inputs.KINDS) by the words sheets use; the first match wins.
_KINDS = (
    ("residence", ("公寓", "住宅", "别墅", "住房", "房产", "洋房", "平层", "复式", "房屋")),
    ("commercial", ("商铺", "商业", "写字楼", "办公楼", "厂房", "门面", "仓库", "店面")),
    ("land", ("土地", "地块", "宅基地")),
    ("vehicle", ("汽车", "车辆", "轿车", "货车")),
    ("equipment", ("设备", "机器", "机械")),
    ("deposit", ("存单", "存款", "理财")),
)


@dataclass(frozen=True)
class Parsed:
    """Values as the validators take them (text such as "455万", "5.5%", "96") and the rest."""

    values: dict[str, str] = field(default_factory=dict)
    rest: str = ""


def _text(value: object) -> str:
    return unicodedata.normalize("NFKC", str(value or "")).strip()


def _clauses(text: str) -> list[str]:
    return [clause.strip() for clause in _CLAUSES.split(text) if clause.strip()]


def yuan(number: str, unit: str | None) -> Decimal:
    """ "1.5" with "万元" is 15000 yuan."""
    return (Decimal(number) * _UNITS[unit]).quantize(Decimal("0.01"))


def parse_financial(value: object) -> Parsed:
    """ "月收入1.5万元,已有1笔车贷" -> monthly_income 15000.00, rest "已有1笔车贷". A yearly income
    counts as a twelfth a month."""
    values: dict[str, str] = {}
    rest: list[str] = []
    for clause in _clauses(_text(value)):
        match = _INCOME.search(clause)
        if match and "monthly_income" not in values:
            amount = yuan(match.group(2), match.group(3))
            if match.group(1) == "年":
                amount = (amount / 12).quantize(Decimal("0.01"))
            values["monthly_income"] = str(amount)
            if leftover := (clause[: match.start()] + clause[match.end() :]).strip(" 左右约"):
                rest.append(leftover)
        else:
            rest.append(clause)
    return Parsed(values, "，".join(rest))


def collateral_kind(text: str) -> str | None:
    for kind, words in _KINDS:
        if any(word in text for word in words):
            return kind
    return None


def parse_collateral(value: object) -> Parsed:
    """ "位于上海市黄浦区的一套公寓,面积80平方米,市场价值约400万元" -> a residence in 上海市黄浦区 of
    80 m² worth 4,000,000. Without a kind and a value nothing is taken: the text stays a note.
    The whole text becomes the collateral's description, so nothing of it is lost."""
    text = _text(value)
    kind, worth = collateral_kind(text), _VALUE.search(text)
    if not text or kind is None or worth is None:
        return Parsed(rest=text)
    values = {
        "kind": kind,
        "appraised_value": str(yuan(worth.group(1), worth.group(2))),
        "description": text,
    }
    if location := _LOCATION.search(text):
        values["location"] = location.group(1).strip()
    if area := _AREA.search(text):
        values["area_m2"] = area.group(1)
    return Parsed(values)


def parse_loan(value: object) -> Parsed:
    """ "申请贷款金额200万元,贷款期限8年,年利率5.5%" -> amount 2,000,000, 96 months, 5.5%; a
    repayment method named in the text is taken too. Without amount, term and rate nothing is
    taken: the text stays a note."""
    text = _text(value)
    values: dict[str, str] = {}
    rest: list[str] = []
    for clause in _clauses(text):
        if (rate := _RATE.search(clause)) and "annual_rate" not in values:
            values["annual_rate"] = rate.group(1) + "%"
        elif (term := _TERM.search(clause)) and "term_months" not in values:
            months = int(term.group(1)) * (12 if term.group(2) == "年" else 1)
            values["term_months"] = str(months)
        elif (amount := _LOAN_AMOUNT.search(clause)) and "amount" not in values:
            values["amount"] = str(yuan(amount.group(1), amount.group(2)))
        elif method := next((m for w, m in METHOD_WORDS.items() if w in clause), None):
            values["method"] = method
        else:
            rest.append(clause)
    if not {"amount", "term_months", "annual_rate"} <= set(values):
        return Parsed(rest=text)
    return Parsed(values, "，".join(rest))
