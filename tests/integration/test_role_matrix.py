"""Every GraphQL example and every page route, run as each built-in role, against one matrix.

Checks live in the service layer (DESIGN.md, "Roles and permissions"): a GraphQL field or a
page that skips one is a bug, and this is the test that catches it. Two tables say what each
role gets, one line per operation or route, roles always in the order of ROLES:

* EXPECTED: each operation in graphql/examples, run with the role's API token. An operation that
  names a customer runs once per target customer (the role's own, a team-mate's, someone
  else's outside the role's team), so record scopes are part of the matrix.
* PAGES: each (method, path template) of the app, called by the role signed in through the
  real login form; the expected HTTP status per role.

An example file or a route without a row fails, and so does a row nothing answers to any more.
A row the app gets wrong keeps the right expectation and is listed in KNOWN_BUGS with the bug:
it runs as a strict xfail, so fixing the bug makes it pass loudly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import FieldNode, OperationDefinitionNode, parse
from graphql import build_schema as build_sdl_schema
from litestar.routes import HTTPRoute
from sqlalchemy import select

from tenantcrm.auth.admin_service import AccessAdminService
from tenantcrm.auth.models import ApiToken
from tenantcrm.auth.permissions import BUILT_IN_ROLE_NAMES, CUSTOMERS_WRITE
from tenantcrm.auth.service import create_api_token, find_user_by_email
from tenantcrm.collateral.service import CollateralService
from tenantcrm.complaints.service import ComplaintService
from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.service import CustomerService
from tenantcrm.graphql.schema import SDL_PATH
from tenantcrm.imports.service import ImportService
from tenantcrm.loans.ledger import DEFAULT_RULES
from tenantcrm.loans.service import LoanService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_for, cipher_source
from tenantcrm.risk.case_service import RiskCaseService
from tenantcrm.saved_views.service import SavedViewService
from tenantcrm.segments.service import SegmentService
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant
from tests.conftest import PASSWORD, add_user, api_token_for, make_tenant, principal_of, web_sign_in

ROLES = ("admin", "manager", "loan_officer", "risk_officer", "auditor", "viewer")
EXAMPLES = REPO_ROOT / "graphql" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.graphql"))
PURPOSE = "role matrix test"

# Which customer an operation or page that names one is run against, for each role.
TARGETS = ("own", "team", "other")
TEAM_MATES = ("manager", "loan_officer")  # the one team; everyone else is in none


def test_the_roles_are_the_built_in_ones():
    assert ROLES == BUILT_IN_ROLE_NAMES


# --- the world: one tenant, a user per role, and something for every route to act on ---


@dataclass(frozen=True)
class CustomerRef:
    id: uuid.UUID
    name: str


@dataclass
class World:
    tenant: Tenant
    emails: dict[str, str]
    api_tokens: dict[str, str]
    customers: dict[str, CustomerRef]  # by owner's role
    team_id: uuid.UUID
    custom_role_id: uuid.UUID  # a role of the tenant's own, edited by PAGES
    doomed_roles: dict[str, uuid.UUID]  # per acting role: a custom role it tries to delete
    doomed_users: dict[str, uuid.UUID]  # per acting role: a user it tries to assign and disable
    own_tokens: dict[str, uuid.UUID]  # per acting role: a token of its own, to revoke
    others_tokens: dict[str, uuid.UUID]  # per acting role: someone else's token, to revoke
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.tenant.slug

    def customer(self, role: str, target: str) -> CustomerRef:
        """own: the role's own customer. team: the loan officer's, in the manager's team (the
        officer's own). other: one outside the role's team, owned by somebody else."""
        if target == "own":
            return self.customers[role]
        if target == "team":
            return self.customers["loan_officer"]
        if target == "other":
            return self.customers["viewer" if role == "admin" else "admin"]
        raise ValueError(f"unknown target {target}")


async def _token_id(session, name: str) -> uuid.UUID:
    return await session.scalar(select(ApiToken.id).where(ApiToken.name == name))


@pytest.fixture(scope="module")
async def world(lifecycle, db, settings, app) -> AsyncIterator[World]:
    fixture = await make_tenant(lifecycle, "matrix")
    tenant = fixture.tenant
    emails = {"admin": fixture.admin_email}
    for role in ROLES[1:]:
        emails[role] = await add_user(db, tenant, role)
    admin = await principal_of(db, tenant, fixture.admin_email)
    tag = uuid.uuid4().hex[:6]

    async with tenant_session(db, tenant) as session:
        service = AccessAdminService(session, admin)
        team = await service.create_team(f"matrix team {tag}")
        for role in TEAM_MATES:
            user = await find_user_by_email(session, emails[role])
            await service.assign(user.id, role=role, team_id=team.id)
        custom = await service.create_role(
            "matrix_custom", record_scope="own", permissions={"customers.read"}
        )
        doomed_roles, doomed_users = {}, {}
        for role in ROLES:
            doomed_roles[role] = (
                await service.create_role(f"doomed_{role}", record_scope="own", permissions=set())
            ).id
            invited = await service.invite_user(email=f"doomed-{role}-{tag}@example.com", role="viewer")
            doomed_users[role] = (await find_user_by_email(session, invited.email)).id
        own_tokens, others_tokens = {}, {}
        for role in ROLES:
            user = await find_user_by_email(session, emails[role])
            await create_api_token(session, tenant, user, f"own {role}")
            own_tokens[role] = await _token_id(session, f"own {role}")
            # The admin sees every token; anyone else's "other" token is the admin's.
            other = await find_user_by_email(session, emails["viewer" if role == "admin" else "admin"])
            await create_api_token(session, tenant, other, f"other {role}")
            others_tokens[role] = await _token_id(session, f"other {role}")

    # A customer owned by each user, made through the service as that user (after the team is
    # set, so team-mates' customers belong to the team). Roles that may not create customers
    # are lent customers.write for this one call: it is the owner that matters here.
    ring = master_key_ring(settings)

    def cipher(need_version=None):
        return cipher_for(db, ring, tenant, need_version=need_version)

    customers = {}
    for role in ROLES:
        principal = await principal_of(db, tenant, emails[role])
        if not principal.can(CUSTOMERS_WRITE):
            principal = dataclasses.replace(principal, permissions=principal.permissions | {CUSTOMERS_WRITE})
        async with tenant_session(db, tenant) as session:
            row = await CustomerService(session, principal, cipher).create_customer(
                {"kind": "individual", "name": f"矩阵 {role} {tag}", "phone": "13812345678"}
            )
            customers[role] = CustomerRef(row.id, row.name)

    world = World(
        tenant=tenant,
        emails=emails,
        api_tokens={role: await api_token_for(db, tenant, emails[role]) for role in ROLES},
        customers=customers,
        team_id=team.id,
        custom_role_id=custom.id,
        doomed_roles=doomed_roles,
        doomed_users=doomed_users,
        own_tokens=own_tokens,
        others_tokens=others_tokens,
    )
    async with contextlib.AsyncExitStack() as stack:
        for number, role in enumerate(ROLES, start=1):
            # A client address per role, so sign-in throttling by address never mixes them.
            transport = httpx.ASGITransport(app=app, client=(f"203.0.113.{number}", 50000))
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            world.clients[role] = await stack.enter_async_context(client)
            signed_in = await web_sign_in(client, world.slug, emails[role])
            assert signed_in.status_code == 303, f"{role} could not sign in: {signed_in.status_code}"
        yield world


def _diff(what: str, expected: dict[str, Any], observed: dict[str, Any]) -> str:
    lines = [f"{what}: the roles do not get what the matrix says", f"  {'role':<14}{'expected':<12}observed"]
    for role in ROLES:
        mark = "" if expected[role] == observed[role] else "   <-- differs"
        lines.append(f"  {role:<14}{expected[role]!s:<12}{observed[role]!s}{mark}")
    return "\n".join(lines)


# --- known bugs ---

# Rows (of EXPECTED or PAGES) the app gets wrong today: each runs as a strict xfail, so the fix
# makes it pass and fail the run until its line here goes.
KNOWN_BUGS: dict[str, str] = {}


def _known_bug(key: str) -> list[Any]:
    return [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[key])] if key in KNOWN_BUGS else []


# --- GraphQL: every example operation ---

ALLOWED, DENIED, HIDDEN = "allowed", "denied", "hidden"
A, D, H = ALLOWED, DENIED, HIDDEN
SUCCESS_TYPES = {
    "Customer",
    "CustomerConnection",
    "LoanSchedule",
    "RevealedPii",
    "Viewer",
    "Collateral",
    "Loan",
    "LoanConnection",
    "RepaymentOutcome",
    "ClassificationRuleSet",
    # The relationship work
    "MyDay",
    "Interaction",
    "FollowUp",
    "Complaint",
    "ComplaintConnection",
    "RiskBoard",
    "RiskCase",
    "RiskMeasure",
    "WarningRuleSet",
    "WarningEvaluation",
    "Dashboard",
    "ImportJob",
    # Segments
    "SegmentPreview",
    "Segment",
    "SegmentDeleted",
    # Retention
    "RetentionOutcome",
    "RetentionPolicySet",
    "LegalHold",
    "ErasureRequest",
    "AccessExport",
}
# Variables naming the target customer or what hangs off it (its collateral, loan, a repayment).
TARGET_VARIABLES = (
    "id",
    "customerId",
    "collateralId",
    "loanId",
    "repaymentId",
    "complaintId",
    "caseId",
    "measureId",
    "followUpId",
)


# The example's name, with the target customer in brackets when it names one.
# allowed: the data, with its success type; denied: PermissionError or a "missing permission"
# error; hidden: null, NotFoundError, or a list without the customer (out of record scope).
# fmt: off
# Columns: admin, manager, loan_officer, risk_officer, auditor, viewer (ROLES).
EXPECTED: dict[str, tuple[str, ...]] = {
    "viewer":                   (A, A, A, A, A, A),
    "loanSchedule":             (A, A, A, A, A, A),
    "createCustomer":           (A, A, A, D, D, D),
    "customerById[own]":        (A, A, A, A, A, A),
    "customerById[team]":       (A, A, A, A, A, A),
    "customerById[other]":      (A, H, H, A, A, A),
    "listCustomers[own]":       (A, A, A, A, A, A),
    "listCustomers[team]":      (A, A, A, A, A, A),
    "listCustomers[other]":     (A, H, H, A, A, A),
    "updateCustomer[own]":      (A, A, A, D, D, D),
    "updateCustomer[team]":     (A, A, A, D, D, D),
    "updateCustomer[other]":    (A, H, H, D, D, D),
    "revealCustomerPii[own]":   (A, A, D, A, D, D),
    "revealCustomerPii[team]":  (A, A, D, A, D, D),
    "revealCustomerPii[other]": (A, H, D, A, D, D),
    # The lending book: reading follows the customer's record scope; writing needs loans.write,
    # classifying loans.classify, both checked before the scope.
    "classificationRules":               (A, A, A, A, A, A),
    "replaceClassificationRules":        (A, D, D, A, D, D),
    "customerWithLoans[own]":            (A, A, A, A, A, A),
    "customerWithLoans[team]":           (A, A, A, A, A, A),
    "customerWithLoans[other]":          (A, H, H, A, A, A),
    "loanById[own]":                     (A, A, A, A, A, A),
    "loanById[team]":                    (A, A, A, A, A, A),
    "loanById[other]":                   (A, H, H, A, A, A),
    "listLoans[own]":                    (A, A, A, A, A, A),
    "listLoans[team]":                   (A, A, A, A, A, A),
    "listLoans[other]":                  (A, H, H, A, A, A),
    "collateralById[own]":               (A, A, A, A, A, A),
    "collateralById[team]":              (A, A, A, A, A, A),
    "collateralById[other]":             (A, H, H, A, A, A),
    "createCollateral[own]":             (A, A, A, D, D, D),
    "createCollateral[team]":            (A, A, A, D, D, D),
    "createCollateral[other]":           (A, H, H, D, D, D),
    "updateCollateral[own]":             (A, A, A, D, D, D),
    "updateCollateral[team]":            (A, A, A, D, D, D),
    "updateCollateral[other]":           (A, H, H, D, D, D),
    "addAppraisal[own]":                 (A, A, A, D, D, D),
    "addAppraisal[team]":                (A, A, A, D, D, D),
    "addAppraisal[other]":               (A, H, H, D, D, D),
    "createLoan[own]":                   (A, A, A, D, D, D),
    "createLoan[team]":                  (A, A, A, D, D, D),
    "createLoan[other]":                 (A, H, H, D, D, D),
    "recordRepayment[own]":              (A, A, A, D, D, D),
    "recordRepayment[team]":             (A, A, A, D, D, D),
    "recordRepayment[other]":            (A, H, H, D, D, D),
    "reverseRepayment[own]":             (A, A, A, D, D, D),
    "reverseRepayment[team]":            (A, A, A, D, D, D),
    "reverseRepayment[other]":           (A, H, H, D, D, D),
    "classifyLoan[own]":                 (A, D, D, A, D, D),
    "classifyLoan[team]":                (A, D, D, A, D, D),
    "classifyLoan[other]":               (A, D, D, A, D, D),
    "setLoanFlags[own]":                 (A, D, D, A, D, D),
    "setLoanFlags[team]":                (A, D, D, A, D, D),
    "setLoanFlags[other]":               (A, D, D, A, D, D),
    # The relationship work: reading follows the record scope; contacts and complaints need
    # customers.write, risk cases and warning rules risk.manage (checked before the scope). The
    # matrix's follow-ups are the admin's, so others tick them off only with customers.write.
    # Import jobs need `import` and are seen by their uploader (the admin) or all-scope roles.
    "myDay":                             (A, A, A, A, A, A),
    "dashboard":                         (A, A, A, A, A, A),
    "listComplaints":                    (A, A, A, A, A, A),
    "riskBoard":                         (A, A, A, A, A, A),
    "warningRules":                      (A, A, A, A, A, A),
    "flaggedCustomers":                  (A, A, A, A, A, A),
    "updateWarningRules":                (A, D, D, A, D, D),
    "evaluateWarnings":                  (A, D, D, A, D, D),
    "importJobs":                        (A, A, A, D, D, D),
    "importJobById":                     (A, H, H, D, D, D),
    "customerRelationship[own]":         (A, A, A, A, A, A),
    "customerRelationship[team]":        (A, A, A, A, A, A),
    "customerRelationship[other]":       (A, H, H, A, A, A),
    "complaintById[own]":                (A, A, A, A, A, A),
    "complaintById[team]":               (A, A, A, A, A, A),
    "complaintById[other]":              (A, H, H, A, A, A),
    "riskCaseById[own]":                 (A, A, A, A, A, A),
    "riskCaseById[team]":                (A, A, A, A, A, A),
    "riskCaseById[other]":               (A, H, H, A, A, A),
    "logInteraction[own]":               (A, A, A, D, D, D),
    "logInteraction[team]":              (A, A, A, D, D, D),
    "logInteraction[other]":             (A, H, H, D, D, D),
    "planFollowUp[own]":                 (A, A, A, D, D, D),
    "planFollowUp[team]":                (A, A, A, D, D, D),
    "planFollowUp[other]":               (A, H, H, D, D, D),
    "completeFollowUp[own]":             (A, A, A, D, D, D),
    "completeFollowUp[team]":            (A, A, A, D, D, D),
    "completeFollowUp[other]":           (A, H, H, D, D, D),
    "recordComplaint[own]":              (A, A, A, D, D, D),
    "recordComplaint[team]":             (A, A, A, D, D, D),
    "recordComplaint[other]":            (A, H, H, D, D, D),
    "updateComplaint[own]":              (A, A, A, D, D, D),
    "updateComplaint[team]":             (A, A, A, D, D, D),
    "updateComplaint[other]":            (A, H, H, D, D, D),
    "openRiskCase[own]":                 (A, D, D, A, D, D),
    "openRiskCase[team]":                (A, D, D, A, D, D),
    "openRiskCase[other]":               (A, D, D, A, D, D),
    "updateRiskCase[own]":               (A, D, D, A, D, D),
    "updateRiskCase[team]":              (A, D, D, A, D, D),
    "updateRiskCase[other]":             (A, D, D, A, D, D),
    "addRiskMeasure[own]":               (A, D, D, A, D, D),
    "addRiskMeasure[team]":              (A, D, D, A, D, D),
    "addRiskMeasure[other]":             (A, D, D, A, D, D),
    "updateRiskMeasure[own]":            (A, D, D, A, D, D),
    "updateRiskMeasure[team]":           (A, D, D, A, D, D),
    "updateRiskMeasure[other]":          (A, D, D, A, D, D),
    # Segments: previewing needs customers.read, saving segments.manage. The saved segment is the
    # manager's, shared with its team (the loan officer): others do not see it, even the admin;
    # for its team-mate it is read-only, and deleting needs segments.manage first.
    "segmentPreview":                    (A, A, A, A, A, A),
    "segments":                          (A, A, A, A, A, A),
    "segmentById":                       (H, A, A, H, H, H),
    "saveSegment":                       (A, A, D, A, D, D),
    "updateSegment":                     (H, A, D, H, D, D),
    "deleteSegment":                     (H, A, D, H, D, D),
    # Retention, legal hold, erasure and access requests: admin.retention (the export also
    # pii.reveal), which only the admin holds, with the admin's record scope (all). An id names no
    # erasure request here (the matrix passes a customer's), so the admin finds nothing.
    "retentionPolicies":                 (A, D, D, D, D, D),
    "retentionDryRun":                   (A, D, D, D, D, D),
    "retentionRuns":                     (A, D, D, D, D, D),
    "updateRetentionPolicies":           (A, D, D, D, D, D),
    "runRetention":                      (A, D, D, D, D, D),
    "erasureRequests":                   (A, D, D, D, D, D),
    "erasureRequest[own]":               (H, D, D, D, D, D),
    "erasureRequest[team]":              (H, D, D, D, D, D),
    "erasureRequest[other]":             (H, D, D, D, D, D),
    "reviewErasure[own]":                (H, D, D, D, D, D),
    "reviewErasure[team]":               (H, D, D, D, D, D),
    "reviewErasure[other]":              (H, D, D, D, D, D),
    "executeErasure[own]":               (H, D, D, D, D, D),
    "executeErasure[team]":              (H, D, D, D, D, D),
    "executeErasure[other]":             (H, D, D, D, D, D),
    "requestErasure[own]":               (A, D, D, D, D, D),
    "requestErasure[team]":              (A, D, D, D, D, D),
    "requestErasure[other]":             (A, D, D, D, D, D),
    "setLegalHold[own]":                 (A, D, D, D, D, D),
    "setLegalHold[team]":                (A, D, D, D, D, D),
    "setLegalHold[other]":               (A, D, D, D, D, D),
    "exportCustomerData[own]":           (A, D, D, D, D, D),
    "exportCustomerData[team]":          (A, D, D, D, D, D),
    "exportCustomerData[other]":         (A, D, D, D, D, D),
}
# fmt: on


def _example_name(path: Path) -> str:
    return path.name.removesuffix(".graphql")


def _example_variables(path: Path) -> dict[str, Any]:
    variables_file = path.with_name(f"{_example_name(path)}.variables.json")
    return json.loads(variables_file.read_text(encoding="utf-8")) if variables_file.exists() else {}


def _names_a_customer(variables: dict[str, Any]) -> bool:
    flt = variables.get("filter") or {}
    return bool(set(TARGET_VARIABLES) & set(variables)) or bool(flt.get("search") or flt.get("customerId"))


def _graphql_cases() -> list[tuple[Path, str | None]]:
    cases: list[tuple[Path, str | None]] = []
    for path in EXAMPLE_FILES:
        targets = TARGETS if _names_a_customer(_example_variables(path)) else (None,)
        cases.extend((path, target) for target in targets)
    return cases


def _case_key(path: Path, target: str | None) -> str:
    return _example_name(path) if target is None else f"{_example_name(path)}[{target}]"


def _graphql_params() -> list[Any]:
    params = []
    for path, target in _graphql_cases():
        key = _case_key(path, target)
        params.append(pytest.param(path, target, id=key, marks=_known_bug(key)))
    return params


def _fill(
    variables: dict[str, Any], customer: CustomerRef, book: ApiBook, role: str, target: str
) -> dict[str, Any]:
    """The example's own variables, pointed at the target customer (as test_examples does) and at
    its collateral, its loan and a repayment of that loan kept for this role and target."""
    variables = json.loads(json.dumps(variables))
    if "id" in variables:
        variables["id"] = str(customer.id)
    if "purpose" in variables:
        variables["purpose"] = PURPOSE
    if (variables.get("filter") or {}).get("search"):
        # Only the name: whether the customer is listed must not hang on its risk or status,
        # which updateCustomer changes.
        variables["filter"] = {"search": customer.name}
    if (variables.get("filter") or {}).get("customerId"):
        # Only the customer: whether its loan is listed must not hang on its status.
        variables["filter"] = {"customerId": str(customer.id)}
    ids = {
        "customerId": customer.id,
        "collateralId": book.collateral[customer.id],
        "loanId": book.loans[customer.id],
        "repaymentId": book.reversible[(role, target)],
        "complaintId": book.complaints[customer.id],
        "caseId": book.risk_cases[customer.id],
        "measureId": book.risk_measures[customer.id],
        "followUpId": book.follow_ups[customer.id],
    }
    variables.update({name: str(value) for name, value in ids.items() if name in variables})
    loose = variables.get("input") or {}
    if "dueOn" in loose:
        loose["dueOn"] = date.today().isoformat()  # follow-ups are planned from today on
    if "collateralIds" in loose:
        loose["collateralIds"] = [str(book.collateral[customer.id])]
    if "paidOn" in loose:
        loose["paidOn"] = None  # today: the matrix's loans started recently
    return variables


def _fill_untargeted(variables: dict[str, Any], book: ApiBook, name: str = "") -> dict[str, Any]:
    """An operation naming no customer: only an import job or a segment is pointed at a real one."""
    if "jobId" in variables:
        return {**variables, "jobId": str(book.import_job)}
    if "segmentId" in variables:
        segment = book.doomed_segment if name == "deleteSegment" else book.segment
        return {**variables, "segmentId": str(segment)}
    return variables


def _classify(response: httpx.Response, customer: CustomerRef | None) -> str:
    if response.status_code != 200:
        return f"http {response.status_code}"
    body = response.json()
    if errors := body.get("errors"):
        if all(e["message"].startswith("missing permission") for e in errors):
            return DENIED
        return f"error: {errors[0]['message']}"
    (value,) = body["data"].values()
    if value is None:
        return HIDDEN
    if isinstance(value, list):  # classificationRules
        return ALLOWED
    typename = value["__typename"]
    if typename == "PermissionError":
        return DENIED
    if typename == "NotFoundError":
        return HIDDEN
    if typename in ("CustomerConnection", "LoanConnection"):
        key = "id" if typename == "CustomerConnection" else "customerId"
        listed = {edge["node"][key] for edge in value["edges"]}
        return ALLOWED if customer is not None and str(customer.id) in listed else HIDDEN
    if typename in SUCCESS_TYPES:
        owner = _owner(value)
        if customer is not None and owner is not None and owner != str(customer.id):
            return f"another customer: {owner}"
        return ALLOWED
    return f"unexpected {typename}"


def _owner(value: dict[str, Any]) -> str | None:
    """The customer a result is or belongs to, when it says."""
    if value["__typename"] == "Customer":
        return value["id"]
    if "customerId" in value:
        return value["customerId"]
    return (value.get("loan") or {}).get("customerId")


@dataclass(frozen=True)
class ApiBook:
    """What the GraphQL examples act on: the pages' collateral and loans, and a repayment per
    (acting role, target) of the API's own, since a repayment is reversed once."""

    collateral: dict[uuid.UUID, uuid.UUID]  # by customer
    loans: dict[uuid.UUID, uuid.UUID]  # by customer
    reversible: dict[tuple[str, str], uuid.UUID]  # by (acting role, target)
    # The pages' relationship work, by customer: the admin's follow-up, a complaint, a risk case
    # and its measure (each row leaves them as the next can use them).
    follow_ups: dict[uuid.UUID, uuid.UUID]
    complaints: dict[uuid.UUID, uuid.UUID]
    risk_cases: dict[uuid.UUID, uuid.UUID]
    risk_measures: dict[uuid.UUID, uuid.UUID]
    import_job: uuid.UUID  # uploaded by the admin: the admin's and all-scope roles' to see
    segment: uuid.UUID  # the manager's, shared with its team
    doomed_segment: uuid.UUID  # the manager's too, for deleteSegment alone


