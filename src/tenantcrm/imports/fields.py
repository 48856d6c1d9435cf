"""What a sheet's columns can be imported as: target fields, header synonyms and value words."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from tenantcrm.messages import N_

NOTE = "note"  # kept as text in the row's notes, prefixed with its header
IGNORE = "ignore"

CUSTOMER_FIELDS = (
    "name",
    "kind",
    "national_id",
    "phone",
    "email",
    "address",
    "gender",
    "birth_date",
    "marital_status",
    "occupation",
    "industry",
    "monthly_income",
    "assets",
    "liabilities",
    "credit_score",
    "credit_grade",
    "risk_level",
    "status",
    "region_code",
    "tags",
    "source",
    "key_customer",
)
# Free text read for typed values; what is not understood stays in the notes.
TEXT_FIELDS = ("financial_status", "collateral_text", "loan_text")
LOAN_FIELDS = (
    "loan_amount",
    "loan_rate",
    "loan_term_months",
    "loan_term_years",
    "loan_method",
    "loan_start_date",
    "loan_product",
)
TARGETS = (*CUSTOMER_FIELDS, *TEXT_FIELDS, *LOAN_FIELDS, NOTE, IGNORE)
REPEATABLE = (NOTE, IGNORE)

LABELS: dict[str, str] = {
    "name": N_("Name"),
    "kind": N_("Type"),
    "national_id": N_("Identity number"),
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "address": N_("Address"),
    "gender": N_("Gender"),
    "birth_date": N_("Birth date"),
    "marital_status": N_("Marital status"),
    "occupation": N_("Occupation"),
    "industry": N_("Industry"),
    "monthly_income": N_("Monthly income"),
    "assets": N_("Assets"),
    "liabilities": N_("Liabilities"),
    "credit_score": N_("Credit score"),
    "credit_grade": N_("Credit grade"),
    "risk_level": N_("Risk level"),
    "status": N_("Status"),
    "region_code": N_("Region"),
    "tags": N_("Tags"),
    "source": N_("Source"),
    "key_customer": N_("Key customer"),
    "financial_status": N_("Financial situation (free text)"),
    "collateral_text": N_("Collateral (free text)"),
    "loan_text": N_("Loan terms (free text)"),
    "loan_amount": N_("Loan amount"),
    "loan_rate": N_("Loan annual rate"),
    "loan_term_months": N_("Loan term (months)"),
    "loan_term_years": N_("Loan term (years)"),
    "loan_method": N_("Repayment method"),
    "loan_start_date": N_("Loan start date"),
    "loan_product": N_("Loan product"),
    NOTE: N_("Keep as a note"),
    IGNORE: N_("Ignore"),
    # Fields a report can name besides the columns: what was parsed from them.
    "collateral": N_("Collateral"),
    "loan": N_("Loan"),
    "loan.amount": N_("Loan amount"),
    "loan.annual_rate": N_("Loan annual rate"),
    "loan.term_months": N_("Loan term (months)"),
    "loan.method": N_("Repayment method"),
    "loan.start_date": N_("Loan start date"),
    "loan.first_due_date": N_("First due date"),
    "loan.product": N_("Loan product"),
    "collateral.kind": N_("Collateral type"),
    "collateral.area_m2": N_("Collateral area"),
    "collateral.appraised_value": N_("Collateral value"),
    "collateral.appraised_on": N_("Appraisal date"),
    "collateral.location": N_("Collateral (free text)"),
    "collateral.description": N_("Collateral (free text)"),
    "collateral.region_code": N_("Region"),
}

SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "客户姓名",
        "姓名",
        "客户名称",
        "客户名",
        "名称",
        "借款人",
        "借款人姓名",
        "企业名称",
        "公司名称",
        "name",
        "customername",
        "fullname",
    ),
    "kind": ("客户类型", "客户类别", "类型", "kind", "type", "customertype"),
    "national_id": (
        "身份证号",
        "身份证号码",
        "身份证",
        "证件号码",
        "证件号",
        "统一社会信用代码",
        "信用代码",
        "nationalid",
        "idnumber",
        "idno",
        "idcard",
    ),
    "phone": (
        "联系方式",
        "联系电话",
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "电话号码",
        "phone",
        "mobile",
        "telephone",
        "phonenumber",
    ),
    "email": ("电子邮箱", "邮箱", "电子邮件", "email", "e-mail", "mail"),
    "address": ("住址", "通讯地址", "地址", "家庭住址", "联系地址", "居住地址", "address"),
    "gender": ("性别", "gender", "sex"),
    "birth_date": ("出生日期", "生日", "出生年月日", "birthdate", "dateofbirth", "birthday", "dob"),
    "marital_status": ("婚姻状况", "婚姻状态", "婚姻", "maritalstatus"),
    "occupation": ("职业", "工作", "occupation", "job"),
    "industry": ("行业", "所属行业", "industry"),
    "monthly_income": ("月收入", "月收入(元)", "月收入(万元)", "monthlyincome", "income"),
    "assets": ("资产", "总资产", "assets"),
    "liabilities": ("负债", "总负债", "liabilities", "debt"),
    "credit_score": ("信用评分", "信用分", "评分", "creditscore", "score"),
    "credit_grade": ("信用评级", "信用等级", "评级", "creditgrade", "creditrating", "rating", "grade"),
    "risk_level": ("风险等级", "风险级别", "风险", "risklevel", "risk"),
    "status": ("客户状态", "状态", "status"),
    "region_code": ("地区", "区域", "所在地区", "region", "regioncode"),
    "tags": ("标签", "tags", "tag"),
    "source": ("来源", "客户来源", "渠道", "source", "channel"),
    "key_customer": ("重点客户", "是否重点客户", "keycustomer"),
    "financial_status": ("财务状况", "财务情况", "收入情况", "financialstatus", "finances"),
    "collateral_text": ("抵押物详情", "抵押物", "抵押物信息", "抵押物情况", "担保物", "collateral"),
    "loan_text": ("贷款信息", "借款信息", "贷款情况", "loaninfo", "loan"),
    "loan_amount": (
        "借款金额",
        "借款金额(元)",
        "贷款金额",
        "贷款金额(元)",
        "授信金额",
        "loanamount",
        "amount",
    ),
    "loan_rate": ("借款利率", "贷款利率", "年利率", "利率", "loanrate", "annualrate", "interestrate", "rate"),
    "loan_term_months": (
        "借款期限(月)",
        "贷款期限(月)",
        "期限(月)",
        "期数",
        "termmonths",
        "term(months)",
        "loanterm(months)",
    ),
    "loan_term_years": ("借款期限(年)", "贷款期限(年)", "期限(年)", "termyears", "term(years)"),
    "loan_method": ("还款方式", "repaymentmethod", "method"),
    "loan_start_date": (
        "放款日期",
        "起息日",
        "贷款日期",
        "借款日期",
        "起始日期",
        "startdate",
        "loanstartdate",
    ),
    "loan_product": ("贷款产品", "产品", "产品名称", "product", "loanproduct"),
    NOTE: (
        "备注",
        "编号",
        "客户编号",
        "客户反馈",
        "反馈",
        "沟通记录",
        "交易记录",
        "问题描述",
        "处理措施",
        "责任人",
        "完成时间",
        "结果反馈",
        "经验总结",
        "说明",
        "notes",
        "note",
        "remark",
        "remarks",
        "comment",
        "comments",
    ),
    IGNORE: ("序号", "no", "no.", "#"),
}

# Words officers type for the choices customers.inputs validates.
KIND_WORDS = {
    "个人": "individual",
    "自然人": "individual",
    "企业": "enterprise",
    "公司": "enterprise",
    "对公": "enterprise",
    "单位": "enterprise",
    "person": "individual",
    "company": "enterprise",
}
GENDER_WORDS = {"男": "male", "女": "female", "m": "male", "f": "female"}
MARITAL_WORDS = {
    "未婚": "single",
    "已婚": "married",
    "离异": "divorced",
    "离婚": "divorced",
    "丧偶": "widowed",
}
RISK_WORDS = {
    "低": "low",
    "低风险": "low",
    "中": "medium",
    "中风险": "medium",
    "中等": "medium",
    "高": "high",
    "高风险": "high",
}
STATUS_WORDS = {
    "潜在": "prospect",
    "意向": "prospect",
    "正常": "active",
    "活跃": "active",
    "存续": "active",
    "结清": "settled",
    "已结清": "settled",
    "关闭": "closed",
    "销户": "closed",
}
SOURCE_WORDS = {
    "到店": "walk_in",
    "自然到店": "walk_in",
    "转介绍": "referral",
    "介绍": "referral",
    "线上": "online",
    "网络": "online",
    "合作": "partner",
    "渠道": "partner",
    "营销": "marketing",
    "导入": "import",
    "其他": "other",
}
METHOD_WORDS = {
    "等额本息": "equal_installment",
    "等额本金": "equal_principal",
    "先息后本": "interest_only",
    "按月付息到期还本": "interest_only",
    "按月付息,到期还本": "interest_only",
    "到期一次还本付息": "bullet",
    "一次性还本付息": "bullet",
    "利随本清": "bullet",
}
WORDS: dict[str, Mapping[str, str]] = {
    "kind": KIND_WORDS,
    "gender": GENDER_WORDS,
    "marital_status": MARITAL_WORDS,
    "risk_level": RISK_WORDS,
    "status": STATUS_WORDS,
    "source": SOURCE_WORDS,
    "loan_method": METHOD_WORDS,
}
# Cells that mean "nothing here" in real sheets.
BLANKS = frozenset({"", "无", "暂无", "没有", "-", "--", "—", "/", "n/a", "na", "none", "null"})
BLANK_MAX = max(len(blank) for blank in BLANKS)
_PARENTHESES = re.compile(r"\([^)]*\)")
_NOISE = re.compile(r"[\s*:：_]+")


def normalize_header(value: object) -> str:
    """NFKC (full-width brackets and letters), lower case, no spaces, stars or colons."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", str(value or ""))).lower()


