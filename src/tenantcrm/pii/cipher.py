"""Field encryption bound to tenant, table, column and row, and blind indexes for exact search."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_VERSION = struct.Struct(">H")
HEADER_BYTES = _VERSION.size + NONCE_BYTES
MAX_VERSION = 0xFFFF

_lock = threading.Lock()
_decryptions = 0


class PiiDecryptionError(Exception):
    """A field that does not decrypt; the message names the column, never a value or key."""


def decryption_count() -> int:
    """Decryptions attempted by this process so far (tests prove masked reads never decrypt)."""
    return _decryptions


def _count_decryption() -> None:
    global _decryptions
    with _lock:
        _decryptions += 1


def version_of(blob: bytes) -> int:
    """The tenant data-key version a field was encrypted with."""
    if len(blob) < HEADER_BYTES + TAG_BYTES:
        raise PiiDecryptionError("not an encrypted field (too short)")
    return _VERSION.unpack_from(blob)[0]


@dataclass(frozen=True)
class TenantCipher:
    """One tenant's data keys by version, the version new writes use, and the index key."""

    tenant_id: str
    current_version: int
    _aeads: Mapping[int, AESGCM] = field(repr=False)
    _index_key: bytes = field(repr=False)

    @classmethod
    def build(
        cls, tenant_id: str, data_keys: Mapping[int, bytes], current_version: int, index_key: bytes
    ) -> TenantCipher:
        if current_version not in data_keys:
            raise ValueError("the current version must be one of the data keys")
        if any(len(k) != KEY_BYTES for k in (*data_keys.values(), index_key)):
            raise ValueError(f"tenant keys must be {KEY_BYTES} bytes")
        if any(not 1 <= v <= MAX_VERSION for v in data_keys):
            raise ValueError(f"key versions must be 1..{MAX_VERSION}")
        aeads = MappingProxyType({v: AESGCM(k) for v, k in data_keys.items()})
        return cls(tenant_id, current_version, aeads, bytes(index_key))

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._aeads))

    def _associated_data(self, table: str, column: str, row_id: str | UUID) -> bytes:
        return f"{self.tenant_id}|{table}|{column}|{row_id}".encode()

    def encrypt(self, table: str, column: str, row_id: str | UUID, plaintext: str) -> bytes:
        """2-byte big-endian key version + 12-byte nonce + AES-256-GCM ciphertext and tag."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aeads[self.current_version].encrypt(
            nonce, plaintext.encode(), self._associated_data(table, column, row_id)
        )
        return _VERSION.pack(self.current_version) + nonce + sealed

    def decrypt(self, table: str, column: str, row_id: str | UUID, blob: bytes) -> str:
        _count_decryption()
        blob = bytes(blob)
        version = version_of(blob)
        aead = self._aeads.get(version)
        if aead is None:
            raise PiiDecryptionError(f"{table}.{column}: this tenant has no data key of version {version}")
        try:
            plaintext = aead.decrypt(
                blob[_VERSION.size : HEADER_BYTES],
                blob[HEADER_BYTES:],
                self._associated_data(table, column, row_id),
            )
            return plaintext.decode()
        except (InvalidTag, UnicodeDecodeError):
            raise PiiDecryptionError(
                f"{table}.{column}: does not decrypt for this tenant and row (moved or tampered)"
            ) from None

    def blind_index(self, kind: str, normalized_value: str) -> bytes:
        """HMAC-SHA256 of `kind:value` under the tenant's index key (32 bytes)."""
        mac = hmac.HMAC(self._index_key, hashes.SHA256())
        mac.update(f"{kind}:{normalized_value}".encode())
        return mac.finalize()
