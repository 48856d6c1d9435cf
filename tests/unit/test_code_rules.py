"""Rules the code must keep, checked on the source (like a lint that names the helper to use)."""

from __future__ import annotations

import re
from pathlib import Path

from tenantcrm.settings import REPO_ROOT

SRC = REPO_ROOT / "src" / "tenantcrm"


def sources() -> dict[str, str]:
    return {str(p.relative_to(SRC)): p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}


def offenders(pattern: str, allowed: set[str], flags: int = re.IGNORECASE) -> list[str]:
    regex = re.compile(pattern, flags)
    return sorted(
        name
        for name, text in sources().items()
        if regex.search(text) and name not in allowed and name.split("/")[0] not in allowed
    )


def test_only_tenancy_sets_role_or_search_path() -> None:
    # Tenant scope comes from tenancy.session.tenant_session alone; DDL paths live beside it.
    allowed = {"tenancy"}
    assert offenders(r"set\s+(local\s+)?role|set_config\(\s*'role'|search_path", allowed) == []


def test_queries_live_in_services() -> None:
    # Routes and resolvers parse, call one service and render: no select() of their own.
    allowed = {
        *(name for name in sources() if name.endswith("service.py")),
        "auth/throttle.py",
        "tenancy/registry.py",
        "tenancy/provisioning.py",
        "tenancy/quotas.py",  # the quota service: counts users and customers
        "demo.py",
        "segments/filter.py",  # compiles filter trees to SQL for SegmentService (subqueries only)
        "customers/json_read.py",  # the JSON subqueries of CustomerService.list_customers_json
        "loans/json_read.py",
        "tenancy/session.py",  # tenant_session_by_id: the registry row read by the scoping statement
    }
    assert offenders(r"\bselect\(", allowed) == []


def test_every_module_has_a_docstring() -> None:
    missing = [name for name, text in sources().items() if not text.lstrip().startswith('"""')]
    assert missing == []


def test_no_float_for_money() -> None:
    # SQLAlchemy Float columns or float annotations; refusing a float (isinstance) is fine.
    assert offenders(r"\bFloat\b|: float\b|-> float\b", set(), flags=0) == []


def test_rules_would_catch_an_offender(tmp_path: Path) -> None:
    # The patterns above must match what they forbid, or the tests could never fail.
    assert re.search(r"set\s+(local\s+)?role", "SET LOCAL ROLE t_1", re.IGNORECASE)
    assert re.search(r"\bselect\(", "stmt = select(Customer)")