@pytest.fixture(scope="module")
async def api_book(world: World, lending: Lending, db, settings) -> ApiBook:
    admin = await principal_of(db, world.tenant, world.emails["admin"])
    reversible = {}
    async with tenant_session(db, world.tenant) as session:
        for role in ROLES:
            for target in TARGETS:
                loan_id = lending.loans[world.customer(role, target).id]
                repayment = await LoanService(session, admin).record_repayment(loan_id, {"amount": "30"})
                reversible[(role, target)] = repayment.id
        cipher = cipher_source(db, master_key_ring(settings), world.tenant)
        job = await ImportService(session, admin, cipher).upload("matrix.csv", "姓名\n矩阵导入\n".encode())
        manager = await principal_of(db, world.tenant, world.emails["manager"])
        segments = [
            await SegmentService(session, manager).save(
                {"name": name, "shared": True, "filter": {"field": "riskLevel", "op": "eq", "value": "low"}}
            )
            for name in ("matrix segment", "matrix segment to delete")
        ]
    return ApiBook(
        lending.collateral,
        lending.loans,
        reversible,
        lending.follow_ups,
        lending.complaints,
        lending.risk_cases,
        lending.risk_measures,
        job.id,
        segments[0].id,
        segments[1].id,
    )


@pytest.mark.parametrize(("path", "target"), _graphql_params())
async def test_graphql_operation_as_each_role(
    path: Path, target: str | None, world: World, api_book: ApiBook, client
):
    key = _case_key(path, target)
    expected = EXPECTED.get(key)
    if expected is None:
        pytest.fail(
            f"graphql/examples/{path.name} has no expectation: add a row {key!r} to EXPECTED in {__file__}"
        )
    query, variables = path.read_text(encoding="utf-8"), _example_variables(path)  # noqa: ASYNC240
    observed = {}
    for role in ROLES:
        customer = world.customer(role, target) if target else None
        response = await client.post(
            "/graphql",
            json={
                "query": query,
                "variables": _fill(variables, customer, api_book, role, target)
                if customer
                else _fill_untargeted(variables, api_book, _example_name(path)),
            },
            headers={"Authorization": f"Bearer {world.api_tokens[role]}"},
        )
        observed[role] = _classify(response, customer)
    expected_row = dict(zip(ROLES, expected, strict=True))
    assert observed == expected_row, _diff(key, expected_row, observed)


