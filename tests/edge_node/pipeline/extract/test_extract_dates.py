"""Dates: numeric, month-name, month-year, Bengali, labels, GS1."""

import pytest

from edge_node.pipeline.extract.dates import find_dates, gs1_date, label_at_end, parse_date


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("12/03/2027", "2027-03-12"),
        ("12-03-2027", "2027-03-12"),
        ("2027-03-12", "2027-03-12"),
        ("12.03.27", "2027-03-12"),
        ("03 JAN 2026", "2026-01-03"),
        ("JAN 03 2026", "2026-01-03"),
        ("Jan 3, 2026", "2026-01-03"),
        ("3rd January 2026", "2026-01-03"),
        ("24-MAR-2018 03:44:22 PM", "2018-03-24"),
        ("15/APR/2017", "2017-04-15"),
        ("[19/06/17] [11:37]", "2017-06-19"),
        ("DATE: 11/01/2019 TIME: 09:44:00", "2019-01-11"),
        ("12/13/2016", "2016-12-13"),  # the second number cannot be a month: month first
        ("13/12/2016", "2016-12-13"),
        ("05/04/2024", "2024-04-05"),  # ambiguous: day first
        ("১২ জানুয়ারি ২০২৭", "2027-01-12"),
        ("২৫ ডিসেম্বর ২০২৬", "2026-12-25"),
        ("০৩ মে ২০২৫", "2025-05-03"),
        ("১৫/০৮/২০২৬", "2026-08-15"),
    ],
)
def test_full_dates(text: str, iso: str) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize(
    "text",
    ["31/02/2020", "30-02-2024", "2027-13-01", "00/01/2020", "12.50", "TAX INVOICE NO. 3521/0602/00602", "7.30AM"],
)
def test_invalid_or_non_dates_are_rejected(text: str) -> None:
    assert parse_date(text) is None


def test_leap_day_exists_only_in_leap_years() -> None:
    assert parse_date("29/02/2024") == "2024-02-29"
    assert parse_date("29/02/2023") is None


@pytest.mark.parametrize(
    ("text", "iso", "label"),
    [
        ("EXP 12/2027", "2027-12-31", "expiry"),
        ("Best before 03/26", "2026-03-31", "expiry"),
        ("BB 03 JAN 26", "2026-01-03", "expiry"),
        ("USE BY 05.06.2026", "2026-06-05", "expiry"),
        ("EXP: 2027/02", "2027-02-28", "expiry"),
        ("MFG DATE: 01/2025", "2025-01-31", "made"),
        ("PKD 10/2024", "2024-10-31", "made"),
        ("Due Date: 04/04/2024", "2024-04-04", "due"),
        ("DATE : 25/12/2018", "2018-12-25", "date"),
        ("মেয়াদ: ৩০/০৬/২০২৬", "2026-06-30", "expiry"),
    ],
)
def test_labelled_dates(text: str, iso: str, label: str) -> None:
    (match,) = find_dates(text)
    assert (match.iso, match.label) == (iso, label)


def test_mfg_and_exp_on_one_line() -> None:
    made, expiry = find_dates("MFG 01/2025 EXP 01/2027")
    assert (made.label, made.iso, made.precision) == ("made", "2025-01-31", "month")
    assert (expiry.label, expiry.iso) == ("expiry", "2027-01-31")


def test_month_year_can_be_left_out() -> None:
    assert find_dates("EXP 12/2027", month_year=False) == []


def test_label_at_end_of_line() -> None:
    assert label_at_end("Best Before:") == "expiry"
    assert label_at_end("EXP") == "expiry"
    assert label_at_end("DATE :") == "date"
    assert label_at_end("TOTAL") is None


@pytest.mark.parametrize(
    ("yymmdd", "iso"),
    [("271231", "2027-12-31"), ("270200", "2027-02-28"), ("280200", "2028-02-29"), ("260615", "2026-06-15")],
)
def test_gs1_dates(yymmdd: str, iso: str) -> None:
    assert gs1_date(yymmdd) == iso


@pytest.mark.parametrize("yymmdd", ["271331", "270231", "2712", "abcdef"])
def test_bad_gs1_dates(yymmdd: str) -> None:
    assert gs1_date(yymmdd) is None
