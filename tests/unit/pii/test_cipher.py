"""Field encryption: round trips, and ciphertexts that are tampered or moved do not decrypt."""

import os
import uuid

import pytest

from tenantcrm.pii.cipher import PiiDecryptionError, TenantCipher, decryption_count, version_of

TENANT_A, TENANT_B = "0123456789abcdef", "fedcba9876543210"


def cipher(tenant_id: str = TENANT_A, keys: dict[int, bytes] | None = None, current: int = 1, index_key=None):
    keys = keys or {1: os.urandom(32)}
    return TenantCipher.build(tenant_id, keys, current, index_key or os.urandom(32))


def test_round_trip_and_layout():
    c = cipher(keys={1: os.urandom(32), 7: os.urandom(32)}, current=7)
    row = uuid.uuid4()
    blob = c.encrypt("customers", "national_id_enc", row, "370102199003071234")
    assert blob[:2] == b"\x00\x07" and version_of(blob) == 7
    assert len(blob) == 2 + 12 + len("370102199003071234") + 16
    assert b"370102199003071234" not in blob
    assert c.decrypt("customers", "national_id_enc", str(row), blob) == "370102199003071234"
    assert c.encrypt("customers", "national_id_enc", row, "370102199003071234") != blob
    assert c.decrypt("customers", "address_enc", row, c.encrypt("customers", "address_enc", row, "")) == ""
    chinese = "上海市浦东新区世纪大道100号"
    assert (
        c.decrypt("customers", "address_enc", row, c.encrypt("customers", "address_enc", row, chinese))
        == chinese
    )


def test_older_versions_still_decrypt():
    old_key = os.urandom(32)
    before = cipher(keys={1: old_key})
    row = uuid.uuid4()
    blob = before.encrypt("customers", "phone_enc", row, "13812345678")
    after = cipher(keys={1: old_key, 2: os.urandom(32)}, current=2)
    assert after.decrypt("customers", "phone_enc", row, blob) == "13812345678"
    assert version_of(after.encrypt("customers", "phone_enc", row, "x")) == 2
    with pytest.raises(PiiDecryptionError, match="no data key of version 2"):
        before.decrypt("customers", "phone_enc", row, after.encrypt("customers", "phone_enc", row, "x"))


@pytest.mark.parametrize("position", [0, 1, 2, 13, 14, 20, -1])
def test_tampering_is_detected(position):
    c = cipher()
    row = uuid.uuid4()
    blob = bytearray(c.encrypt("customers", "phone_enc", row, "13812345678"))
    blob[position] ^= 0x01
    with pytest.raises(PiiDecryptionError):
        c.decrypt("customers", "phone_enc", row, bytes(blob))


def test_truncated_blob_is_refused():
    c = cipher()
    blob = c.encrypt("customers", "phone_enc", "r", "13812345678")
    for cut in (0, 1, 14, 29):
        with pytest.raises(PiiDecryptionError):
            c.decrypt("customers", "phone_enc", "r", blob[:cut])


def test_a_ciphertext_moved_to_another_row_column_or_tenant_does_not_decrypt():
    shared_key = os.urandom(32)  # even the same key: the associated data binds the place
    a = cipher(TENANT_A, {1: shared_key})
    b = cipher(TENANT_B, {1: shared_key})
    row, other_row = uuid.uuid4(), uuid.uuid4()
    blob = a.encrypt("customers", "national_id_enc", row, "370102199003071234")
    moves = [
        (a, "customers", "national_id_enc", other_row),
        (a, "customers", "phone_enc", row),
        (a, "collateral", "national_id_enc", row),
        (b, "customers", "national_id_enc", row),
    ]
    for target, table, column, row_id in moves:
        with pytest.raises(PiiDecryptionError) as caught:
            target.decrypt(table, column, row_id, blob)
        message = str(caught.value)
        assert "370102" not in message and shared_key.hex() not in message and "\n" not in message


def test_decryptions_are_counted():
    c = cipher()
    blob = c.encrypt("customers", "phone_enc", "r", "13812345678")
    before = decryption_count()
    c.encrypt("customers", "phone_enc", "r", "13812345678")
    c.blind_index("phone", "13812345678")
    assert decryption_count() == before
    c.decrypt("customers", "phone_enc", "r", blob)
    with pytest.raises(PiiDecryptionError):
        c.decrypt("customers", "phone_enc", "other", blob)
    assert decryption_count() == before + 2


def test_blind_index_is_deterministic_per_tenant_and_kind():
    index_key = os.urandom(32)
    a = cipher(TENANT_A, index_key=index_key)
    a_again = cipher(TENANT_A, index_key=index_key)
    b = cipher(TENANT_B)
    digest = a.blind_index("phone", "13812345678")
    assert len(digest) == 32 and digest == a_again.blind_index("phone", "13812345678")
    assert digest != a.blind_index("phone", "13812345679")
    assert digest != a.blind_index("national_id", "13812345678")
    assert digest != b.blind_index("phone", "13812345678")


def test_keys_are_checked_and_never_shown():
    key = os.urandom(32)
    c = cipher(keys={1: key}, index_key=key)
    assert key.hex() not in repr(c) and repr(key) not in repr(c)
    with pytest.raises(ValueError):
        TenantCipher.build(TENANT_A, {1: os.urandom(16)}, 1, os.urandom(32))
    with pytest.raises(ValueError):
        TenantCipher.build(TENANT_A, {1: key}, 2, os.urandom(32))
    with pytest.raises(AttributeError):
        c.current_version = 2
