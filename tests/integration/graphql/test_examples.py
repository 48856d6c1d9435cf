"""Every example operation in graphql/examples runs against the real app and does what it says.

The examples are what API users copy, so each one must parse, take exactly the variables its
`.variables.json` gives, run without errors and return the expected type. A new example
without an expectation below fails, so it cannot go untested.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from tenantcrm.imports.service import ImportService
from tenantcrm.loans import ledger
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import principal_of

EXAMPLES = REPO_ROOT / "graphql" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.graphql"))
CREATE = """
mutation ($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on Customer { id name } }
}
"""
# The lending book an example names by customerId, collateralId, loanId or repaymentId (collateral,
# a loan it secures, a repayment of that loan), made for its run.
BOOK = """
mutation ($customerId: ID!) {
  createCollateral(
    customerId: $customerId, input: {kind: RESIDENCE, appraisedValue: "2000000.00", appraisedOn: "2025-01-10"}
  ) {
    __typename ... on Collateral { id }
  }
}
"""
LOAN = """
mutation ($customerId: ID!, $collateralId: ID!) {
  createLoan(customerId: $customerId, input: {
    product: "房抵经营贷", amount: "120000.00", annualRate: "0.06", termMonths: 12,
    method: EQUAL_PRINCIPAL, startDate: "2025-01-15", collateralIds: [$collateralId]
  }) { __typename ... on Loan { id } }
}
"""
REPAY = """
mutation ($loanId: ID!) {
  recordRepayment(loanId: $loanId, input: {amount: "10600.00", paidOn: "2025-02-15"}) {
    __typename ... on RepaymentOutcome { repayment { id } }
  }
}
"""
LENDING_IDS = ("customerId", "collateralId", "loanId", "repaymentId")
# The relationship work an example names by complaintId, caseId, measureId or followUpId: a
# contact, a complaint, a risk case with a measure and a follow-up on the run's customer.
WORK = """
mutation ($customerId: ID!, $dueOn: Date!) {
  logInteraction(
    customerId: $customerId, input: {channel: VISIT, summary: "上门拜访", nextStep: "寄送资料"}
  ) { __typename }
  recordComplaint(customerId: $customerId, input: {category: SERVICE, content: "等候时间过长"}) {
    __typename ... on Complaint { id }
  }
  openRiskCase(customerId: $customerId, input: {trigger: MANUAL, description: "经营异常"}) {
    __typename ... on RiskCase { id }
  }
  planFollowUp(customerId: $customerId, input: {dueOn: $dueOn, channel: PHONE, note: "回访"}) {
    __typename ... on FollowUp { id }
  }
}
"""
MEASURE = """
mutation ($caseId: ID!, $dueOn: Date!) {
  addRiskMeasure(caseId: $caseId, input: {description: "核查流水", dueOn: $dueOn}) {
    __typename ... on RiskMeasure { id }
  }
}
"""
WORK_IDS = ("complaintId", "caseId", "measureId", "followUpId")
# The saved segment an example names by segmentId (or lists): low-risk customers, the admin's.
SEGMENT_FILTER = {"and": [{"field": "riskLevel", "op": "eq", "value": "low"}]}
SAVE_SEGMENT = """
mutation ($input: SegmentInput!) {
  saveSegment(input: $input) { __typename ... on Segment { id } }
}
"""
# The example restores the defaults, which are the migration's seed.
DEFAULT_RULES = [
    {
        "classification": rule.classification.upper(),
        "minDaysPastDue": rule.min_days_past_due,
        "flag": rule.flag.upper() if rule.flag else None,
    }
    for rule in ledger.DEFAULT_RULES
]


@dataclass(frozen=True)
class Run:
    """What one example run knows: its data and the customer made for it."""

    data: dict[str, Any]
    customer_id: str
    customer_name: str
    admin_email: str
    collateral_id: str | None = None
    loan_id: str | None = None  # 120,000.00 over 12 months from 2025-01-15, secured by the collateral
    repayment_id: str | None = None  # 10,600.00 on 2025-02-15, the first instalment
    complaint_id: str | None = None  # SERVICE, open
    case_id: str | None = None  # MANUAL, with one measure
    measure_id: str | None = None
    follow_up_id: str | None = None  # a PHONE follow-up a week ahead
    job_id: str | None = None  # an uploaded customers file of two rows
    segment_id: str | None = None  # SEGMENT_FILTER, saved by the admin


def _list_customers(run: Run) -> None:
    connection = run.data["customers"]
    assert connection["__typename"] == "CustomerConnection"
    # The search was narrowed to this run's customer, so the page is exactly that one.
    assert [edge["node"]["id"] for edge in connection["edges"]] == [run.customer_id]
    assert connection["totalCount"] == 1
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["pageInfo"]["endCursor"] == connection["edges"][0]["cursor"]
    node = connection["edges"][0]["node"]
    assert (node["riskLevel"], node["status"]) == ("LOW", "PROSPECT")


def _customer_by_id(run: Run) -> None:
    customer = run.data["customer"]
    assert customer is not None, "the example found no customer"
    assert customer["__typename"] == "Customer"
    assert customer["id"] == run.customer_id
    assert customer["name"] == run.customer_name


def _create_customer(run: Run) -> None:
    result = run.data["createCustomer"]
    assert result["__typename"] == "Customer", result
    assert result["monthlyIncome"] == "12345.60"
    assert (result["creditGrade"], result["tags"], result["source"]) == ("A", ["房抵", "老客户"], "REFERRAL")
    assert result["regionName"]
    uuid.UUID(result["id"])


def _update_customer(run: Run) -> None:
    result = run.data["updateCustomer"]
    assert result["__typename"] == "Customer", result
    assert result["id"] == run.customer_id
    assert result["name"] == run.customer_name  # not in the input: unchanged
    assert (result["monthlyIncome"], result["riskLevel"], result["status"]) == (
        "15000.00",
        "MEDIUM",
        "ACTIVE",
    )


def _reveal_customer_pii(run: Run) -> None:
    result = run.data["revealCustomerPii"]
    assert result["__typename"] == "RevealedPii", result
    assert result["customerId"] == run.customer_id
    # The run's customer was made without personal data: the fields asked for are null, and
    # the ones not asked for (email, address) are null whatever the customer holds.
    assert (result["nationalId"], result["phone"], result["email"], result["address"]) == (None,) * 4


def _loan_schedule(run: Run) -> None:
    schedule = run.data["loanSchedule"]
    assert schedule["__typename"] == "LoanSchedule"
    rows = schedule["installments"]
    assert len(rows) == 120 and {row["payment"] for row in rows[:-1]} == {"31673.22"}
    assert rows[0] == {
        "number": 1,
        "dueDate": "2027-01-01",
        "principal": "19423.22",
        "interest": "12250.00",
        "payment": "31673.22",
    }


def _viewer(run: Run) -> None:
    viewer = run.data["viewer"]
    assert viewer["__typename"] == "Viewer"
    assert viewer["email"] == run.admin_email
    assert "customers.read" in viewer["permissions"]


def _customer_with_loans(run: Run) -> None:
    customer = run.data["customer"]
    assert customer["__typename"] == "Customer" and customer["id"] == run.customer_id
    (collateral,) = customer["collateral"]
    assert collateral["id"] == run.collateral_id
    assert [loan["id"] for loan in collateral["loans"]] == [run.loan_id]
    (loan,) = customer["loans"]
    assert loan["id"] == run.loan_id and loan["status"] == "ACTIVE"
    assert [c["id"] for c in loan["collateral"]] == [run.collateral_id]
    assert len(loan["schedule"]) == 12
    assert sum(Decimal(row["principal"]) for row in loan["schedule"]) == Decimal("120000.00")
    assert loan["schedule"][0]["paidOn"] == "2025-02-15"
    assert [(r["id"], r["amount"], r["reversed"]) for r in loan["repayments"]] == [
        (run.repayment_id, "10600.00", False)
    ]


def _loan_by_id(run: Run) -> None:
    loan = run.data["loan"]
    assert loan["__typename"] == "Loan" and loan["id"] == run.loan_id
    assert loan["customerId"] == run.customer_id
    arrears = loan["arrears"]
    # Due 2025-02-15 (paid), 2025-03-15 (not yet): nothing overdue on 2025-03-01.
    assert (arrears["asOf"], arrears["daysPastDue"], arrears["bucket"], arrears["overdueAmount"]) == (
        "2025-03-01",
        0,
        "CURRENT",
        "0.00",
    )
    assert arrears["outstandingPrincipal"] == "110000.00"
    assert arrears["nextDue"]["number"] == 2
    assert loan["payoffAmount"] == "110550.00"
    assert loan["loanToValue"] is not None


def _list_loans(run: Run) -> None:
    connection = run.data["loans"]
    assert connection["__typename"] == "LoanConnection"
    assert [edge["node"]["id"] for edge in connection["edges"]] == [run.loan_id]
    assert connection["totalCount"] == 1
    edge = connection["edges"][0]
    assert (edge["customerName"], edge["daysPastDue"], edge["nextDueDate"]) == (
        run.customer_name,
        0,
        "2025-03-15",
    )


def _collateral_by_id(run: Run) -> None:
    collateral = run.data["collateral"]
    assert collateral["__typename"] == "Collateral" and collateral["id"] == run.collateral_id
    assert [a["value"] for a in collateral["appraisals"]] == ["2000000.00"]
    assert [loan["id"] for loan in collateral["loans"]] == [run.loan_id]


def _classification_rules(run: Run) -> None:
    assert run.data["classificationRules"]


def _create_collateral(run: Run) -> None:
    result = run.data["createCollateral"]
    assert result["__typename"] == "Collateral", result
    assert (result["customerId"], result["areaM2"], result["appraisedValue"]) == (
        run.customer_id,
        "89.50",
        "2000000.00",
    )


def _update_collateral(run: Run) -> None:
    result = run.data["updateCollateral"]
    assert result["__typename"] == "Collateral", result
    assert (result["id"], result["titleStatus"]) == (run.collateral_id, "MORTGAGED")


def _add_appraisal(run: Run) -> None:
    result = run.data["addAppraisal"]
    assert result["__typename"] == "Collateral", result
    assert (result["appraisedValue"], result["appraisedOn"]) == ("2150000.00", "2025-06-30")
    assert len(result["appraisals"]) == 2


def _create_loan(run: Run) -> None:
    result = run.data["createLoan"]
    assert result["__typename"] == "Loan", result
    assert (result["customerId"], result["amount"], result["annualRate"]) == (
        run.customer_id,
        "1000000.00",
        "0.043500",
    )
    assert [c["id"] for c in result["collateral"]] == [run.collateral_id]
    assert sum(Decimal(row["principal"]) for row in result["schedule"]) == Decimal("1000000.00")


def _record_repayment(run: Run) -> None:
    result = run.data["recordRepayment"]
    assert result["__typename"] == "RepaymentOutcome", result
    assert (result["repayment"]["amount"], result["loan"]["id"]) == ("100.00", run.loan_id)


def _reverse_repayment(run: Run) -> None:
    result = run.data["reverseRepayment"]
    assert result["__typename"] == "RepaymentOutcome", result
    assert (result["repayment"]["id"], result["repayment"]["reversed"]) == (run.repayment_id, True)


def _classify_loan(run: Run) -> None:
    result = run.data["classifyLoan"]
    assert result["__typename"] == "Loan", result
    assert result["classification"] == "SPECIAL_MENTION"
    assert result["classificationHistory"][0]["previous"] == "NORMAL"


def _set_loan_flags(run: Run) -> None:
    result = run.data["setLoanFlags"]
    assert result["__typename"] == "Loan", result
    assert result["flags"] == ["LITIGATION"]


def _replace_classification_rules(run: Run) -> None:
    result = run.data["replaceClassificationRules"]
    assert result["__typename"] == "ClassificationRuleSet", result
    assert result["rules"] == DEFAULT_RULES


def _result(run: Run, field: str, typename: str) -> dict[str, Any]:
    result = run.data[field]
    assert result is not None and result["__typename"] == typename, result
    return result


def _my_day(run: Run) -> None:
    day = _result(run, "myDay", "MyDay")
    assert day["asOf"] == date.today().isoformat()
    # The run's follow-up is the admin's, a week ahead by phone: neither due nor a visit.
    planned = {row["id"] for key in ("overdue", "dueToday", "visits") for row in day[key]}
    assert run.follow_up_id is None or run.follow_up_id not in planned


def _customer_relationship(run: Run) -> None:
    customer = _result(run, "customer", "Customer")
    assert customer["id"] == run.customer_id
    (contact,) = [edge["node"] for edge in customer["interactions"]["edges"]]
    assert (contact["channel"], contact["summary"]) == ("VISIT", "上门拜访")
    assert [f["id"] for f in customer["followUps"]] == [run.follow_up_id]
    assert [c["id"] for c in customer["complaints"]] == [run.complaint_id]
    (case,) = customer["riskCases"]
    assert case["id"] == run.case_id and [m["id"] for m in case["measures"]] == [run.measure_id]
    assert customer["warnings"] == []
    kinds = {entry["kind"] for entry in customer["timeline"]["entries"]}
    assert {"INTERACTION", "COMPLAINT", "RISK_CASE_OPENED", "RISK_MEASURE", "LOAN_CREATED"} <= kinds


def _log_interaction(run: Run) -> None:
    result = _result(run, "logInteraction", "Interaction")
    assert (result["customerId"], result["channel"]) == (run.customer_id, "PHONE")


def _plan_follow_up(run: Run) -> None:
    result = _result(run, "planFollowUp", "FollowUp")
    assert (result["customerId"], result["channel"], result["done"]) == (run.customer_id, "VISIT", False)


def _complete_follow_up(run: Run) -> None:
    result = _result(run, "completeFollowUp", "FollowUp")
    assert (result["id"], result["done"]) == (run.follow_up_id, True)


def _record_complaint(run: Run) -> None:
    result = _result(run, "recordComplaint", "Complaint")
    assert (result["customerId"], result["category"], result["status"]) == (run.customer_id, "FEES", "OPEN")
    assert result["overdue"] is False


def _update_complaint(run: Run) -> None:
    result = _result(run, "updateComplaint", "Complaint")
    assert (result["id"], result["status"]) == (run.complaint_id, "IN_PROGRESS")


def _list_complaints(run: Run) -> None:
    connection = _result(run, "complaints", "ComplaintConnection")
    assert all(edge["node"]["status"] == "OPEN" for edge in connection["edges"])


def _complaint_by_id(run: Run) -> None:
    result = _result(run, "complaint", "Complaint")
    assert (result["id"], result["content"]) == (run.complaint_id, "等候时间过长")


def _risk_board(run: Run) -> None:
    board = _result(run, "riskBoard", "RiskBoard")
    assert [column["status"] for column in board["columns"]] == ["OPEN", "IN_PROGRESS", "RESOLVED", "CLOSED"]


def _risk_case_by_id(run: Run) -> None:
    case = _result(run, "riskCase", "RiskCase")
    assert (case["id"], case["status"]) == (run.case_id, "IN_PROGRESS")  # a measure moved it along
    assert [m["id"] for m in case["measures"]] == [run.measure_id]


def _open_risk_case(run: Run) -> None:
    result = _result(run, "openRiskCase", "RiskCase")
    assert (result["customerId"], result["trigger"], result["status"]) == (run.customer_id, "OVERDUE", "OPEN")


def _update_risk_case(run: Run) -> None:
    result = _result(run, "updateRiskCase", "RiskCase")
    assert (result["id"], result["status"]) == (run.case_id, "IN_PROGRESS")
    assert result["lessons"]


def _add_risk_measure(run: Run) -> None:
    result = _result(run, "addRiskMeasure", "RiskMeasure")
    assert (result["caseId"], result["status"], result["overdue"]) == (run.case_id, "PLANNED", False)


def _update_risk_measure(run: Run) -> None:
    result = _result(run, "updateRiskMeasure", "RiskMeasure")
    assert (result["id"], result["status"]) == (run.measure_id, "DONE")


def _warning_rules(run: Run) -> None:
    rules = run.data["warningRules"]
    assert {rule["kind"] for rule in rules} == {
        "DAYS_PAST_DUE",
        "CLASSIFICATION_WORSENED",
        "DEBT_TO_INCOME",
        "NO_CONTACT_WITH_OVERDUE",
    }


def _flagged_customers(run: Run) -> None:
    assert all(row["warning"]["kind"] == "DAYS_PAST_DUE" for row in run.data["flaggedCustomers"])


def _update_warning_rules(run: Run) -> None:
    result = _result(run, "updateWarningRules", "WarningRuleSet")
    assert {(r["kind"], r["threshold"], r["enabled"]) for r in result["rules"]} == {
        ("DAYS_PAST_DUE", "30", True),
        ("CLASSIFICATION_WORSENED", None, True),
        ("DEBT_TO_INCOME", "0.5000", True),
        ("NO_CONTACT_WITH_OVERDUE", "90", True),
    }


def _evaluate_warnings(run: Run) -> None:
    result = _result(run, "evaluateWarnings", "WarningEvaluation")
    assert min(result["raised"], result["cleared"], result["live"]) >= 0


def _dashboard(run: Run) -> None:
    dashboard = _result(run, "dashboard", "Dashboard")
    assert dashboard["asOf"] == "2025-06-30"
    assert [point["month"] for point in dashboard["trend"]][-1] == "2025-06"
    assert len(dashboard["trend"]) == 12
    assert dashboard["kpis"]["customers"] >= 1


def _import_jobs(run: Run) -> None:
    assert run.job_id in {job["id"] for job in run.data["importJobs"]}


def _import_job_by_id(run: Run) -> None:
    job = _result(run, "importJob", "ImportJob")
    assert (job["id"], job["status"], job["kind"]) == (run.job_id, "UPLOADED", "CUSTOMERS")
    assert job["progress"] == {"rowsDone": 0, "totalRows": 0, "percent": 0}


def _segment_preview(run: Run) -> None:
    preview = _result(run, "segmentPreview", "SegmentPreview")
    ids = [edge["node"]["id"] for edge in preview["customers"]["edges"]]
    # The run's customer (low risk, no region) matches and is the newest; the page is the first 10.
    assert ids[0] == run.customer_id
    assert len(ids) == len(set(ids)) == min(10, preview["count"])


def _segments(run: Run) -> None:
    (segment,) = [s for s in run.data["segments"] if s["id"] == run.segment_id]
    assert segment["__typename"] == "Segment" and segment["canEdit"] is True
    assert segment["filter"] == SEGMENT_FILTER and segment["count"] >= 1
    assert segment["owner"]["id"] and segment["owner"]["displayName"]


def _segment_by_id(run: Run) -> None:
    segment = _result(run, "segment", "Segment")
    assert (segment["id"], segment["filter"]) == (run.segment_id, SEGMENT_FILTER)
    edges = segment["customers"]["edges"]
    assert edges[0]["node"]["id"] == run.customer_id and edges[0]["node"]["riskLevel"] == "LOW"
    assert segment["customers"]["totalCount"] == segment["count"] >= 1
    assert [(s["key"], s["count"]) for s in segment["breakdown"]] == [("low", segment["count"])]


def _save_segment(run: Run) -> None:
    segment = _result(run, "saveSegment", "Segment")
    assert (segment["name"], segment["shared"]) == ("上海高风险逾期客户", True)
    assert [c["field"] for c in segment["filter"]["and"]] == [
        "riskLevel",
        "regionCode",
        "daysPastDue",
        "daysSinceLastContact",
    ]
    assert segment["count"] >= 0
    uuid.UUID(segment["id"])


def _update_segment(run: Run) -> None:
    segment = _result(run, "updateSegment", "Segment")
    assert (segment["id"], segment["name"], segment["shared"]) == (run.segment_id, "上海高风险客户", False)
    assert len(segment["filter"]["and"]) == 2


def _delete_segment(run: Run) -> None:
    assert _result(run, "deleteSegment", "SegmentDeleted")["id"] == run.segment_id


def _retention_policies(run: Run) -> None:
    policies = {p["category"]: p for p in run.data["retentionPolicies"]}
    assert {"PROSPECTS", "INTERACTIONS", "SESSIONS"} <= set(policies)
    assert policies["SESSIONS"]["action"] == "DELETE"
    assert all(30 <= p["periodDays"] <= 3650 for p in policies.values())


def _retention_dry_run(run: Run) -> None:
    outcome = run.data["retentionDryRun"]
    assert (outcome["asOf"], outcome["dryRun"]) == ("2026-12-31", True)
    named = [c["category"] for c in outcome["categories"]] + outcome["disabled"]
    assert "PROSPECTS" in named and len(named) == len(set(named))


def _update_retention_policies(run: Run) -> None:
    result = _result(run, "updateRetentionPolicies", "RetentionPolicySet")
    saved = {p["category"]: p for p in result["policies"]}
    assert saved["INTERACTIONS"] == {
        "category": "INTERACTIONS",
        "periodDays": 1825,
        "action": "ANONYMISE",
        "enabled": False,
    }


def _request_erasure(run: Run) -> None:
    result = _result(run, "requestErasure", "ErasureRequest")
    assert (result["status"], result["basis"], result["action"]) == (
        "REQUESTED",
        "CONSENT_WITHDRAWN",
        "ANONYMISE",
    )
    assert run.customer_id.startswith(result["customerRef"])


def _set_legal_hold(run: Run) -> None:
    result = _result(run, "setLegalHold", "LegalHold")
    assert result == {"__typename": "LegalHold", "customerId": run.customer_id, "legalHold": True}


def _export_customer_data(run: Run) -> None:
    result = _result(run, "exportCustomerData", "AccessExport")
    assert result["customerId"] == run.customer_id
    (profile,) = result["sections"]["customer"]
    assert profile["name"] == run.customer_name
    assert result["counts"]["complaints"] == 1 and result["counts"]["interactions"] == 1


def _erasure_requests(run: Run) -> None:
    assert isinstance(run.data["erasureRequests"], list)


def _run_retention(run: Run) -> None:
    outcome = _result(run, "runRetention", "RetentionOutcome")
    assert (outcome["asOf"], outcome["dryRun"]) == ("2020-01-01", False)
    uuid.UUID(outcome["runId"])
    assert all(c["count"] == 0 for c in outcome["categories"])  # nothing is older than 2020 minus a period


def _retention_runs(run: Run) -> None:
    assert isinstance(run.data["retentionRuns"], list)


def _erasure_request(run: Run) -> None:
    # The harness passes the run's customer id, which names no erasure request.
    assert run.data["erasureRequest"] is None


def _review_erasure(run: Run) -> None:
    assert _result(run, "reviewErasure", "NotFoundError")["id"] == run.customer_id


def _execute_erasure(run: Run) -> None:
    assert _result(run, "executeErasure", "NotFoundError")["id"] == run.customer_id


EXPECTED: dict[str, Callable[[Run], None]] = {
    "listCustomers": _list_customers,
    "customerById": _customer_by_id,
    "createCustomer": _create_customer,
    "updateCustomer": _update_customer,
    "revealCustomerPii": _reveal_customer_pii,
    "loanSchedule": _loan_schedule,
    "viewer": _viewer,
    "customerWithLoans": _customer_with_loans,
    "loanById": _loan_by_id,
    "listLoans": _list_loans,
    "collateralById": _collateral_by_id,
    "classificationRules": _classification_rules,
    "createCollateral": _create_collateral,
    "updateCollateral": _update_collateral,
    "addAppraisal": _add_appraisal,
    "createLoan": _create_loan,
    "recordRepayment": _record_repayment,
    "reverseRepayment": _reverse_repayment,
    "classifyLoan": _classify_loan,
    "setLoanFlags": _set_loan_flags,
    "replaceClassificationRules": _replace_classification_rules,
    "myDay": _my_day,
    "customerRelationship": _customer_relationship,
    "logInteraction": _log_interaction,
    "planFollowUp": _plan_follow_up,
    "completeFollowUp": _complete_follow_up,
    "recordComplaint": _record_complaint,
    "updateComplaint": _update_complaint,
    "listComplaints": _list_complaints,
    "complaintById": _complaint_by_id,
    "riskBoard": _risk_board,
    "riskCaseById": _risk_case_by_id,
    "openRiskCase": _open_risk_case,
    "updateRiskCase": _update_risk_case,
    "addRiskMeasure": _add_risk_measure,
    "updateRiskMeasure": _update_risk_measure,
    "warningRules": _warning_rules,
    "flaggedCustomers": _flagged_customers,
    "updateWarningRules": _update_warning_rules,
    "evaluateWarnings": _evaluate_warnings,
    "dashboard": _dashboard,
    "importJobs": _import_jobs,
    "importJobById": _import_job_by_id,
    "segmentPreview": _segment_preview,
    "segments": _segments,
    "segmentById": _segment_by_id,
    "saveSegment": _save_segment,
    "updateSegment": _update_segment,
    "deleteSegment": _delete_segment,
    "retentionPolicies": _retention_policies,
    "retentionDryRun": _retention_dry_run,
    "updateRetentionPolicies": _update_retention_policies,
    "requestErasure": _request_erasure,
    "setLegalHold": _set_legal_hold,
    "exportCustomerData": _export_customer_data,
    "erasureRequests": _erasure_requests,
    "runRetention": _run_retention,
    "retentionRuns": _retention_runs,
    "erasureRequest": _erasure_request,
    "reviewErasure": _review_erasure,
    "executeErasure": _execute_erasure,
}


def _name(path: Path) -> str:
    return path.name.removesuffix(".graphql")


def _variables(path: Path) -> dict[str, Any] | None:
    """The example's variables file, or None when it has none."""
    variables_file = path.with_name(f"{_name(path)}.variables.json")
    return json.loads(variables_file.read_text(encoding="utf-8")) if variables_file.exists() else None


