"""The master key ring: where keys come from, and wrapping tenant keys with them."""

import base64
import logging
import os
import stat

import pytest

from tenantcrm.pii.keys import (
    KeyProvider,
    MasterKey,
    MasterKeyError,
    MasterKeyRing,
    key_id_of,
    master_key_ring,
)
from tenantcrm.settings import Settings


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def settings_for(tmp_path, **values) -> Settings:
    return Settings(data_dir=tmp_path, environment=values.pop("environment", "test"), **values)


def test_key_from_the_environment_has_a_sha256_id(tmp_path):
    raw = os.urandom(32)
    ring = master_key_ring(settings_for(tmp_path, master_key=b64(raw)))
    assert ring.key_id == key_id_of(raw) and len(ring.key_id) == 16
    assert int(ring.key_id, 16) >= 0
    assert not (tmp_path / "master.key").exists()
    provider: KeyProvider = ring  # the ring is the env/file implementation of the provider
    assert provider.key_id == ring.key_id


@pytest.mark.parametrize(
    "value", ["", "not base64!", b64(os.urandom(16)), b64(os.urandom(33)), "A" * 43, "-" * 43 + "="]
)
def test_anything_but_32_base64_bytes_is_refused_with_one_line(tmp_path, value):
    with pytest.raises(ValueError) as caught:
        master_key_ring(settings_for(tmp_path, master_key=value or " "))
    message = str(caught.value)
    assert "\n" not in message and "TENANTCRM_MASTER_KEY" in message
    assert value.strip() == "" or value not in message


def test_key_file(tmp_path):
    raw = os.urandom(32)
    path = tmp_path / "key"
    path.write_text(b64(raw) + "\n")
    ring = master_key_ring(settings_for(tmp_path, master_key_file=path))
    assert ring.key_id == key_id_of(raw)
    with pytest.raises(MasterKeyError, match="cannot be read"):
        master_key_ring(settings_for(tmp_path, master_key_file=tmp_path / "missing"))
    path.write_text("short")
    with pytest.raises(MasterKeyError, match="base64 of 32"):
        master_key_ring(settings_for(tmp_path, master_key_file=path))


def test_development_key_is_generated_once_private_and_logged_without_the_key(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tenantcrm.pii.keys"):
        first = master_key_ring(settings_for(tmp_path / "data", environment="development"))
    path = tmp_path / "data" / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.key_id in caplog.text and path.read_text().strip() not in caplog.text
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]
    again = master_key_ring(settings_for(tmp_path / "data", environment="development"))
    assert again.key_id == first.key_id


def test_production_without_a_key_is_refused(tmp_path):
    with pytest.raises(MasterKeyError, match="production"):
        master_key_ring(settings_for(tmp_path, environment="production"))
    assert not (tmp_path / "master.key").exists()


def test_wrap_unwrap_round_trip_bound_to_tenant_and_version(tmp_path):
    ring = master_key_ring(settings_for(tmp_path, master_key=b64(os.urandom(32))))
    data_key = os.urandom(32)
    blob = ring.wrap(data_key, "0123456789abcdef", 1)
    assert data_key not in blob and len(blob) == 12 + 32 + 16
    assert ring.unwrap(blob, ring.key_id, "0123456789abcdef", 1) == data_key
    assert ring.wrap(data_key, "0123456789abcdef", 1) != blob  # fresh nonce
    for tenant_id, version in (("fedcba9876543210", 1), ("0123456789abcdef", 2)):
        with pytest.raises(MasterKeyError, match="does not unwrap"):
            ring.unwrap(blob, ring.key_id, tenant_id, version)
    tampered = bytes([blob[0] ^ 1]) + blob[1:]
    with pytest.raises(MasterKeyError):
        ring.unwrap(tampered, ring.key_id, "0123456789abcdef", 1)


def test_previous_keys_unwrap_and_an_unknown_key_id_is_a_clear_error(tmp_path):
    old, new = os.urandom(32), os.urandom(32)
    old_ring = master_key_ring(settings_for(tmp_path, master_key=b64(old)))
    blob = old_ring.wrap(b"k" * 32, "0123456789abcdef", 3)
    ring = master_key_ring(
        settings_for(tmp_path, master_key=b64(new), previous_master_keys=(b64(old), b64(new), b64(old)))
    )
    assert ring.key_ids == (key_id_of(new), key_id_of(old))
    assert ring.unwrap(blob, key_id_of(old), "0123456789abcdef", 3) == b"k" * 32
    assert ring.wrap(b"k" * 32, "0123456789abcdef", 3) and ring.key_id == key_id_of(new)
    bare = MasterKeyRing(MasterKey(new))
    with pytest.raises(MasterKeyError, match=f"master key {key_id_of(old)} is not configured"):
        bare.unwrap(blob, key_id_of(old), "0123456789abcdef", 3)
    with pytest.raises(ValueError, match="PREVIOUS_MASTER_KEYS entry 2"):
        master_key_ring(settings_for(tmp_path, master_key=b64(new), previous_master_keys=(b64(old), "x")))


def test_keys_never_show_in_repr(tmp_path):
    raw = os.urandom(32)
    ring = MasterKeyRing(MasterKey(raw))
    assert raw.hex() not in repr(ring) and b64(raw) not in repr(ring) and repr(raw) not in repr(ring)
