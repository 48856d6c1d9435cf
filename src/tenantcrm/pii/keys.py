"""Master keys (environment, key file or a generated development key) that wrap tenant keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenantcrm.settings import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
DEV_KEY_FILE = "master.key"

log = logging.getLogger(__name__)


class MasterKeyError(ValueError):
    """A master key that is missing, malformed or cannot unwrap; the message names no key."""


class KeyProvider(Protocol):
    """What wraps tenant keys: the env/file ring today, a KMS client later."""

    @property
    def key_id(self) -> str:
        """Id of the key that `wrap` uses now."""
        ...

    def wrap(self, plaintext_key: bytes, tenant_id: str, version: int) -> bytes: ...

    def unwrap(self, blob: bytes, master_key_id: str, tenant_id: str, version: int) -> bytes: ...


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def _associated_data(tenant_id: str, version: int) -> bytes:
    return f"tenantcrm key|{tenant_id}|{version}".encode()


@dataclass(frozen=True)
class MasterKey:
    key: bytes = field(repr=False)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise MasterKeyError(f"a master key must be {KEY_BYTES} bytes")
        object.__setattr__(self, "id", key_id_of(self.key))

    @classmethod
    def from_base64(cls, value: str, source: str) -> MasterKey:
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != KEY_BYTES:
            raise MasterKeyError(
                f"{source} must be base64 of {KEY_BYTES} random bytes (e.g. `openssl rand -base64 32`)"
            )
        return cls(raw)


@dataclass(frozen=True)
class MasterKeyRing:
    """The current master key, which wraps, and older ones that may still unwrap."""

    current: MasterKey
    previous: tuple[MasterKey, ...] = ()

    @property
    def key_id(self) -> str:
        return self.current.id

    @property
    def key_ids(self) -> tuple[str, ...]:
        return (self.current.id, *(k.id for k in self.previous))

    def wrap(self, plaintext_key: bytes, tenant_id: str, version: int) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current.key).encrypt(nonce, plaintext_key, _associated_data(tenant_id, version))
        return nonce + sealed

    def unwrap(self, blob: bytes, master_key_id: str, tenant_id: str, version: int) -> bytes:
        key = next((k for k in (self.current, *self.previous) if k.id == master_key_id), None)
        if key is None:
            raise MasterKeyError(
                f"master key {master_key_id} is not configured (neither TENANTCRM_MASTER_KEY"
                " nor TENANTCRM_PREVIOUS_MASTER_KEYS); tenant keys wrapped with it cannot be unwrapped"
            )
        try:
            return AESGCM(key.key).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated_data(tenant_id, version)
            )
        except (InvalidTag, ValueError):
            raise MasterKeyError(
                f"tenant key version {version} does not unwrap with master key {master_key_id}"
                " (tampered or misfiled row)"
            ) from None


def master_key_ring(settings: Settings) -> MasterKeyRing:
    """The ring the settings describe; only outside production may a key be generated on disk."""
    if settings.master_key:
        current = MasterKey.from_base64(settings.master_key, "TENANTCRM_MASTER_KEY")
    elif settings.master_key_file:
        current = _from_file(settings.master_key_file, "TENANTCRM_MASTER_KEY_FILE")
    elif settings.production:
        raise MasterKeyError("TENANTCRM_MASTER_KEY or TENANTCRM_MASTER_KEY_FILE must be set in production")
    else:
        current = _development_key(settings.data_dir / DEV_KEY_FILE)
    previous: list[MasterKey] = []
    for number, value in enumerate(settings.previous_master_keys, start=1):
        key = MasterKey.from_base64(value, f"TENANTCRM_PREVIOUS_MASTER_KEYS entry {number}")
        if key.id != current.id and key.id not in {k.id for k in previous}:
            previous.append(key)
    return MasterKeyRing(current, tuple(previous))


def _from_file(path: Path, source: str) -> MasterKey:
    try:
        content = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise MasterKeyError(f"{source} {path} cannot be read") from None
    return MasterKey.from_base64(content, f"{source} {path}")


def _development_key(path: Path) -> MasterKey:
    if path.exists():
        return _from_file(path, "development master key file")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = MasterKey(os.urandom(KEY_BYTES))
    draft = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(key.key).decode() + "\n")
    try:
        # link() publishes the complete file or fails if another process got there first,
        # so two processes starting together end up with the same key.
        os.link(draft, path)
    except FileExistsError:
        return _from_file(path, "development master key file")
    finally:
        draft.unlink()
    log.warning(
        "generated a development master key in %s (id %s); set TENANTCRM_MASTER_KEY outside development",
        path,
        key.id,
    )
    return key