def test_the_examples_exist():
    assert EXAMPLE_FILES, f"no example operations in {EXAMPLES}"
    missing = sorted(set(EXPECTED) - {_name(path) for path in EXAMPLE_FILES})
    assert not missing, f"examples with an expectation but no file: {missing}"


def test_every_variables_file_belongs_to_an_example():
    names = {_name(path) for path in EXAMPLE_FILES}
    orphans = [
        p.name
        for p in EXAMPLES.glob("*.variables.json")
        if p.name.removesuffix(".variables.json") not in names
    ]
    assert not orphans, f"variables files without an example: {orphans}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_name)
def test_example_is_one_documented_operation(path: Path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), f"{path.name} must start with a comment saying what it does"
    document = parse(text)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1, f"{path.name} must hold exactly one operation"
    operation = operations[0]
    assert operation.name is not None, f"{path.name}: name the operation (it shows in logs)"
    declared = {v.variable.name.value for v in operation.variable_definitions or ()}
    given = set(_variables(path) or {})
    assert given == declared, (
        f"{path.name} declares {sorted(declared)}, its variables file gives {sorted(given)}"
    )


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_name)
async def test_example_runs_against_a_real_server(path: Path, live_server, token_a, tenant_a, db, settings):
    name = _name(path)
    expectation = EXPECTED.get(name)
    if expectation is None:
        pytest.fail(f"graphql/examples/{path.name} has no expectation: add one to EXPECTED in {__file__}")
    headers = {"Authorization": f"Bearer {token_a}"}
    async with httpx.AsyncClient(base_url=live_server) as client:
        await _run_example(client, path, headers, expectation, tenant_a, db, settings)


