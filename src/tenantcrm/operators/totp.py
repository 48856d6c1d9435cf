"""TOTP (RFC 6238) for operators with pyotp: secrets wrapped by the master key ring, steps matched."""

from __future__ import annotations

import hmac
import time

import pyotp

from tenantcrm.pii.keys import KeyProvider

ISSUER = "tenantcrm"
STEP_SECONDS = 30
DIGITS = 6
# Codes of the previous and the next step are taken too: phones' clocks drift.
DRIFT_STEPS = 1
# The ring wraps per "tenant id and version"; an operator's secret gets a context of its own, which
# no tenant id (16 hex digits) can equal, so a wrapped secret never unwraps as a tenant key.
_VERSION = 1


def _context(operator_id: str) -> str:
    return f"operator-totp|{operator_id}"


def new_secret() -> str:
    """A random base32 secret of 160 bits, what authenticator apps expect."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads (as a QR code or typed in)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=ISSUER
    )


def wrap_secret(ring: KeyProvider, operator_id: str, secret: str) -> tuple[bytes, str]:
    """The secret sealed by the ring's current master key, and that key's id."""
    return ring.wrap(secret.encode("ascii"), _context(operator_id), _VERSION), ring.key_id


def unwrap_secret(ring: KeyProvider, operator_id: str, wrapped: bytes, master_key_id: str) -> str:
    return ring.unwrap(bytes(wrapped), master_key_id, _context(operator_id), _VERSION).decode("ascii")


def current_step(now: int | None = None) -> int:
    return (int(time.time()) if now is None else now) // STEP_SECONDS


def matching_step(secret: str, code: str, now: int | None = None) -> int | None:
    """The time step whose code `code` is (within the allowed drift), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    step = current_step(now)
    # Every candidate is compared (constant time each), newest first.
    found = None
    for candidate in range(step + DRIFT_STEPS, step - DRIFT_STEPS - 1, -1):
        if hmac.compare_digest(totp.generate_otp(candidate), code) and found is None:
            found = candidate
    return found
