"""Numeric text: Bengali digits, number separators, GS1 check digits."""

import pytest

from edge_node.pipeline.extract.numerals import (
    digit_ratio,
    has_valid_check_digit,
    letter_count,
    parse_number,
    to_ascii_digits,
)


def test_bengali_digits_become_ascii() -> None:
    assert to_ascii_digits("৳১২০.৫০ মাত্র") == "৳120.50 মাত্র"
    assert to_ascii_digits("০১২৩৪৫৬৭৮৯") == "0123456789"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("1,234.50", 1234.5),
        ("1.234,50", 1234.5),
        ("12.50", 12.5),
        ("12,50", 12.5),
        ("1,234", 1234.0),
        ("1.234.567", 1234567.0),
        ("1,00,000", 100000.0),
        (".20", 0.2),
        ("2.200", 2.2),
        ("১২০", 120.0),
        ("৪৫০.৫০", 450.5),
    ],
)
def test_parse_number(token: str, expected: float) -> None:
    assert parse_number(token) == pytest.approx(expected)


@pytest.mark.parametrize("token", ["", "abc", "1,2,3", "1.2.3", ","])
def test_parse_number_rejects_garbage(token: str) -> None:
    assert parse_number(token) is None


@pytest.mark.parametrize("code", ["4006381333931", "96385074", "036000291452", "09501101530003"])
def test_valid_check_digits(code: str) -> None:
    assert has_valid_check_digit(code)


@pytest.mark.parametrize("code", ["4006381333932", "12345", "abcdefghijklm", "0360002914521"])
def test_invalid_check_digits(code: str) -> None:
    assert not has_valid_check_digit(code)


def test_ratios_and_letters() -> None:
    assert digit_ratio("১২৩ ab") == pytest.approx(0.6)
    assert digit_ratio("   ") == 0.0
    assert letter_count("চাল") == 3  # the vowel sign counts as part of the word
    assert letter_count("৳ 120") == 0