async def _run_example(client, path: Path, headers, expectation, tenant_a, db, settings) -> None:
    query, variables = path.read_text(encoding="utf-8"), _variables(path) or {}  # noqa: ASYNC240

    # The examples that need an existing customer get one made for this run.
    customer_name = f"张 example {uuid.uuid4().hex[:8]}"
    made = await client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"kind": "INDIVIDUAL", "name": customer_name}}},
        headers=headers,
    )
    created = made.json()["data"]["createCustomer"]
    assert created["__typename"] == "Customer", made.text

    if "id" in variables:
        variables["id"] = created["id"]
    if isinstance(variables.get("filter"), dict) and "search" in variables["filter"]:
        # Other tests add customers to this tenant: search for this run's one alone.
        assert variables["filter"]["search"] in customer_name
        variables["filter"]["search"] = customer_name
    run = Run({}, created["id"], customer_name, tenant_a.admin_email)
    filter_ = variables.get("filter")
    if set(LENDING_IDS) & set(variables) or (isinstance(filter_, dict) and "customerId" in filter_):
        run = await _lending_book(client, headers, run)
        ids = dict(zip(LENDING_IDS, (run.customer_id, run.collateral_id, run.loan_id, run.repayment_id)))
        variables.update({key: ids[key] for key in LENDING_IDS if key in variables})
        if isinstance(filter_, dict) and "customerId" in filter_:
            filter_["customerId"] = run.customer_id
        if "collateralIds" in variables.get("input", {}):
            variables["input"]["collateralIds"] = [run.collateral_id]
    if set(WORK_IDS) & set(variables) or "customerId" in variables:
        run = await _relationship_work(client, headers, run)
        ids = dict(zip(WORK_IDS, (run.complaint_id, run.case_id, run.measure_id, run.follow_up_id)))
        variables.update({key: ids[key] for key in WORK_IDS if key in variables})
    loose = variables.get("input") or {}
    if "dueOn" in loose:
        # Follow-ups are planned from today on: the example's date would go stale.
        loose["dueOn"] = (date.today() + timedelta(days=30)).isoformat()
    if "jobId" in variables or name_of_operation(query) == "ImportJobs":
        run = dataclasses.replace(run, job_id=await _import_job(db, settings, tenant_a))
        if "jobId" in variables:
            variables["jobId"] = run.job_id
    if "segmentId" in variables or name_of_operation(query) == "Segments":
        run = dataclasses.replace(run, segment_id=await _segment(client, headers))
        if "segmentId" in variables:
            variables["segmentId"] = run.segment_id
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    expectation(dataclasses.replace(run, data=body["data"]))


