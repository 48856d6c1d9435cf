"""Masks keep only what staff need to recognise a value; normalisers feed the blind indexes."""

import pytest

from tenantcrm.pii.masking import (
    mask_address,
    mask_email,
    mask_national_id,
    mask_phone,
    normalize_national_id,
    normalize_phone,
)


def test_mask_national_id():
    assert mask_national_id("370102199003071234") == "3701**********1234"
    assert mask_national_id("11010519491231002x") == "1101**********002X"
    assert mask_national_id("91350100M000100Y43") == "9135**********0Y43"  # unified social credit code
    assert len(mask_national_id("370102199003071234")) == 18
    assert mask_national_id("12345678") == "********"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("021-12345678", "021-****5678"),
        ("0755-1234567", "0755-***4567"),
        ("010 8888 6666", "010-****6666"),
    ],
)
def test_mask_phone(raw, masked):
    assert mask_phone(raw) == masked


def test_mask_email():
    assert mask_email("zhang.san@example.com") == "z*******@example.com"
    assert mask_email("a@b.cn") == "a*******@b.cn"
    assert "@" not in mask_email("no-at-sign")


def test_mask_address():
    assert mask_address("上海市浦东新区世纪大道100号") == "上海市浦东新****"
    assert mask_address("北京市") == "北****"
    assert mask_address("") == ""


def test_normalize_national_id_full_width_spaces_and_x():
    assert normalize_national_id("３７０１０２ １９９００３０７１２３ｘ") == "37010219900307123X"
    assert normalize_national_id(" 11010519491231002x ") == "11010519491231002X"
    assert normalize_national_id("370102\u300019900307123X") == "37010219900307123X"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("13812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("＋８６ １３８１２３４５６７８", "13812345678"),
        ("0086 13812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("021-12345678", "021-12345678"),
        ("(021) 1234 5678", "021-12345678"),
        ("02112345678", "021-12345678"),
        ("+86 21 1234 5678", "021-12345678"),
        ("０７５５－１２３４５６７", "0755-1234567"),
        ("12345678", "12345678"),
    ],
)
def test_normalize_phone(raw, normal):
    assert normalize_phone(raw) == normal


def test_equal_phones_normalise_equal():
    forms = ["13812345678", "138 1234 5678", "+86-138-1234-5678", "１３８ １２３４ ５６７８"]
    assert len({normalize_phone(f) for f in forms}) == 1
