"""Audit log: append-only, hash-chained events per tenant; `tenantcrm audit verify` checks a chain."""