def name_of_operation(query: str) -> str | None:
    (operation,) = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)]
    return operation.name.value if operation.name else None


async def _relationship_work(client, headers, run: Run) -> Run:
    """A contact, a complaint, a risk case with a measure and a follow-up on the run's customer."""
    due = (date.today() + timedelta(days=7)).isoformat()
    response = await client.post(
        "/graphql",
        json={"query": WORK, "variables": {"customerId": run.customer_id, "dueOn": due}},
        headers=headers,
    )
    data = response.json()["data"]
    assert all("id" in data[field] for field in ("recordComplaint", "openRiskCase", "planFollowUp")), data
    response = await client.post(
        "/graphql",
        json={"query": MEASURE, "variables": {"caseId": data["openRiskCase"]["id"], "dueOn": due}},
        headers=headers,
    )
    measure = response.json()["data"]["addRiskMeasure"]
    assert measure["__typename"] == "RiskMeasure", measure
    return dataclasses.replace(
        run,
        complaint_id=data["recordComplaint"]["id"],
        case_id=data["openRiskCase"]["id"],
        measure_id=measure["id"],
        follow_up_id=data["planFollowUp"]["id"],
    )


async def _segment(client, headers) -> str:
    """A segment of the token's user (the admin) holding the low-risk customers."""
    segment_input = {"name": f"low risk {uuid.uuid4().hex[:6]}", "filter": SEGMENT_FILTER}
    response = await client.post(
        "/graphql", json={"query": SAVE_SEGMENT, "variables": {"input": segment_input}}, headers=headers
    )
    saved = response.json()["data"]["saveSegment"]
    assert saved["__typename"] == "Segment", saved
    return saved["id"]


