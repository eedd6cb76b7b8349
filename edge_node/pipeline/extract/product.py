"""Product label and price tag fields: name, price, currency, barcode, SKU, expiry date, net quantity.

Prominence (box height, i.e. font size) decides between candidates: the product name is the biggest text that is
not a price, date or code; the price is the biggest money-looking number, with currency signs and price keywords
counting for more than size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_node.pipeline.extract.dates import find_dates, gs1_date, normalise
from edge_node.pipeline.extract.layout import Found, label_of_previous
from edge_node.pipeline.extract.money import Amount, document_currency, find_amounts
from edge_node.pipeline.extract.numerals import digit_ratio, has_valid_check_digit, letter_count, parse_number
from shared_models.ocr import Barcode, Line, StructuredFields

# Net-content units as printed -> the unit we report. Longer spellings first so "kg" is not read as "g".
_UNITS: dict[str, str] = {
    "millilitres": "ml", "milliliters": "ml", "ml": "ml", "মিলি": "ml", "litres": "l", "liters": "l", "litre": "l",
    "liter": "l", "ltr": "l", "lt": "l", "l": "l", "লিটার": "l", "kgs": "kg", "kg": "kg", "কেজি": "kg",
    "grams": "g", "gram": "g", "gms": "g", "gm": "g", "g": "g", "গ্রাম": "g", "mg": "mg", "fl oz": "oz", "oz": "oz",
    "lbs": "lb", "lb": "lb", "pieces": "pcs", "piece": "pcs", "pcs": "pcs", "pc": "pcs", "nos": "pcs", "'s": "pcs",
    "tablets": "pcs", "tabs": "pcs", "capsules": "pcs", "পিস": "pcs", "packs": "pack", "pack": "pack", "pkt": "pack",
}  # fmt: skip
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_QUANTITY = re.compile(
    rf"(?<![\w.,])(?P<num>\d+(?:[.,]\d+)?)\s?(?P<unit>{_UNIT_ALT})(?![A-Za-z\u0980-\u09e5])", re.IGNORECASE
)
_NET_LABEL = re.compile(r"NET|\bWT\b|WEIGHT|VOL|CONTENTS?|\bQTY\b|QUANTITY|নিট|ওজন|পরিমাণ", re.IGNORECASE)
# Words that mark a number as the selling price.
_PRICE_WORD = re.compile(
    r"PRICE|M\.?R\.?P|\bRRP\b|\bSALE\b|OFFER|\bNOW\b|\bONLY\b|\bEACH\b|PER\s+(?:KG|PC|UNIT)|মূল্য|দাম|@", re.IGNORECASE
)
# A crossed-out "was" price loses to the current one.
_OLD_PRICE_WORD = re.compile(r"\bWAS\b|\bOLD\b|REGULAR|\bREG\b", re.IGNORECASE)
# Lines whose numbers are not prices (batch numbers, nutrition facts, registrations, phone numbers).
_NOT_PRICE_LINE = re.compile(
    r"BATCH|\bLOT\b|B\.?\s?NO|\bREG|LIC|SKU|CODE|BARCODE|KCAL|CALORIE|ENERGY|PROTEIN|FAT|CARB|SUGAR|SODIUM|"
    r"TEL|PHONE|HOTLINE|MOBILE|BSTI|ISBN|SERIAL|ব্যাচ|ফোন",
    re.IGNORECASE,
)
# Labels that head a line of fine print, never the product name.
_NOT_NAME_LINE = re.compile(
    r"\bEXP|\bMFG|\bMFD|BEST\s*BEFORE|USE\s*BY|BATCH|\bLOT\b|INGREDIENT|NUTRITION|PRICE|M\.?R\.?P|NET\s*W|"
    r"MANUFACTURED|MARKETED|DISTRIBUTED|IMPORTED|STORE\s*IN|KEEP|WWW|HTTP|TEL|মূল্য|দাম|মেয়াদ|উৎপাদন",
    re.IGNORECASE,
)
_SKU = re.compile(
    r"(?:SKU|ITEM\s*(?:NO|CODE|#)|ART(?:ICLE)?\.?\s*(?:NO|#)|PROD(?:UCT|\.)?\s*CODE|MODEL\s*(?:NO)?|STYLE|CODE)"
    r"\s*[.:#]?\s*(?P<sku>[A-Z0-9][A-Z0-9\-/.]{2,})",
    re.IGNORECASE,
)
_PRINTED_CODE = re.compile(r"(?<![\d])(\d(?:\s?\d){7,13})(?!\d)")
# Decoded formats that carry a GTIN, preferred for `barcode` over QR codes and other symbologies.
_PRODUCT_FORMATS = frozenset({"EAN_13", "EAN_8", "UPC_A", "UPC_E", "EAN13", "EAN8", "UPCA", "UPCE", "ITF"})
# A bare integer this long is a code, never a shelf price.
_MAX_PRICE_DIGITS = 6


@dataclass(frozen=True)
class _Quantity:
    value: float
    unit: str
    index: int
    start: int
    end: int


def extract_product(lines: list[Line], barcodes: list[Barcode]) -> StructuredFields:
    """Structured fields of a product label or price tag."""
    fields = StructuredFields()
    conf: dict[str, float] = {}
    quantities = _find_quantities(lines)
    quantity = _best_quantity(lines, quantities)
    if quantity is not None:
        fields.quantity, fields.unit = quantity.value.value, quantity.value.unit
        conf["quantity"] = quantity.confidence
    price = find_price(lines, quantities)
    if price is not None:
        fields.price, conf["price"] = price.value.value, price.confidence
        fields.currency = price.value.currency
    fields.currency = fields.currency or document_currency(line.text for line in lines)
    if fields.currency is not None:
        conf["currency"] = conf.get("price", 0.8)
    name = find_product_name(lines)
    if name is not None:
        fields.product_name, conf["product_name"] = name.value, name.confidence
    code = find_barcode(lines, barcodes)
    if code is not None:
        fields.barcode, conf["barcode"] = code.value, code.confidence
    sku = find_sku(lines)
    if sku is not None:
        fields.sku, conf["sku"] = sku.value, sku.confidence
    expiry = find_expiry(lines, barcodes)
    if expiry is not None:
        fields.expiry_date, conf["expiry_date"] = expiry.value, expiry.confidence
    fields.confidence = {key: round(value, 3) for key, value in conf.items()}
    return fields


def barcode_fields(barcodes: list[Barcode]) -> StructuredFields:
    """Fields derived from decoded barcodes only (the `barcode` document type)."""
    fields = StructuredFields()
    code = _decoded_code(barcodes)
    if code is not None:
        fields.barcode = code.value
        fields.confidence["barcode"] = round(code.confidence, 3)
    expiry = _gs1_expiry(barcodes)
    if expiry is not None:
        fields.expiry_date = expiry.value
        fields.confidence["expiry_date"] = round(expiry.confidence, 3)
    return fields


def find_product_name(lines: list[Line]) -> Found[str] | None:
    """The most prominent (tallest) line that reads as words, joined with a same-size line right under it."""
    candidates = [i for i, line in enumerate(lines) if _is_name_like(line.text)]
    if not candidates:
        return None
    best = max(candidates, key=lambda i: (lines[i].bounding_box.height, -i))
    text = lines[best].text.strip()
    nxt = best + 1
    if nxt in candidates and _continues(lines[best], lines[nxt]):
        text = f"{text} {lines[nxt].text.strip()}"
    # Sure when the name clearly outsizes everything else on the label.
    heights = sorted((lines[i].bounding_box.height for i in candidates), reverse=True)
    margin = 0.85 if len(heights) == 1 or heights[0] >= 1.3 * heights[1] else 0.65
    return Found(text, lines[best].confidence * margin, best)


def find_price(lines: list[Line], quantities: list[_Quantity] | None = None) -> Found[Amount] | None:
    """The selling price: currency-marked or keyword-labelled amounts first, then the biggest money-like number."""
    quantities = _find_quantities(lines) if quantities is None else quantities
    tallest = max((line.bounding_box.height for line in lines), default=1) or 1
    best: tuple[float, Found[Amount]] | None = None
    for index, line in enumerate(lines):
        # "PRICE" printed above a bare amount labels it too.
        label_above = index > 0 and _is_bare_price_word(lines[index - 1].text) and letter_count(line.text) < 3
        keyword = bool(_PRICE_WORD.search(line.text)) or label_above
        has_code = _printed_code(line.text) is not None
        for amount in find_amounts(line.text):
            if not _could_be_price(line.text, amount, keyword) or _inside_quantity(quantities, index, amount):
                continue
            if has_code and not amount.explicit:
                continue  # a group of a spaced barcode ("8 901234 567890")
            score = 4.0 * (amount.currency is not None) + 3.0 * keyword + 1.0 * (amount.decimals == 2)
            score += 2.0 * line.bounding_box.height / tallest - 2.0 * bool(_OLD_PRICE_WORD.search(line.text))
            certainty = 0.9 if amount.currency or keyword else 0.6
            if best is None or score > best[0]:
                best = (score, Found(amount, line.confidence * certainty, index))
    return best[1] if best else None


def find_barcode(lines: list[Line], barcodes: list[Barcode]) -> Found[str] | None:
    """The product code: a printed EAN/UPC with a valid check digit, else the decoded barcode (GS1 AI 01 first)."""
    decoded = _decoded_code(barcodes)
    for index, line in enumerate(lines):
        digits = _printed_code(line.text)
        if digits is not None:
            agrees = decoded is not None and decoded.value.lstrip("0") == digits.lstrip("0")
            return Found(digits, min(1.0, line.confidence * (0.95 if agrees else 0.85)), index)
    return decoded


def _printed_code(text: str) -> str | None:
    """A printed EAN-8/UPC-A/EAN-13/GTIN-14 (digit groups may be spaced) whose check digit is right."""
    for match in _PRINTED_CODE.finditer(normalise(text)):
        digits = re.sub(r"\s", "", match.group(1))
        if has_valid_check_digit(digits):
            return digits
    return None


def find_sku(lines: list[Line]) -> Found[str] | None:
    """A labelled stock-keeping code ("SKU: AB-1234", "Item code 5531"); it must contain a digit."""
    for index, line in enumerate(lines):
        match = _SKU.search(normalise(line.text))
        if match and any(c.isdigit() for c in match.group("sku")):
            return Found(match.group("sku").rstrip(".-/"), line.confidence * 0.85, index)
    return None


def find_expiry(lines: list[Line], barcodes: list[Barcode]) -> Found[str] | None:
    """The expiry date: GS1 AI 17, else an EXP/BB/USE BY-labelled date, else the latest unlabelled date."""
    from_code = _gs1_expiry(barcodes)
    if from_code is not None:
        return from_code
    unlabelled: list[Found[str]] = []
    for index, line in enumerate(lines):
        norm = normalise(line.text)
        for match in find_dates(line.text):
            label = match.label or label_of_previous(lines, index)
            if label == "expiry":
                return Found(match.iso, line.confidence * 0.9, index)
            explicit = match.precision == "day" or re.search(r"\d{4}|[^\W\d_]", norm[match.start : match.end])
            if label is None and explicit:
                unlabelled.append(Found(match.iso, line.confidence * 0.5, index))
    return max(unlabelled, key=lambda f: f.value) if unlabelled else None


def _gs1_expiry(barcodes: list[Barcode]) -> Found[str] | None:
    for code in barcodes:
        iso = gs1_date(code.gs1.get("17", "")) if code.gs1 else None
        if iso is not None:
            return Found(iso, code.confidence * 0.98, -1)
    return None


def _decoded_code(barcodes: list[Barcode]) -> Found[str] | None:
    for code in barcodes:
        if code.gs1 and code.gs1.get("01"):
            return Found(code.gs1["01"], code.confidence, -1)
    ranked = sorted(barcodes, key=lambda b: (b.type.upper() not in _PRODUCT_FORMATS, -b.confidence))
    for code in ranked:
        if code.value and not re.match(r"^[a-z]+://", code.value, re.IGNORECASE):
            return Found(code.value, code.confidence * (1.0 if code.type.upper() in _PRODUCT_FORMATS else 0.8), -1)
    return None


def _find_quantities(lines: list[Line]) -> list[_Quantity]:
    found: list[_Quantity] = []
    for index, line in enumerate(lines):
        for match in _QUANTITY.finditer(normalise(line.text)):
            value = parse_number(match.group("num"))
            if value is not None and value > 0:
                unit = _UNITS[match.group("unit").lower()]
                found.append(_Quantity(value, unit, index, match.start(), match.end()))
    return found


def _best_quantity(lines: list[Line], quantities: list[_Quantity]) -> Found[_Quantity] | None:
    """A net-content-labelled quantity first, else the one printed biggest."""
    if not quantities:
        return None
    labelled = [q for q in quantities if _NET_LABEL.search(lines[q.index].text)]
    if labelled:
        return Found(labelled[0], lines[labelled[0].index].confidence * 0.9, labelled[0].index)
    best = max(quantities, key=lambda q: (lines[q.index].bounding_box.height, -q.index))
    return Found(best, lines[best.index].confidence * 0.75, best.index)


def _inside_quantity(quantities: list[_Quantity], index: int, amount: Amount) -> bool:
    return any(q.index == index and q.start <= amount.start < q.end for q in quantities)


def _could_be_price(text: str, amount: Amount, keyword: bool) -> bool:
    if amount.value <= 0:
        return False
    if amount.currency is None and not keyword and _NOT_PRICE_LINE.search(text):
        return False
    digits = sum(c.isdigit() for c in normalise(text)[amount.start : amount.end])
    return amount.explicit or digits < _MAX_PRICE_DIGITS


def _is_bare_price_word(text: str) -> bool:
    return bool(_PRICE_WORD.search(text)) and not find_amounts(text)


def _is_name_like(text: str) -> bool:
    if letter_count(text) < 3 or digit_ratio(text) >= 0.5 or _NOT_NAME_LINE.search(text):
        return False
    if find_dates(text, month_year=False):
        return False
    stripped = _QUANTITY.sub(" ", normalise(text))
    for amount in find_amounts(stripped)[::-1]:
        if amount.currency is not None:
            stripped = stripped[: amount.start] + stripped[amount.end :]
    return letter_count(re.sub(r"(?i)\b(?:RM|TK|BDT|RS|USD|EUR)\b", " ", stripped)) >= 3


def _continues(first: Line, second: Line) -> bool:
    """True when `second` is a same-size line right under `first` (a name printed on two lines)."""
    a, b = first.bounding_box, second.bounding_box
    similar = min(a.height, b.height) >= 0.85 * max(a.height, b.height)
    gap = b.y - (a.y + a.height)
    overlap = min(a.x + a.width, b.x + b.width) - max(a.x, b.x)
    return similar and 0 <= gap < 0.6 * a.height and overlap > 0