def test_every_example_has_expectations_and_every_row_an_example():
    keys = {_case_key(path, target) for path, target in _graphql_cases()}
    missing = sorted(keys - set(EXPECTED))
    assert not missing, f"example operations without a row in EXPECTED: {missing}"
    stale = sorted(set(EXPECTED) - keys)
    assert not stale, f"rows in EXPECTED for no example operation (removed, or renamed?): {stale}"


def test_every_query_and_mutation_has_an_example():
    """The examples are the operations this matrix runs: a new root field needs one."""
    schema = build_sdl_schema(SDL_PATH.read_text(encoding="utf-8"))
    roots = {
        f"{kind} {name}"
        for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type))
        if root is not None
        for name in root.fields
    }
    used = set()
    for path in EXAMPLE_FILES:
        for definition in parse(path.read_text(encoding="utf-8")).definitions:
            if isinstance(definition, OperationDefinitionNode):
                kind = definition.operation.value
                fields = [s for s in definition.selection_set.selections if isinstance(s, FieldNode)]
                used |= {f"{kind} {selection.name.value}" for selection in fields}
    missing = sorted(roots - used)
    assert not missing, f"fields of the schema no example in {EXAMPLES} uses: {missing}"


# --- pages: every route of the app ---

Form = Callable[[World, str, str | None], dict[str, Any]]  # (world, acting role, target)


