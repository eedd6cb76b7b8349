"""GS1 parsing: element strings in raw and bracketed form, check digits, dates, UPC-E and measures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from edge_node.pipeline.extract.gs1 import (
    Gs1Error,
    gs1_date_to_iso,
    gs1_decimal,
    gs1_to_hri,
    gtin_check_digit_ok,
    parse_gs1,
    upca_to_upce,
    upce_to_upca,
)

EXPECTED = {"01": "09504000059101", "17": "270312", "10": "AB12"}


@pytest.mark.parametrize(
    "data",
    [
        "(01)09504000059101(17)270312(10)AB12",  # zxing-cpp HRI
        "01095040000591011727031210AB12",  # raw, variable field last: no GS needed
        "\x1d01095040000591011727031210AB12",  # leading FNC1 kept as GS
        "]d201095040000591011727031210AB12",  # symbology identifier in front
        "0109504000059101\x1d1727031210AB12",  # a (tolerated) GS after a fixed-length field
    ],
)
def test_forms_of_the_same_element_string(data: str) -> None:
    """All the forms decoders produce parse to the same AIs."""
    assert parse_gs1(data) == EXPECTED


def test_gs_ends_a_variable_field() -> None:
    """A GS closes a variable-length field in the middle; the fixed-length ones need none."""
    data = "0109504000059101" "10LOT-7\x1d" "17270300" "21SN 42\x1d" "3103001250" "3922199"
    assert parse_gs1(data) == {
        "01": "09504000059101", "10": "LOT-7", "17": "270300", "21": "SN 42", "3103": "001250", "3922": "199",
    }


def test_bracketed_with_parentheses_inside_a_value() -> None:
    """Brackets that do not hold a known AI stay part of the value."""
    assert parse_gs1("(01)09504000059101(10)A(B)1") == {"01": "09504000059101", "10": "A(B)1"}


@pytest.mark.parametrize(
    "ai_data",
    ["(00)095040000591016507", "(02)09504000059101(37)12", "(11)260101(13)260102(15)270100(30)6",
     "(3921)1995", "(8005)000120", "(400)PO-77(91)internal"],
)
def test_other_ais(ai_data: str) -> None:
    """SSCC, contained GTIN with count, dates, variable count, price, order number, company data."""
    assert gs1_to_hri(parse_gs1(ai_data)) == ai_data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("(01)09504000059102", "check digit"),  # GTIN check digit wrong
        ("0109504000059102", "check digit"),
        ("(00)095040000591016504", "check digit"),  # SSCC check digit wrong
        ("(01)0950400005910", "length"),  # GTIN too short
        ("(17)271301", "not a date"),  # month 13
        ("(17)270230", "not a date"),  # 30 February
        ("(10)" + "X" * 21, "length"),  # lot longer than 20
        ("(01)0950400005910A", "numeric"),
        ("hello", "unknown application identifier"),
        ("", "empty"),
        ("(10)A(10)B", "twice"),
        ("(10)caf\u00e9", "GS1 set"),
    ],
)
def test_malformed_data_raises(data: str, message: str) -> None:
    """Anything that is not well-formed GS1 raises Gs1Error, never a half-parsed dict."""
    with pytest.raises(Gs1Error, match=message):
        parse_gs1(data)


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("5901234123457", True), ("036000291452", True), ("96385074", True), ("09504000059101", True),
        ("095040000591016507", True), ("5901234123458", False), ("036000291453", False), ("96385075", False),
        ("", False), ("7", False), ("59012341234a7", False), ("５９０１２３４１２３４５７", False),
    ],
)
def test_gtin_check_digit(digits: str, ok: bool) -> None:
    """GS1 mod-10 for every key length; non-digits (also full-width ones) fail."""
    assert gtin_check_digit_ok(digits) is ok


@pytest.mark.parametrize(
    ("yymmdd", "iso"),
    [
        ("270312", "2027-03-12"),
        ("270300", "2027-03-31"),  # DD=00: last day of the month
        ("280200", "2028-02-29"),  # ... leap year
        ("270200", "2027-02-28"),
        ("991231", "1999-12-31"),  # more than 50 years ahead of 2026: previous century
        ("750101", "2075-01-01"),  # within 50 years ahead: this century
        ("271301", None), ("270230", None), ("2703", None), ("27o312", None),
    ],
)
def test_gs1_date_to_iso(yymmdd: str, iso: str | None) -> None:
    """YYMMDD -> ISO date with the GS1 century rule; None when not a date."""
    assert gs1_date_to_iso(yymmdd, today=dt.date(2026, 6, 1)) == iso


def test_gs1_date_default_reference_is_today() -> None:
    """Without a reference date, today's century is used."""
    assert gs1_date_to_iso("270312") == "2027-03-12"


@pytest.mark.parametrize(
    ("upce", "upca"),
    [("01234565", "012345000065"), ("04252614", "042100005264"), ("01234531", "012300000451"),
     ("04963406", "049000006346"), ("00123457", "001234000057")],
)
def test_upce_round_trip(upce: str, upca: str) -> None:
    """UPC-E expands to UPC-A and compresses back, for each of the four compression rules."""
    assert upce_to_upca(upce) == upca
    assert upca_to_upce(upca) == upce
    assert gtin_check_digit_ok(upca)


@pytest.mark.parametrize("value", ["036000291452", "123456789012", "0360002914", "abcdefghijkl"])
def test_upca_without_upce_form(value: str) -> None:
    """Numbers that cannot be written as UPC-E give None."""
    assert upca_to_upce(value) is None


def test_upce_rejects_bad_input() -> None:
    """Only 8 digits with number system 0 or 1 are UPC-E."""
    assert upce_to_upca("21234565") is None
    assert upce_to_upca("0123456") is None


@pytest.mark.parametrize(
    ("ai", "value", "number"),
    [("3103", "001250", Decimal("1.250")), ("3100", "000002", Decimal("2")), ("3922", "0199", Decimal("1.99")),
     ("3932", "978001999", Decimal("19.99")), ("17", "270312", None), ("3103", "00125x", None)],
)
def test_gs1_decimal(ai: str, value: str, number: Decimal | None) -> None:
    """Measures and prices carry their decimal places in the AI's last digit; ISO currency is skipped."""
    assert gs1_decimal(ai, value) == number
