"""Password hashing with argon2id, off the event loop."""

from __future__ import annotations

import os
import secrets
import threading

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; a cap keeps a flood of huge bodies cheap

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (64 MiB each)
# At most one hash per core at a time: a flood of sign-ins waits here (in worker threads,
# holding no memory or connection) instead of starving every other request. A thread
# semaphore, not an anyio limiter, so it works whichever event loop calls it.
_hashing = threading.BoundedSemaphore(os.cpu_count() or 2)
# Verified against when the account does not exist, so both paths cost the same.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    return None


async def hash_password(password: str) -> str:
    def compute() -> str:
        with _hashing:
            return _hasher.hash(password)

    return await anyio.to_thread.run_sync(compute)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            with _hashing:
                verified = _hasher.verify(password_hash or _DUMMY_HASH, password)
            return verified and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(check)