_LOOKUP = {normalize_header(synonym): field for field, words in SYNONYMS.items() for synonym in words}


def guess_field(header: object) -> str | None:
    """The target a header names, as written or without its unit in brackets ("月收入(元)")."""
    key = normalize_header(header)
    if not key:
        return None
    return _LOOKUP.get(key) or _LOOKUP.get(_PARENTHESES.sub("", key))


def guess_mapping(headers: Sequence[str]) -> dict[int, str]:
    """Column index -> target; each field at most once (the first column wins), unknown headers
    are kept as notes rather than dropped."""
    mapping: dict[int, str] = {}
    taken: set[str] = set()
    for index, header in enumerate(headers):
        field = guess_field(header)
        if field is None:
            field = NOTE if str(header or "").strip() else IGNORE
        elif field in taken and field not in REPEATABLE:
            field = NOTE
        taken.add(field)
        mapping[index] = field
    return mapping


def is_blank(value: object) -> bool:
    if value is None:
        return True
    text = str(value).strip()
    return len(text) <= BLANK_MAX and normalize_header(text) in BLANKS


def word(field: str, value: str) -> str:
    """An officer's word for a choice ("已婚") as the value validation expects ("married")."""
    words = WORDS.get(field)
    if not words:
        return value
    key = unicodedata.normalize("NFKC", value).strip().lower()
    return words.get(key, words.get(key.replace(" ", ""), value))
