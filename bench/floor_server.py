"""The floor of the GraphQL list bench: raw ASGI answering with ONE hand-written SQL over asyncpg.

    FLOOR_DATABASE_URL=postgresql://... FLOOR_SCHEMA=t_... python -m uvicorn floor_server:app

POST /graphql answers, whatever the body, the JSON our `customers(first: 50)` query answers
(bench/graphql_list.py's QUERY: totalCount, pageInfo, customers with their loans and each loan's
next due instalment), built by PostgreSQL in one statement. GET /customer/<id> answers one
customer with its loans and next instalments, live warnings and open risk cases, the customer
page bench's reference. It connects as the schema's owner with search_path set per connection:
no authentication, no tenant role switch, no transaction; the least any server can do.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import asyncpg

PAGE = 50

NEXT_INSTALLMENT = """
    (SELECT json_build_object(
                'number', i.number, 'dueDate', i.due_date, 'payment', (i.principal + i.interest)::text,
                'outstanding', (i.principal + i.interest - i.principal_paid - i.interest_paid)::text)
     FROM installments i
     WHERE i.loan_id = l.id AND i.due_date >= current_date
       AND i.principal + i.interest > i.principal_paid + i.interest_paid
     ORDER BY i.number LIMIT 1)
"""
LOANS = f"""
    (SELECT coalesce(json_agg(json_build_object(
                'id', l.id, 'product', l.product, 'amount', l.amount::text, 'status', upper(l.status),
                'classification', upper(l.classification), 'nextInstallment', {NEXT_INSTALLMENT}
            ) ORDER BY l.start_date, l.created_at, l.id), '[]')
     FROM loans l WHERE l.customer_id = c.id)
"""
NODE = f"""
    json_build_object(
        'id', c.id, 'name', c.name, 'kind', upper(c.kind), 'regionCode', c.region_code,
        'riskLevel', upper(c.risk_level), 'status', upper(c.status), 'monthlyIncome', c.monthly_income::text,
        'creditGrade', c.credit_grade, 'nationalId', c.national_id_masked, 'phone', c.phone_masked,
        'createdAt', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'loans', {LOANS})
"""
# The cursor is CustomerService's: url-safe base64 of ["created_at","<id>"], padding stripped.
LIST = f"""
    WITH page AS (
        SELECT * FROM customers ORDER BY created_at DESC, id DESC LIMIT {PAGE + 1}
    ), shown AS (
        SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT {PAGE}
    )
    SELECT json_build_object('data', json_build_object('customers', json_build_object(
        'totalCount', (SELECT count(*) FROM customers),
        'pageInfo', json_build_object(
            'hasNextPage', (SELECT count(*) FROM page) > {PAGE},
            'endCursor', (SELECT rtrim(translate(encode(convert_to('["created_at","' || id || '"]', 'UTF8'),
                                                        'base64'), '+/', '-_'), '=')
                          FROM shown ORDER BY created_at, id LIMIT 1)),
        'edges', (SELECT coalesce(json_agg(json_build_object('node', {NODE})
                                           ORDER BY c.created_at DESC, c.id DESC), '[]')
                  FROM shown c)
    )))::text
"""
CUSTOMER = f"""
    SELECT json_build_object(
        'customer', {NODE},
        'warnings', (SELECT coalesce(json_agg(json_build_object('kind', w.kind, 'details', w.details)), '[]')
                     FROM warnings w WHERE w.customer_id = c.id AND w.cleared_at IS NULL),
        'riskCases', (SELECT coalesce(json_agg(json_build_object('id', r.id, 'status', r.status,
                                                                 'description', r.description)), '[]')
                      FROM risk_cases r WHERE r.customer_id = c.id AND r.status IN ('open', 'in_progress'))
    )::text
    FROM customers c WHERE c.id = $1
"""

_pool: asyncpg.Pool | None = None


async def _send(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(
                    os.environ["FLOOR_DATABASE_URL"],
                    min_size=10,
                    max_size=10,
                    server_settings={"search_path": os.environ["FLOOR_SCHEMA"], "timezone": "UTC"},
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert _pool is not None
    path = scope["path"]
    if scope["method"] == "POST" and path == "/graphql":
        while (await receive()).get("more_body"):
            pass
        await _send(send, 200, (await _pool.fetchval(LIST)).encode())
    elif path.startswith("/customer/"):
        try:
            customer_id = uuid.UUID(path.removeprefix("/customer/"))
        except ValueError:
            await _send(send, 404, b"{}")
            return
        found = await _pool.fetchval(CUSTOMER, customer_id)
        await _send(send, 200 if found else 404, (found or "{}").encode())
    else:
        await _send(send, 200, b'{"status":"ok"}')
