"""Opaque URL values: list state such as a search term is sealed so no PII reaches a URL."""

from __future__ import annotations

import base64
import json
import os
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@cache
def _cipher(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tenantcrm url state").derive(
        secret_key.encode()
    )
    return AESGCM(key)


def seal(secret_key: str, audience: str, value: dict[str, Any]) -> str:
    """Encrypt `value` for one audience (tenant and user): useless to anyone else."""
    nonce = os.urandom(12)
    body = _cipher(secret_key).encrypt(nonce, json.dumps(value).encode(), audience.encode())
    return base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")


def unseal(secret_key: str, audience: str, token: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = _cipher(secret_key).decrypt(raw[:12], raw[12:], audience.encode())
        value = json.loads(data)
    except (ValueError, InvalidTag):
        return None
    return value if isinstance(value, dict) else None
