"""Money: currency markers and amounts."""

import pytest

from edge_node.pipeline.extract.money import detect_currency, document_currency, find_amounts, parse_amount


@pytest.mark.parametrize(
    ("text", "value", "currency"),
    [
        ("1,234.50", 1234.5, None),
        ("1.234,50 €", 1234.5, "EUR"),
        ("12.50", 12.5, None),
        ("RM 9.00", 9.0, "MYR"),
        ("RM22.65", 22.65, "MYR"),
        ("৳১২০", 120.0, "BDT"),
        ("Tk 120/-", 120.0, "BDT"),
        ("Tk. 75", 75.0, "BDT"),
        ("TK 99.50", 99.5, "BDT"),
        ("BDT 1,500", 1500.0, "BDT"),
        ("৪৫০ টাকা", 450.0, "BDT"),
        ("$8.20", 8.2, "USD"),
        ("£3.99", 3.99, "GBP"),
        ("₹ 250", 250.0, "INR"),
        ("Rs.50", 50.0, "INR"),
        ("¥1,200", 1200.0, "JPY"),
        ("500円", 500.0, "JPY"),
        ("5.00 RM", 5.0, "MYR"),
        ("-RM0.01", -0.01, "MYR"),
        ("ROUNDING -0.02", -0.02, None),
    ],
)
def test_amounts(text: str, value: float, currency: str | None) -> None:
    amounts = find_amounts(text)
    assert len(amounts) == 1
    assert amounts[0].value == pytest.approx(value)
    assert amounts[0].currency == currency


@pytest.mark.parametrize(
    "text",
    [
        "TEL 07-3523888",
        "INV NO : 16-073042",
        "CS00031663",
        "DATE 25/12/2018 12:31:00",
        "GST 6%",
        "NO.53 JALAN",
        "500ml",
    ],
)
def test_not_amounts(text: str) -> None:
    assert find_amounts(text) == []


def test_several_amounts_in_order() -> None:
    values = [a.value for a in find_amounts("2 X 95.00 190.00")]
    assert values == [2.0, 95.0, 190.0]
    assert parse_amount("TOTAL: 1,00,000") == 100000.0
    assert parse_amount("nothing here") is None


def test_explicit_means_marked_as_money() -> None:
    first, second, third = find_amounts("3 12.50 Tk 40")
    assert not first.explicit
    assert second.explicit
    assert third.explicit


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("৳", "BDT"),
        ("Tk", "BDT"),
        ("TK", "BDT"),
        ("Tk.", "BDT"),
        ("BDT", "BDT"),
        ("টাকা", "BDT"),
        ("$", "USD"),
        ("RM", "MYR"),
        ("€", "EUR"),
        ("£", "GBP"),
        ("₹", "INR"),
        ("Rs", "INR"),
        ("¥", "JPY"),
        ("円", "JPY"),
    ],
)
def test_currency_markers(text: str, code: str) -> None:
    assert detect_currency(f"PRICE {text} 10") == code


def test_currency_needs_a_standalone_code() -> None:
    assert detect_currency("FORM TERMS") is None
    assert detect_currency("THANKS") is None


def test_document_currency_prefers_a_named_currency_over_dollar() -> None:
    assert document_currency(["$8.20", "AMOUNT(RM)", "$0.00"]) == "MYR"
    assert document_currency(["$8.20"]) == "USD"
    assert document_currency(["no money"]) is None
