"""bench.normalize: dates, amounts, names and prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bench.normalize import (
    format_price,
    normalize_name,
    parse_amount,
    parse_date,
    price_numbers,
    prominent_price,
    shelf_prices,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25/12/2018", "2018-12-25"),
        ("18/03/18", "2018-03-18"),
        ("10-03-2018", "2018-03-10"),
        ("10.03.2018", "2018-03-10"),
        ("14 MAR 2018", "2018-03-14"),
        ("24-MAR-2018", "2018-03-24"),
        ("15/APR/2017", "2017-04-15"),
        ("04 JAN 2017", "2017-01-04"),
        ("4 January 2017", "2017-01-04"),
        ("14Mar18", "2018-03-14"),
        ("March 14, 2018", "2018-03-14"),
        ("12/13/2016", "2016-12-13"),  # not a valid day-first date, so month first
        ("05/01/2018", "2018-01-05"),  # day first when both readings are valid
        ("2018-03-14", "2018-03-14"),
        ("2018/3/4", "2018-03-04"),
        ("DATE: 21-05-17 TIME 10:22", "2017-05-21"),
        ("Date 2018-03-14 due 20/04/2018", "2018-03-14"),  # the first date wins
    ],
)
def test_parse_date(text: str, expected: str) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", [None, "", "TOTAL 80.90", "31/02/2018", "32/13/2018", "14 FOO 2018"])
def test_parse_date_rejects(text: str | None) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("80.90", Decimal("80.90")),
        ("$8.20", Decimal("8.20")),
        ("RM22.65", Decimal("22.65")),
        ("RM 1,234.5", Decimal("1234.50")),
        ("327.00", Decimal("327.00")),
        (80.9, Decimal("80.90")),
        (5, Decimal("5.00")),
        ("TOTAL", None),
        (None, None),
    ],
)
def test_parse_amount(value: str | float | None, expected: Decimal | None) -> None:
    assert parse_amount(value) == expected


def test_amounts_compare_as_numbers() -> None:
    assert parse_amount("80.9") == parse_amount("80.90") == parse_amount(80.9)
    assert parse_amount("80.91") != parse_amount(80.9)


def test_normalize_name() -> None:
    assert normalize_name("  Yongfatt\n Enterprise ") == "YONGFATT ENTERPRISE"
    assert normalize_name(None) == ""


def test_price_numbers() -> None:
    assert price_numbers("¥1,980円") == ["1980"]
    assert price_numbers("￥１９８") == ["198"]  # full-width yen sign and digits fold under NFKC
    assert price_numbers("本体 1 99 円") == ["199"]  # spaces dropped: a split price joins up
    assert price_numbers("税込214.92円") == ["214"]
    assert price_numbers("0120") == ["120"]
    assert price_numbers("00") == ["0"]
    assert price_numbers("abc") == []
    assert price_numbers("99 円 120", drop_spaces=False) == ["99", "120"]


def test_format_price() -> None:
    assert format_price(199.0) == "199"
    assert format_price(214.92) == "214"
    assert format_price(0.0) == "0"


def test_prominent_price_prefers_structured() -> None:
    assert prominent_price([("199", 40.0)], 299.0) == "299"


def test_prominent_price_tallest_line_with_a_number() -> None:
    lines = [("国産 豚肉", 60.0), ("税込214.92円", 12.0), ("199", 40.0), ("1234567", 40.0)]
    # Tallest line has no number; the next tallest (two at 40: the earlier one wins) holds 199.
    assert prominent_price(lines, None) == "199"
    assert prominent_price([("12 円 / 100g 3480", 30.0)], None) == "3480"
    assert prominent_price([("no digits", 10.0)], None) is None
    assert prominent_price([], None) is None


def test_prominent_price_longest_number_in_the_line() -> None:
    assert prominent_price([("3点 598円", 20.0)], None) == "598"
    assert prominent_price([("2 98円", 20.0)], None) == "298"  # spaces dropped: a split price joins up


def test_shelf_prices_bare_price_tokens() -> None:
    texts = ["199", "¥1,080", "税込214円", "国産", "189 99", "123456", "99円", "", "30 明治パン 35 ょうひん 079"]
    assert shelf_prices(texts) == ["199", "1080", "189", "99", "99", "30", "35", "79"]
    assert shelf_prices(["¥ 120"]) == ["120"]  # a lone yen sign token drops to nothing