def _search(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"search": "矩阵"}


def _new_customer(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"kind": "individual", "name": f"矩阵 new by {role}"}


def _edit_customer(w: World, role: str, target: str | None) -> dict[str, Any]:
    # The same kind and name, so the customer stays findable; no PII boxes (on an edit, an
    # empty one means "keep").
    name = w.customer(role, target or "own").name
    return {"kind": "individual", "name": name, "risk_level": "low", "status": "prospect"}


def _reveal(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"phone": "on", "purpose": PURPOSE}


def _login(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"email": w.emails[role], "password": PASSWORD}


def _invite(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"email": f"invited-by-{role}-{uuid.uuid4().hex[:6]}@example.com", "role": "viewer", "team": ""}


def _assign(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"role": "viewer", "team": str(w.team_id)}


def _disable(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"status": "disabled"}


def _new_team(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"name": f"team by {role} {uuid.uuid4().hex[:6]}"}


def _new_role(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {
        "name": f"made_by_{role}_{uuid.uuid4().hex[:6]}",
        "record_scope": "own",
        "permissions": "customers.read",
    }


def _matrix_row(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"record_scope": "own", "permissions": ["customers.read", "export"]}


def _new_token(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"name": f"token by {role}", "expires_at": ""}


def _new_collateral(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"kind": "vehicle", "description": f"by {role}", "appraised_value": "100000"}


def _appraisal(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"appraised_value": "2100000", "appraiser": role}


def _new_loan(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {
        "product": f"matrix loan by {role}",
        "amount": "50000",
        "annual_rate": "6",
        "term_months": "6",
        "method": "equal_installment",
        "start_date": date.today().isoformat(),
    }


def _repayment(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"amount": "10", "channel": "cash"}


def _reversal(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"reason": PURPOSE}


def _classify_loan(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"classification": "special_mention", "reason": PURPOSE}


def _flags(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"flags": "litigation"}


def _interaction(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"channel": "phone", "summary": PURPOSE}


def _follow_up(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"due_on": date.today().isoformat(), "channel": "visit"}


def _complaint(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"category": "service", "content": PURPOSE}


def _complaint_update(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"status": "in_progress"}


def _new_segment(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {
        "g0.c0.field": "riskLevel",
        "g0.c0.op": "eq",
        "g0.c0.value": "low",
        "name": f"matrix page {role}",
        "action": "save",
    }


def _new_view(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"name": f"matrix page {role}", "cols": ["name", "status"], "sort": "name", "direction": "asc"}


def _default_view(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"default": "on"}


def _risk_customer(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"customer": str(w.customer(role, target or "own").id)}


def _new_risk_case(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"customer_id": str(w.customer(role, target or "own").id), "description": PURPOSE}


def _work_risk_case(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"status": "in_progress", "outcome": "", "lessons": PURPOSE}


def _new_risk_measure(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"description": PURPOSE, "due_on": date.today().isoformat()}


def _risk_measure_status(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"status": "in_progress"}


def _warning_rules(w: World, role: str, target: str | None) -> dict[str, Any]:
    """The seeded rules, so saving them changes nothing another row depends on."""
    return {
        "days_past_due.threshold": "30",
        "days_past_due.enabled": "on",
        "classification_worsened.enabled": "on",
        "debt_to_income.threshold": "0.5",
        "debt_to_income.enabled": "on",
        "no_contact_with_overdue.threshold": "90",
        "no_contact_with_overdue.enabled": "on",
    }


def _general(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {
        "contact_interval_days": "30",
        "key_contact_interval_days": "14",
        "complaint_response_hours": "48",
        "default_locale": "zh_CN",
    }


def _language(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"code": "zh_CN", "next": "/"}


def _support_grant(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {"hours": "1", "reason": PURPOSE}


def _console_login(w: World, role: str, target: str | None) -> dict[str, Any]:
    """A tenant user's own e-mail and password: no operator account has them."""
    return {"email": w.emails[role], "password": PASSWORD}


def _rules(w: World, role: str, target: str | None) -> dict[str, Any]:
    return {
        "classification": [rule.classification for rule in DEFAULT_RULES],
        "min_days_past_due": [str(rule.min_days_past_due or "") for rule in DEFAULT_RULES],
        "flag": [rule.flag or "" for rule in DEFAULT_RULES],
    }


@dataclass(frozen=True)
class Lending:
    """The lending book the loan pages act on: each role's customer has collateral and a loan, and
    each (acting role, target) a repayment of its own to reverse, so rows run in any order."""

    collateral: dict[uuid.UUID, uuid.UUID]  # by customer
    loans: dict[uuid.UUID, uuid.UUID]  # by customer
    reversible: dict[tuple[str, str], uuid.UUID]  # by (acting role, target)
    follow_ups: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # by customer, the admin's
    complaints: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # by customer
    risk_cases: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # by customer
    risk_measures: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # by customer's case
    # The manager's segments, shared with its team: one the pages read, one the delete row removes.
    segments: dict[str, uuid.UUID] = field(default_factory=dict)
    # Saved list views by (acting role, target): "own" to make default, "doomed" to delete, and
    # "other", somebody else's (the admin's, or the viewer's for the admin).
    views: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def lending(world: World, db) -> Lending:
    admin = await principal_of(db, world.tenant, world.emails["admin"])
    collateral, loans, reversible = {}, {}, {}
    async with tenant_session(db, world.tenant) as session:
        for customer in world.customers.values():
            collateral[customer.id] = (
                await CollateralService(session, admin).create(
                    customer.id, {"kind": "residence", "appraised_value": "2000000"}
                )
            ).id
            terms = {
                "product": "matrix loan",
                "amount": "100000",
                "annual_rate": "5%",
                "term_months": "12",
                "method": "equal_installment",
                "start_date": (date.today() - timedelta(days=60)).isoformat(),
                "collateral_ids": [collateral[customer.id]],
            }
            loans[customer.id] = (await LoanService(session, admin).create_loan(customer.id, terms)).id
        for role in ROLES:
            for target in TARGETS:
                loan_id = loans[world.customer(role, target).id]
                repayment = await LoanService(session, admin).record_repayment(loan_id, {"amount": "20"})
                reversible[(role, target)] = repayment.id
        # Ticking a follow-up off twice changes nothing, and a complaint moves to in progress once,
        # so one of each per customer serves every row. The follow-ups are the admin's: anyone else
        # ticks them off only with customers.write.
        contacts, complaints = ContactService(session, admin), ComplaintService(session, admin)
        follow_ups = {
            c.id: (await contacts.plan_follow_up(c.id, {"due_on": date.today().isoformat()})).id
            for c in world.customers.values()
        }
        complaint_ids = {
            c.id: (await complaints.record(c.id, {"category": "fees", "content": PURPOSE})).id
            for c in world.customers.values()
        }
    book = Lending(collateral, loans, reversible, follow_ups=follow_ups, complaints=complaint_ids)
    async with tenant_session(db, world.tenant) as session:
        # A risk case with a measure per customer; the case rows keep it open, so any order works.
        cases = RiskCaseService(session, admin)
        for customer in world.customers.values():
            case = await cases.open_case(customer.id, {"description": PURPOSE})
            measure = await cases.add_measure(case.id, {"description": PURPOSE, "due_on": date.today()})
            book.risk_cases[customer.id], book.risk_measures[customer.id] = case.id, measure.id
        manager = await principal_of(db, world.tenant, world.emails["manager"])
        for name in ("shared", "doomed"):
            book.segments[name] = (
                await SegmentService(session, manager).save(
                    {"name": f"matrix {name}", "shared": True, "filter": {"and": []}}
                )
            ).id
        for role in ROLES:
            views = SavedViewService(session, await principal_of(db, world.tenant, world.emails[role]))
            for name in ("own", "doomed"):
                book.views[(role, name)] = (await views.create("customers", {"name": f"matrix {name}"})).id
        for role in ROLES:
            book.views[(role, "other")] = book.views[("viewer" if role == "admin" else "admin", "own")]
    return book


@dataclass(frozen=True)
class Page:
    method: str
    path: str  # the route's template, parameters without their types
    statuses: tuple[int, ...]  # in the order of ROLES
    target: str | None = None  # which customer, token or role the path names

    @property
    def key(self) -> str:
        route = f"{self.method} {self.path}"
        return route if self.target is None else f"{route} [{self.target}]"


# What each POST sends besides its CSRF token (nothing when not listed).
FORMS: dict[tuple[str, str], Form] = {
    ("POST", "/t/{slug}/login"): _login,
    ("POST", "/t/{slug}/customers"): _search,
    ("POST", "/t/{slug}/customers/new"): _new_customer,
    ("POST", "/t/{slug}/segments/new"): _new_segment,
    ("POST", "/t/{slug}/customers/views"): _new_view,
    ("POST", "/t/{slug}/customers/views/{view_id}/default"): _default_view,
    ("POST", "/t/{slug}/customers/{customer_id}/edit"): _edit_customer,
    ("POST", "/t/{slug}/customers/{customer_id}/reveal"): _reveal,
    ("POST", "/t/{slug}/settings/users"): _invite,
    ("POST", "/t/{slug}/settings/users/{user_id}/assign"): _assign,
    ("POST", "/t/{slug}/settings/users/{user_id}/status"): _disable,
    ("POST", "/t/{slug}/settings/teams"): _new_team,
    ("POST", "/t/{slug}/settings/roles"): _new_role,
    ("POST", "/t/{slug}/settings/roles/{role_id}"): _matrix_row,
    ("POST", "/t/{slug}/settings/tokens"): _new_token,
    ("POST", "/t/{slug}/customers/{customer_id}/collateral"): _new_collateral,
    ("POST", "/t/{slug}/collateral/{collateral_id}/appraisals"): _appraisal,
    ("POST", "/t/{slug}/customers/{customer_id}/loans"): _new_loan,
    ("POST", "/t/{slug}/customers/{customer_id}/loans/preview"): _new_loan,
    ("POST", "/t/{slug}/loans/{loan_id}/repayments"): _repayment,
    ("POST", "/t/{slug}/loans/{loan_id}/repayments/{repayment_id}/reverse"): _reversal,
    ("POST", "/t/{slug}/loans/{loan_id}/classify"): _classify_loan,
    ("POST", "/t/{slug}/loans/{loan_id}/flags"): _flags,
    ("POST", "/t/{slug}/settings/classification"): _rules,
    ("POST", "/t/{slug}/settings/general"): _general,
    ("POST", "/t/{slug}/language"): _language,
    ("POST", "/t/{slug}/risk/cases"): _new_risk_case,
    ("POST", "/t/{slug}/risk/cases/{case_id}"): _work_risk_case,
    ("POST", "/t/{slug}/risk/cases/{case_id}/measures"): _new_risk_measure,
    ("POST", "/t/{slug}/risk/measures/{measure_id}"): _risk_measure_status,
    ("POST", "/t/{slug}/settings/warnings"): _warning_rules,
    ("POST", "/t/{slug}/customers/{customer_id}/interactions"): _interaction,
    ("POST", "/t/{slug}/customers/{customer_id}/follow-ups"): _follow_up,
    ("POST", "/t/{slug}/customers/{customer_id}/complaints"): _complaint,
    ("POST", "/t/{slug}/complaints/{complaint_id}"): _complaint_update,
    ("POST", "/t/{slug}/settings/support"): _support_grant,
    ("POST", "/platform/login"): _console_login,
}

# What each GET sends as its query string (nothing when not listed).
QUERIES: dict[tuple[str, str], Form] = {
    ("GET", "/t/{slug}/risk/cases/new"): _risk_customer,
}

# Path parameters: slug, the target customer, the acting role's own doomed user, the custom role
# (or with target "doomed", the acting role's own doomed role), the role's own or another's token.
# Destructive rows act on objects of the acting role alone, so rows run in any order.
# fmt: off
# Columns: admin, manager, loan_officer, risk_officer, auditor, viewer (ROLES).
#                                                                  adm  mgr  loan risk aud  view
PAGES: tuple[Page, ...] = (
    Page("GET",  "/",                                             (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/healthz",                                      (200, 200, 200, 200, 200, 200)),
    # Operators' endpoints: open in the test environment (production: a token, or not found).
    Page("GET",  "/readyz",                                       (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/metrics",                                      (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/lang/{code}",                                  (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/t/{slug}",                                     (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/t/{slug}/login",                               (200, 200, 200, 200, 200, 200)),
    Page("POST", "/t/{slug}/login",                               (303, 303, 303, 303, 303, 303)),
    Page("POST", "/t/{slug}/logout",                              (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/t/{slug}/customers",                           (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/loans/calculator",                    (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/dashboard",                           (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/dashboard.json",                      (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/developers",                          (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/developers/schema.graphql",           (200, 200, 200, 200, 200, 200)),
    Page("POST", "/t/{slug}/customers",                           (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/t/{slug}/customers/new",                       (200, 200, 200, 403, 403, 403)),
    # Saved list views: everyone who reads customers keeps views of their own, and nobody
    # reaches another user's (not found, as for a missing one).
    Page("GET",  "/t/{slug}/customers/views",                     (200, 200, 200, 200, 200, 200)),
    Page("POST", "/t/{slug}/customers/views",                     (303, 303, 303, 303, 303, 303)),
    Page("POST", "/t/{slug}/customers/views/{view_id}/default",   (303, 303, 303, 303, 303, 303), "own"),
    Page("POST", "/t/{slug}/customers/views/{view_id}/default",   (404, 404, 404, 404, 404, 404), "other"),
    Page("POST", "/t/{slug}/customers/views/{view_id}/delete",    (303, 303, 303, 303, 303, 303), "doomed"),
    Page("POST", "/t/{slug}/customers/views/{view_id}/delete",    (404, 404, 404, 404, 404, 404), "other"),
    Page("POST", "/t/{slug}/customers/new",                       (303, 303, 303, 403, 403, 403)),
    Page("GET",  "/t/{slug}/customers/{customer_id}",             (200, 200, 200, 200, 200, 200), "own"),
    Page("GET",  "/t/{slug}/customers/{customer_id}",             (200, 200, 200, 200, 200, 200), "team"),
    Page("GET",  "/t/{slug}/customers/{customer_id}",             (200, 404, 404, 200, 200, 200), "other"),
    Page("GET",  "/t/{slug}/customers/{customer_id}/edit",        (200, 200, 200, 403, 403, 403), "own"),
    Page("GET",  "/t/{slug}/customers/{customer_id}/edit",        (200, 200, 200, 403, 403, 403), "team"),
    Page("GET",  "/t/{slug}/customers/{customer_id}/edit",        (200, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/customers/{customer_id}/edit",        (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/edit",        (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/edit",        (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/customers/{customer_id}/reveal",      (200, 200, 403, 200, 403, 403), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/reveal",      (200, 200, 403, 200, 403, 403), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/reveal",      (200, 404, 403, 200, 403, 403), "other"),
    Page("GET",  "/t/{slug}/settings",                            (303, 303, 403, 303, 303, 403)),
    Page("GET",  "/t/{slug}/settings/users",                      (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/users",                      (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/users/{user_id}/assign",     (303, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/users/{user_id}/status",     (303, 403, 403, 403, 403, 403)),
    Page("GET",  "/t/{slug}/settings/teams",                      (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/teams",                      (303, 403, 403, 403, 403, 403)),
    Page("GET",  "/t/{slug}/settings/roles",                      (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/roles",                      (303, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/roles/{role_id}",            (303, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/roles/{role_id}/delete",     (303, 403, 403, 403, 403, 403), "doomed"),
    Page("GET",  "/t/{slug}/settings/tokens",                     (200, 200, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/tokens",                     (200, 200, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/tokens/{token_id}/revoke",   (303, 303, 403, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/settings/tokens/{token_id}/revoke",   (303, 404, 403, 403, 403, 403), "other"),
    Page("GET",  "/t/{slug}/settings/audit",                      (200, 403, 403, 403, 200, 403)),
    Page("GET",  "/t/{slug}/settings/pii-access",                 (200, 403, 403, 403, 200, 403)),
    # Imports need `import` (and customers.write); a job of nobody's id is not found.
    Page("GET",  "/t/{slug}/imports",                             (200, 200, 200, 403, 403, 403)),
    Page("POST", "/t/{slug}/imports",                             (422, 422, 422, 403, 403, 403)),
    Page("GET",  "/t/{slug}/imports/{job_id}",                    (404, 404, 404, 403, 403, 403)),
    Page("GET",  "/t/{slug}/imports/{job_id}/progress",           (404, 404, 404, 403, 403, 403)),
    Page("GET",  "/t/{slug}/imports/{job_id}/report.xlsx",        (404, 404, 404, 403, 403, 403)),
    Page("POST", "/t/{slug}/imports/{job_id}/mapping",            (404, 404, 404, 403, 403, 403)),
    Page("POST", "/t/{slug}/imports/{job_id}/commit",             (404, 404, 404, 403, 403, 403)),
    Page("POST", "/t/{slug}/imports/{job_id}/resume",             (404, 404, 404, 403, 403, 403)),
    Page("POST", "/t/{slug}/imports/{job_id}/cancel",             (404, 404, 404, 403, 403, 403)),
    Page("GET",  "/t/{slug}/customers/export.xlsx",               (200, 200, 403, 403, 403, 403)),
    Page("GET",  "/t/{slug}/loans/export.xlsx",                   (200, 200, 403, 403, 403, 403)),
    Page("GET",  "/t/{slug}/settings/general",                    (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/general",                    (303, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/language",                            (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/t/{slug}/settings/classification",             (200, 403, 403, 200, 403, 403)),
    Page("POST", "/t/{slug}/settings/classification",             (303, 403, 403, 303, 403, 403)),
    # Retention needs admin.retention. Nothing here changes the shared tenant: the policies post
    # is empty (refused, 422), the dry run rolls back, "run" without confirm=yes only asks, and
    # the legal-hold post without hold=on releases a hold nobody set.
    Page("GET",  "/t/{slug}/settings/retention",                  (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/retention",                  (422, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/retention/dry-run",          (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/retention/run",              (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/customers/{customer_id}/legal-hold",  (303, 403, 403, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/legal-hold",  (303, 403, 403, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/legal-hold",  (303, 403, 403, 403, 403, 403), "other"),
    # Erasure requests: an empty request is refused (422); an erasure of nobody's id is not found.
    Page("GET",  "/t/{slug}/settings/retention/erasures",         (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/retention/erasures",         (422, 403, 403, 403, 403, 403)),
    Page("GET",  "/t/{slug}/settings/retention/erasures/{erasure_id}", (404, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/retention/erasures/{erasure_id}/review",
                                                                  (404, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/retention/erasures/{erasure_id}/execute",
                                                                  (404, 403, 403, 403, 403, 403)),
    # The access export needs admin.retention and pii.reveal; an empty form is refused (422).
    Page("GET",  "/t/{slug}/settings/retention/access",           (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/retention/access",           (422, 403, 403, 403, 403, 403)),
    # The lending book: reading follows the customer's record scope; writing needs loans.write,
    # classifying loans.classify (checked before the scope, so 403 even out of scope).
    Page("GET",  "/t/{slug}/loans",                               (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/loans/{loan_id}",                     (200, 200, 200, 200, 200, 200), "own"),
    Page("GET",  "/t/{slug}/loans/{loan_id}",                     (200, 200, 200, 200, 200, 200), "team"),
    Page("GET",  "/t/{slug}/loans/{loan_id}",                     (200, 404, 404, 200, 200, 200), "other"),
    Page("POST", "/t/{slug}/customers/{customer_id}/collateral",  (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/collateral",  (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/collateral",  (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/collateral/{collateral_id}/appraisals", (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/collateral/{collateral_id}/appraisals", (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/collateral/{collateral_id}/appraisals", (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/customers/{customer_id}/loans",       (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/loans",       (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/loans",       (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/customers/{customer_id}/loans/preview", (200, 200, 200, 200, 200, 200), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/loans/preview", (200, 200, 200, 200, 200, 200), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/loans/preview", (200, 404, 404, 200, 200, 200), "other"),
    Page("POST", "/t/{slug}/loans/{loan_id}/repayments",          (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/loans/{loan_id}/repayments",          (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/loans/{loan_id}/repayments",          (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/loans/{loan_id}/repayments/{repayment_id}/reverse",
                                                                  (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/loans/{loan_id}/repayments/{repayment_id}/reverse",
                                                                  (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/loans/{loan_id}/repayments/{repayment_id}/reverse",
                                                                  (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/loans/{loan_id}/classify",            (303, 403, 403, 303, 403, 403), "own"),
    Page("POST", "/t/{slug}/loans/{loan_id}/classify",            (303, 403, 403, 303, 403, 403), "team"),
    Page("POST", "/t/{slug}/loans/{loan_id}/classify",            (303, 403, 403, 303, 403, 403), "other"),
    Page("POST", "/t/{slug}/loans/{loan_id}/flags",               (303, 403, 403, 303, 403, 403), "own"),
    Page("POST", "/t/{slug}/loans/{loan_id}/flags",               (303, 403, 403, 303, 403, 403), "team"),
    Page("POST", "/t/{slug}/loans/{loan_id}/flags",               (303, 403, 403, 303, 403, 403), "other"),
    # Working the relationship: reading follows the customer's record scope; logging, planning,
    # recording and working complaints need customers.write (checked before the scope). A
    # follow-up is ticked off by its assignee (the admin here) or with customers.write.
    Page("GET",  "/t/{slug}/my-day",                              (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/complaints",                          (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/complaints/{complaint_id}",           (200, 200, 200, 200, 200, 200), "own"),
    Page("GET",  "/t/{slug}/complaints/{complaint_id}",           (200, 200, 200, 200, 200, 200), "team"),
    Page("GET",  "/t/{slug}/complaints/{complaint_id}",           (200, 404, 404, 200, 200, 200), "other"),
    Page("POST", "/t/{slug}/complaints/{complaint_id}",           (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/complaints/{complaint_id}",           (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/complaints/{complaint_id}",           (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/customers/{customer_id}/interactions", (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/interactions", (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/interactions", (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/customers/{customer_id}/follow-ups",  (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/follow-ups",  (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/follow-ups",  (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/customers/{customer_id}/complaints",  (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/customers/{customer_id}/complaints",  (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/customers/{customer_id}/complaints",  (303, 404, 404, 403, 403, 403), "other"),
    Page("POST", "/t/{slug}/follow-ups/{follow_up_id}/done",      (303, 303, 303, 403, 403, 403), "own"),
    Page("POST", "/t/{slug}/follow-ups/{follow_up_id}/done",      (303, 303, 303, 403, 403, 403), "team"),
    Page("POST", "/t/{slug}/follow-ups/{follow_up_id}/done",      (303, 404, 404, 403, 403, 403), "other"),
    # Risk: reading follows the customer's record scope; opening and working cases, running the
    # early-warning rules and saving them need risk.manage (checked before the scope).
    Page("GET",  "/t/{slug}/risk",                                (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/risk/warnings",                       (200, 200, 200, 200, 200, 200)),
    Page("POST", "/t/{slug}/risk/warnings/evaluate",              (303, 403, 403, 303, 403, 403)),
    Page("GET",  "/t/{slug}/settings/warnings",                   (200, 200, 200, 200, 200, 200)),
    Page("POST", "/t/{slug}/settings/warnings",                   (303, 403, 403, 303, 403, 403)),
    Page("GET",  "/t/{slug}/risk/cases/new",                      (200, 403, 403, 200, 403, 403), "own"),
    Page("GET",  "/t/{slug}/risk/cases/new",                      (200, 403, 403, 200, 403, 403), "team"),
    Page("GET",  "/t/{slug}/risk/cases/new",                      (200, 403, 403, 200, 403, 403), "other"),
    Page("POST", "/t/{slug}/risk/cases",                          (303, 403, 403, 303, 403, 403), "own"),
    Page("POST", "/t/{slug}/risk/cases",                          (303, 403, 403, 303, 403, 403), "team"),
    Page("POST", "/t/{slug}/risk/cases",                          (303, 403, 403, 303, 403, 403), "other"),
    Page("GET",  "/t/{slug}/risk/cases/{case_id}",                (200, 200, 200, 200, 200, 200), "own"),
    Page("GET",  "/t/{slug}/risk/cases/{case_id}",                (200, 200, 200, 200, 200, 200), "team"),
    Page("GET",  "/t/{slug}/risk/cases/{case_id}",                (200, 404, 404, 200, 200, 200), "other"),
    Page("POST", "/t/{slug}/risk/cases/{case_id}",                (303, 403, 403, 303, 403, 403), "own"),
    Page("POST", "/t/{slug}/risk/cases/{case_id}",                (303, 403, 403, 303, 403, 403), "team"),
    Page("POST", "/t/{slug}/risk/cases/{case_id}",                (303, 403, 403, 303, 403, 403), "other"),
    Page("POST", "/t/{slug}/risk/cases/{case_id}/measures",       (303, 403, 403, 303, 403, 403), "own"),
    Page("POST", "/t/{slug}/risk/cases/{case_id}/measures",       (303, 403, 403, 303, 403, 403), "team"),
    Page("POST", "/t/{slug}/risk/cases/{case_id}/measures",       (303, 403, 403, 303, 403, 403), "other"),
    Page("POST", "/t/{slug}/risk/measures/{measure_id}",          (303, 403, 403, 303, 403, 403), "own"),
    Page("POST", "/t/{slug}/risk/measures/{measure_id}",          (303, 403, 403, 303, 403, 403), "team"),
    Page("POST", "/t/{slug}/risk/measures/{measure_id}",          (303, 403, 403, 303, 403, 403), "other"),
    # Segments: previewing needs customers.read, saving segments.manage, exporting export. The
    # segment is the manager's, shared with its team (the loan officer): for everyone else,
    # the admin included, it is not found.
    Page("GET",  "/t/{slug}/segments",                            (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/segments/new",                        (200, 200, 200, 200, 200, 200)),
    Page("POST", "/t/{slug}/segments/new",                        (303, 303, 403, 303, 403, 403)),
    Page("POST", "/t/{slug}/segments/preview",                    (200, 200, 200, 200, 200, 200)),
    Page("GET",  "/t/{slug}/segments/{segment_id}",               (404, 200, 200, 404, 404, 404)),
    Page("POST", "/t/{slug}/segments/{segment_id}",               (404, 200, 200, 404, 404, 404)),
    Page("GET",  "/t/{slug}/segments/{segment_id}/breakdown.json", (404, 200, 200, 404, 404, 404)),
    Page("GET",  "/t/{slug}/segments/{segment_id}/export.xlsx",   (404, 200, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/segments/{segment_id}/delete",        (404, 303, 403, 404, 403, 403), "doomed"),
    # Support access for platform operators: granted and revoked by user administrators.
    Page("GET",  "/t/{slug}/settings/support",                    (200, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/support",                    (303, 403, 403, 403, 403, 403)),
    Page("POST", "/t/{slug}/settings/support/revoke",             (303, 403, 403, 403, 403, 403)),
    # The platform console: a tenant session never opens it. Its sign-in page answers everyone;
    # a tenant user's e-mail and password are no operator's (401); everything else sends the
    # visitor to the console's sign-in (303 to /platform/login), whatever their tenant role.
    Page("GET",  "/platform/login",                               (200, 200, 200, 200, 200, 200)),
    Page("POST", "/platform/login",                               (401, 401, 401, 401, 401, 401)),
    Page("GET",  "/platform/login/code",                          (303, 303, 303, 303, 303, 303)),
    Page("POST", "/platform/login/code",                          (303, 303, 303, 303, 303, 303)),
    Page("POST", "/platform/logout",                              (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/platform",                                     (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/platform/events",                              (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/platform/tenants/new",                         (303, 303, 303, 303, 303, 303)),
    Page("POST", "/platform/tenants/new",                         (303, 303, 303, 303, 303, 303)),
    Page("GET",  "/platform/tenants/{slug}",                      (303, 303, 303, 303, 303, 303)),
    Page("POST", "/platform/tenants/{slug}/suspend",              (303, 303, 303, 303, 303, 303)),
    Page("POST", "/platform/tenants/{slug}/resume",               (303, 303, 303, 303, 303, 303)),
    Page("POST", "/platform/tenants/{slug}/delete",               (303, 303, 303, 303, 303, 303)),
    Page("POST", "/platform/tenants/{slug}/support",              (303, 303, 303, 303, 303, 303)),
    Page("POST", "/platform/tenants/{slug}/quotas",               (303, 303, 303, 303, 303, 303)),
    # Litestar's default OpenAPI documents and their viewers: nothing of ours is meant to be there.
)
# fmt: on

# Not pages of ours: files, and the GraphQL endpoint (its operations are EXPECTED's rows).
UNLISTED_PREFIXES = ("/static/", "/graphql")
# Litestar answers OPTIONS on every path itself, before any handler of ours runs.
UNLISTED_METHODS = {"OPTIONS"}


def _template(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _app_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue  # the GraphQL websocket route: no subscriptions are served
        path = _template(route.path)
        if path.startswith(UNLISTED_PREFIXES):
            continue
        routes |= {(method, path) for method in route.methods - UNLISTED_METHODS}
    return routes


def test_every_route_has_an_expectation_and_every_row_a_route(app):
    listed = {(page.method, page.path) for page in PAGES}
    routes = _app_routes(app)
    missing = [f"route {method} {path} has no expectation" for method, path in sorted(routes - listed)]
    assert not missing, "\n".join([*missing, f"add a row to PAGES in {__file__}"])
    stale = sorted(listed - routes)
    assert not stale, f"rows in PAGES for routes the app does not have (removed, or renamed?): {stale}"
    keys = [page.key for page in PAGES]
    assert len(keys) == len(set(keys)), "two rows in PAGES for the same route and target"
    assert set(FORMS) <= routes, f"FORMS for routes the app does not have: {sorted(set(FORMS) - routes)}"


def test_every_known_bug_names_a_row():
    rows = {_case_key(path, target) for path, target in _graphql_cases()} | {page.key for page in PAGES}
    assert not set(KNOWN_BUGS) - rows, f"KNOWN_BUGS for no row: {sorted(set(KNOWN_BUGS) - rows)}"


def _path(page: Page, world: World, role: str, lending: Lending) -> str:
    values: dict[str, str] = {"slug": world.slug, "code": "en", "path": "nonsense"}
    names = set(re.findall(r"\{(\w+)\}", page.path))
    if "customer_id" in names:
        values["customer_id"] = str(world.customer(role, page.target or "own").id)
    if names & {"loan_id", "collateral_id", "repayment_id"}:
        customer_id = world.customer(role, page.target or "own").id
        values["loan_id"] = str(lending.loans[customer_id])
        values["collateral_id"] = str(lending.collateral[customer_id])
        values["repayment_id"] = str(lending.reversible[(role, page.target or "own")])
    if names & {"case_id", "measure_id"}:
        customer_id = world.customer(role, page.target or "own").id
        values["case_id"] = str(lending.risk_cases[customer_id])
        values["measure_id"] = str(lending.risk_measures[customer_id])
    if "user_id" in names:
        values["user_id"] = str(world.doomed_users[role])
    if "role_id" in names:
        values["role_id"] = str(world.doomed_roles[role] if page.target == "doomed" else world.custom_role_id)
    if "job_id" in names:
        values["job_id"] = str(uuid.uuid4())  # nobody's import job
    if "erasure_id" in names:
        values["erasure_id"] = str(uuid.uuid4())  # nobody's erasure request
    if names & {"follow_up_id", "complaint_id"}:
        customer_id = world.customer(role, page.target or "own").id
        values["follow_up_id"] = str(lending.follow_ups[customer_id])
        values["complaint_id"] = str(lending.complaints[customer_id])
    if "view_id" in names:
        values["view_id"] = str(lending.views[(role, page.target or "own")])
    if "segment_id" in names:
        values["segment_id"] = str(lending.segments[page.target or "shared"])
    if "token_id" in names:
        tokens = world.own_tokens if page.target == "own" else world.others_tokens
        values["token_id"] = str(tokens[role])
    return page.path.format(**values)


async def _call(page: Page, world: World, role: str, lending: Lending) -> int | str:
    client = world.clients[role]
    path = _path(page, world, role, lending)
    if page.method == "GET":
        query = QUERIES.get((page.method, page.path))
        params = query(world, role, page.target) if query else None
        response = await client.get(path, params=params, follow_redirects=False)
    else:
        fill = FORMS.get((page.method, page.path))
        form = fill(world, role, page.target) if fill else {}
        data = {"_csrf_token": client.cookies["csrftoken"], **form}
        response = await client.post(path, data=data, follow_redirects=False)
    if page.path.endswith("/logout"):
        # Rows run in any order: a role that signed out is signed in again for the next.
        assert (await web_sign_in(client, world.slug, world.emails[role])).status_code == 303
    elif response.headers.get("location", "").startswith(f"/t/{world.slug}/login"):
        return "signed out"  # a lost session, not the route's answer: never a match
    return response.status_code


def _page_params() -> list[Any]:
    return [pytest.param(page, id=page.key, marks=_known_bug(page.key)) for page in PAGES]


@pytest.mark.parametrize("page", _page_params())
async def test_page_as_each_role(page: Page, world: World, lending: Lending):
    observed = {role: await _call(page, world, role, lending) for role in ROLES}
    expected = dict(zip(ROLES, page.statuses, strict=True))
    assert observed == expected, _diff(page.key, expected, observed)