async def _import_job(db, settings, tenant_a) -> str:
    """An uploaded customers file (uploads are not an API operation), by the token's user."""
    admin = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    cipher = cipher_source(db, master_key_ring(settings), tenant_a.tenant)
    content = "姓名,手机号\n张三,13800000001\n李四,13800000002\n".encode()
    async with tenant_session(db, tenant_a.tenant) as session:
        job = await ImportService(session, admin, cipher).upload("客户.csv", content)
        return str(job.id)


async def _lending_book(client, headers, run: Run) -> Run:
    """Collateral, a loan it secures and a repayment of that loan, for the run's customer."""

    async def call(document: str, variables: dict[str, Any], field: str) -> dict[str, Any]:
        response = await client.post(
            "/graphql", json={"query": document, "variables": variables}, headers=headers
        )
        result = response.json()["data"][field]
        assert result["__typename"] != "InputError", result
        return result

    collateral = await call(BOOK, {"customerId": run.customer_id}, "createCollateral")
    loan = await call(LOAN, {"customerId": run.customer_id, "collateralId": collateral["id"]}, "createLoan")
    repaid = await call(REPAY, {"loanId": loan["id"]}, "recordRepayment")
    return dataclasses.replace(
        run, collateral_id=collateral["id"], loan_id=loan["id"], repayment_id=repaid["repayment"]["id"]
    )
