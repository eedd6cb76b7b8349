"""Receipt fields: merchant, address, date, total, tax, currency and item rows.

Receipts are read as a page of lines with boxes: a label ("TOTAL", "CHANGE") and its amount are often separate
lines on one visual row, so amounts are looked up beside their label by geometry, not by reading order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_node.pipeline.extract import layout
from edge_node.pipeline.extract.dates import find_dates
from edge_node.pipeline.extract.layout import Found
from edge_node.pipeline.extract.money import document_currency, find_amounts
from edge_node.pipeline.extract.numerals import digit_ratio, letter_count, to_ascii_digits
from shared_models.ocr import Line, LineItem, StructuredFields

# Total labels and how sure each makes us: a grand/rounded/net total is the amount paid; a plain TOTAL usually
# is; a subtotal only when nothing better exists.
_TOTAL_RULES: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(p, re.IGNORECASE), weight)
    for p, weight in (
        (r"ROUNDED|GRAND\s*TOTAL|NETT?\s*TOTAL|NET\s*AMO?U?N?T|(?:AMOUNT|AMT|BALANCE|TOTAL)\s*DUE|PAYABLE|"
         r"INCL(?:USIVE|\.|\b)|TOTAL\s*AMO?U?N?T|TOTAL\s*WITH|TOTAL\s*:?\s*(?:RM|TK|BDT|\$)|সর্বমোট|মোট\s*প্রদেয়", 3),
        (r"TOTAL|মোট|TTL", 2),
        (r"SUB\s*-?\s*TOTAL|GROSS", 1),
    )
)  # fmt: skip
# Labels that contain TOTAL but are not the amount paid: counts, tax lines, pre-tax figures, money handed over.
_NOT_TOTAL = re.compile(
    r"TOTAL\s*(?:QTY|QUANTITY|ITEMS?|POINTS?|SAVINGS?|DISC\w*|GST|TAX|VAT|SST|PAYMENT|TENDER\w*|PAID|WEIGHT|"
    r"NO\b|UNITS?|PCS)|EXCL|EXCLUDING|EXCLUSIVE|INCLUDES|(?:TAX|GST|VAT|SST)\s*(?:TOTAL|PAYABLE)|ACCEPT|NO\.?\s*OF\s*ITEMS",
    re.IGNORECASE,
)
# Money handed over and change given back: their difference is the total of a cash sale.
_TENDERED = re.compile(r"CASH|TENDER|PAID|PAYMENT|RECEIVED|ACCEPT|\bVISA\b|\bMASTER\b|\bCARD\b|নগদ", re.IGNORECASE)
_CHANGE = re.compile(r"CHANGE|BAKI|ফেরত", re.IGNORECASE)
# Rounding adjustments: a total plus the adjustment is the rounded total that was actually paid.
_ROUNDING = re.compile(r"ROUND", re.IGNORECASE)
# Tax amount labels, and the lines that mention tax but carry an id, a code or a summary header instead.
_TAX = re.compile(r"GST|VAT|\bTAX|SST|SVR|SERVICE\s*TAX|ভ্যাট|কর\b", re.IGNORECASE)
_NOT_TAX = re.compile(
    r"\bID\b|\bNO\b|REG|INVOICE|CODE|SUMMARY|ANALYSIS|EXCL|INFO|RELIEF|RATE|\bAMT\b(?!\s*:)|TAX\s*\(RM\)|"
    r"TAX/AMT|TAX\s*AMOUNT",
    re.IGNORECASE,
)
# Once a tax summary table starts, its "TOTAL" rows are tax bases, not the amount paid.
_SUMMARY = re.compile(r"(?:GST|TAX|VAT)\s*(?:SUMMARY|ANALYSIS)|SUMMARY\s*:", re.IGNORECASE)
# Rows from here down are totals, taxes and payment, not items.
_ITEMS_END = re.compile(
    r"TOTAL|SUB\s*-?\s*TOTAL|মোট|ROUNDING|GROSS|\bNET\b|\bGST\b|\bTAX\b|\bCASH\b|ITEM\s*(?:COUNT|\(S\))|NO\.?\s*OF\s*ITEMS",
    re.IGNORECASE,
)
# The column header above the item rows.
_ITEM_HEADER = re.compile(r"\b(?:ITEM|QTY|DESCRIPTION|DESC|PRODUCT)\b|বিবরণ", re.IGNORECASE)
# Legal-entity words that mark a line as the company name; the name ends with the last of them.
_COMPANY = re.compile(
    r"(?<![A-Z])(?:SDN\.?\s*BHD\.?|S/B|BHD\.?|BERHAD|ENTERPRISES?|TRADING|COMPANY|CO\.(?!\s*(?:NO|REG))|LTD\.?|"
    r"LIMITED|PLC|INC\.|LLC|CORP(?:ORATION)?\.?|PTE)(?![A-Z])|লিমিটেড|লিঃ",
    re.IGNORECASE,
)
# Words that open a company name ("SYARIKAT ..." is Malay for "company"): the name runs to the line's end.
_COMPANY_PREFIX = re.compile(r"^\s*(?:SYARIKAT|PERNIAGAAN|KEDAI|M/S\.?|MESSRS\.?)\s", re.IGNORECASE)
# Generic trade words: a company line made only of these ("RESTAURANT SDN BHD") continues the line above.
_TRADE_WORDS = frozenset({
    "RESTAURANT", "RESTAURANTS", "RESTORAN", "STATIONERY", "HARDWARE", "PHARMACY", "TRADING", "MARKETING",
    "HOLDINGS", "GROUP", "INTERNATIONAL", "INDUSTRIES", "FOOD", "FOODS", "SERVICE", "SERVICES", "STORE", "STORES",
    "SUPERMARKET", "MART", "BAKERY", "CAFE", "ENTERPRISE", "ENTERPRISES", "ELECTRONICS", "TEXTILE", "TEXTILES",
    "(M)", "&", "AND",
})  # fmt: skip
# Lines that are never the shop's name: courtesy text, document titles, POS labels.
_BOILERPLATE = re.compile(
    r"THANK|PLEASE|COME\s*AGAIN|WELCOME|GOODS\s*SOLD|RETURN|REFUND|EXCHANGE|RECEIPT|INVOICE|CASH\s*(?:SALE|BILL)|"
    r"POSTED|\bCOPY\b|DUPLICATE|REPRINT|SURVEY|FEEDBACK|VOUCHER|\bPOINTS\b|\bMEMBER\b|\bSERVED\b|\bBILL\b|"
    r"\bORDER\b|\bTABLE\b|CASHIER|\bMACHINE\b|\bCOUNTER\b|SALESPERSON|TERMINAL|\bDATE\b|\bTIME\b|"
    r"ধন্যবাদ|রসিদ|চালান",
    re.IGNORECASE,
)
# Contact details and registration numbers: they follow the name but are not part of it.
_CONTACT_OR_ID = re.compile(
    r"TEL\b|TEL[:.]|FAX|PHONE|H/?P\b|MOBILE|HOTLINE|E-?MAIL|WWW|HTTP|\.COM|@|GST|VAT|\bSST|\bTIN\b|\bBIN\b|REG\b|"
    r"REG\.|ROC\b|BRN\b|CO\.?\s*NO|COMPANY\s*NO|\bID\b|\bNO\s*[:.]?\s*:|মোবাইল|ফোন",
    re.IGNORECASE,
)
# Street words, postcodes and "12, ..." house numbers (Malaysian and Bangladeshi addresses).
_ADDRESS = re.compile(
    r"JALAN|\bJLN\b|LORONG|\bLRG\b|TAMAN|\bTMN\b|ROAD|\bRD\b|STREET|AVENUE|\bLOT\b|LEVEL|FLOOR|BLOCK|\bBLK\b|"
    r"KAWASAN|BANDAR|SEKSYEN|SECTION|PERSIARAN|(?<!\d)\d{5}(?!\d)|KUALA\s*LUMPUR|SELANGOR|JOHOR|DHAKA|"
    r"^\s*(?:NO\.?\s*)?\d+[A-Z/-]*\s*,|ঢাকা|রোড|সড়ক",
    re.IGNORECASE,
)
# How far down the page the shop's name may be looked for, in meaningful lines.
_MERCHANT_WINDOW = 6
# Registration numbers printed in brackets after a name: "(519537-X)", "(CO. NO:20154-T)", "<484297-M>".
_ID_IN_BRACKETS = re.compile(r"[(<\[][^)>\]]*\d[^)>\]]*[)>\]]?")
# Quantity notation in an item row: "2 X 95.00", "3 @ 1.50", "x2".
_QTY_X = re.compile(r"(?<![\d.])(\d{1,3})\s*[xX@*]\s*(?:RM\s*)?\d|[xX]\s*(\d{1,3})(?![\d.])")
# Two amounts within half a cent are the same amount (floats from printed two-decimal figures).
_CENT = 0.005
# How sure a total is by its label's weight (see _TOTAL_RULES) before any cross-check.
_WEIGHT_CERTAINTY = {3: 0.95, 2: 0.9, 1: 0.7}


@dataclass(frozen=True)
class _Candidate:
    value: float
    score: float
    index: int
    certainty: float


def extract_receipt(lines: list[Line]) -> StructuredFields:
    """Structured fields of a receipt from its lines in reading order."""
    fields = StructuredFields()
    conf: dict[str, float] = {}
    merchant = find_merchant(lines)
    if merchant is not None:
        fields.merchant = merchant.value
        conf["merchant"] = merchant.confidence
        address = find_address(lines, merchant.index)
        if address is not None:
            fields.address = address.value
            conf["address"] = address.confidence
    when = find_receipt_date(lines)
    if when is not None:
        fields.date, conf["date"] = when.value, when.confidence
    fields.items = find_items(lines)
    total = find_total(lines, fields.items)
    if total is not None:
        fields.total, conf["total"] = total.value, total.confidence
    tax = find_tax(lines, fields.total)
    if tax is not None:
        fields.tax, conf["tax"] = tax.value, tax.confidence
    fields.currency = document_currency(line.text for line in lines)
    if fields.currency is not None:
        conf["currency"] = 0.8
    if fields.items:
        conf["items"] = 0.5
    fields.confidence = {key: round(value, 3) for key, value in conf.items()}
    return fields


def find_merchant(lines: list[Line]) -> Found[str] | None:
    """The shop or company name: the first company-like line near the top, else the first meaningful line."""
    meaningful = [i for i, line in enumerate(lines) if _is_name_like(line.text)][:_MERCHANT_WINDOW]
    if not meaningful:
        return None
    for i in meaningful:
        name = _ID_IN_BRACKETS.sub(" ", lines[i].text)
        suffixes = list(_COMPANY.finditer(name))
        if _COMPANY_PREFIX.match(name) and not suffixes:
            return Found(_clean_name(name), lines[i].confidence * 0.9, i)
        if not suffixes:
            continue
        name = name[: suffixes[-1].end()]
        own_words = [w for w in _COMPANY.sub(" ", name).upper().split() if w not in _TRADE_WORDS]
        if len(own_words) == 0 and i > 0 and i - 1 in meaningful and not _COMPANY.search(lines[i - 1].text):
            name = f"{lines[i - 1].text} {name}"
        return Found(_clean_name(name), lines[i].confidence * 0.9, i)
    first = meaningful[0]
    return Found(_clean_name(_ID_IN_BRACKETS.sub(" ", lines[first].text)), lines[first].confidence * 0.7, first)


def find_address(lines: list[Line], after: int) -> Found[str] | None:
    """The address block under the name: consecutive address-like lines, stopping at contacts and ids."""
    parts: list[str] = []
    confidences: list[float] = []
    for index in range(after + 1, min(len(lines), after + 8)):
        text = lines[index].text
        if _CONTACT_OR_ID.search(text) or _BOILERPLATE.search(text) or find_dates(text, month_year=False):
            if parts:
                break
            continue
        if _ADDRESS.search(text) or (parts and letter_count(text) >= 3):
            parts.append(_clean_name(text))
            confidences.append(lines[index].confidence)
        elif parts:
            break
    if not parts:
        return None
    return Found(" ".join(parts), min(confidences) * 0.75, after + 1)


def _is_name_like(text: str) -> bool:
    stripped = _ID_IN_BRACKETS.sub(" ", text)
    if letter_count(stripped) < 3 or digit_ratio(stripped) >= 0.5:
        return False
    if _BOILERPLATE.search(text) or _CONTACT_OR_ID.search(stripped) or find_dates(text, month_year=False):
        return False
    return bool(_COMPANY.search(stripped)) or not _ADDRESS.search(text)


def _clean_name(text: str) -> str:
    return " ".join(text.split()).strip(" ,;:-")


def find_receipt_date(
    lines: list[Line], labels: tuple[str, ...] = ("date",), *, fallback: bool = True
) -> Found[str] | None:
    """The document date: a full date next to one of `labels`, else (with `fallback`) the first full date."""
    first: Found[str] | None = None
    for index, line in enumerate(lines):
        for match in find_dates(line.text, month_year=False):
            label = match.label or layout.label_of_previous(lines, index)
            if label in labels:
                return Found(match.iso, line.confidence * 0.95, index)
            if fallback and first is None and label not in ("expiry", "due"):
                first = Found(match.iso, line.confidence * 0.8, index)
    return first


def find_total(lines: list[Line], items: list[LineItem] | None = None) -> Found[float] | None:
    """The amount paid, from TOTAL-like labels cross-checked with cash minus change, rounding and item sums."""
    evidence = _collect_totals(lines)
    prices = [i.price for i in items or [] if i.price is not None]
    item_sum = round(sum(prices), 2) if prices else None
    values = [c.value for c in evidence.candidates]
    best: _Candidate | None = None
    for cand in evidence.candidates:
        score = cand.score
        if evidence.paid is not None and abs(cand.value - evidence.paid) < _CENT:
            score += 8
        if any(abs(other + r - cand.value) < _CENT for other in values for r in evidence.roundings if r):
            score += 12  # the rounded figure of another total supersedes it, whatever its label
        if item_sum is not None and abs(cand.value - item_sum) < _CENT:
            score += 2
        if cand.value < max(values) * 0.5 or (prices and cand.value < max(prices)):
            score -= 4  # a total is not much smaller than other totals, nor smaller than one item
        score += cand.index / (10 * len(lines))  # later wins a tie: the final figure is printed last
        if best is None or score > best.score:
            best = _Candidate(cand.value, score, cand.index, cand.certainty)
    if best is not None:
        # Cash minus change agreeing with the labelled total leaves little doubt.
        validated = evidence.paid is not None and abs(best.value - evidence.paid) < _CENT
        return Found(best.value, lines[best.index].confidence if validated else best.certainty, best.index)
    if evidence.paid is not None and evidence.paid > 0:
        return Found(round(evidence.paid, 2), 0.6, -1)
    return _largest_amount(lines, evidence.summary_start)


@dataclass
class _TotalEvidence:
    candidates: list[_Candidate]
    roundings: list[float]
    paid: float | None
    summary_start: int


def _collect_totals(lines: list[Line]) -> _TotalEvidence:
    """Labelled total candidates, rounding adjustments, and tendered minus change."""
    summary_start = next((i for i, line in enumerate(lines) if _SUMMARY.search(line.text)), len(lines))
    evidence = _TotalEvidence([], [], None, summary_start)
    tendered: float | None = None
    change: float | None = None
    for index, line in enumerate(lines):
        text = line.text
        if _ROUNDING.search(text) and not _NOT_TOTAL.search(text):
            beside = layout.amount_beside(lines, index)
            if beside is not None:
                evidence.roundings.append(beside.value)
        weight = _total_weight(text)
        if weight and not _CHANGE.search(text):
            beside = layout.amount_beside(lines, index, require_money=True, below=True)
            if beside is not None and beside.value > 0:
                penalty = 6.0 if index > summary_start else 0.0
                certainty = _WEIGHT_CERTAINTY[weight] * line.confidence
                evidence.candidates.append(_Candidate(beside.value, weight * 10 - penalty, index, certainty))
        elif _CHANGE.search(text) and change is None:
            found = layout.amount_beside(lines, index, require_money=True)
            change = found.value if found is not None else None
        elif _TENDERED.search(text) and tendered is None and index < summary_start:
            found = layout.amount_beside(lines, index, require_money=True)
            tendered = found.value if found is not None else None
    if tendered is not None and change is not None and tendered >= change >= 0:
        evidence.paid = tendered - change
    return evidence


def _largest_amount(lines: list[Line], summary_start: int) -> Found[float] | None:
    """Last resort: the largest money amount above the tax summary, away from payment and change rows."""
    payment_rows = [ln for ln in lines if _TENDERED.search(ln.text) or _CHANGE.search(ln.text)]
    best: Found[float] | None = None
    for index, line in enumerate(lines[:summary_start]):
        if any(layout.same_row(line, other) for other in payment_rows):
            continue
        for amount in find_amounts(line.text):
            if amount.explicit and amount.value > 0 and (best is None or amount.value > best.value):
                best = Found(amount.value, line.confidence * 0.4, index)
    return best


def find_tax(lines: list[Line], total: float | None) -> Found[float] | None:
    """The tax charged: an amount beside a GST/VAT/TAX/SST label, below the total, outside the tax summary."""
    summary_start = next((i for i, line in enumerate(lines) if _SUMMARY.search(line.text)), len(lines))
    fallback: Found[float] | None = None
    for index, line in enumerate(lines):
        if not _TAX.search(line.text) or _NOT_TAX.search(line.text) or _total_weight(line.text):
            continue
        if index < summary_start:
            beside = layout.amount_beside(lines, index, require_money=True)
        else:  # summary rows read "code, rate, base, tax": the tax is the rightmost column
            beside = layout.rightmost_amount(lines, index)
        if beside is None or beside.value < 0 or (total is not None and beside.value >= total):
            continue
        if index < summary_start:
            return Found(beside.value, line.confidence * 0.85, index)
        fallback = fallback or Found(beside.value, line.confidence * 0.6, index)
    return fallback


def find_items(lines: list[Line]) -> list[LineItem]:
    """Item rows between the column header and the first total-like row: name, quantity, price."""
    header = next((line for line in lines if _ITEM_HEADER.search(line.text)), None)
    if header is None:
        return []
    top = header.bounding_box.y + header.bounding_box.height
    below = [ln for ln in lines if _centre_y(ln) > top and not layout.same_row(ln, header)]
    bottom = min((ln.bounding_box.y for ln in below if _ITEMS_END.search(ln.text)), default=float("inf"))
    items: list[LineItem] = []
    pending_name: str | None = None
    pending_price: tuple[float, float | None] | None = None
    for row in layout.rows([ln for ln in below if _centre_y(ln) < bottom]):
        names = [ln.text.strip() for ln in row if letter_count(ln.text) >= 3 and digit_ratio(ln.text) < 0.5]
        prices = [a for ln in row for a in find_amounts(ln.text) if a.decimals == 2 and a.value > 0]
        quantity = _quantity(row)
        if names and prices:
            items.append(LineItem(name=" ".join(names), quantity=quantity, price=prices[-1].value))
            pending_name, pending_price = None, None
        elif prices and pending_name:
            items.append(LineItem(name=pending_name, quantity=quantity, price=prices[-1].value))
            pending_name = None
        elif prices:
            pending_price = (prices[-1].value, quantity)
        elif names and pending_price:
            items.append(LineItem(name=" ".join(names), quantity=pending_price[1], price=pending_price[0]))
            pending_price = None
        elif names:
            pending_name = " ".join(names)
    return items


def _centre_y(line: Line) -> float:
    return line.bounding_box.y + line.bounding_box.height / 2


def _quantity(row: list[Line]) -> float | None:
    """The quantity of an item row: "2 X 9.50", "x2", or a bare small integer column left of the price."""
    for line in row:
        match = _QTY_X.search(line.text)
        if match:
            return float(match.group(1) or match.group(2))
    counts = [ln for ln in row if re.fullmatch(r"\s*\d{1,3}\s*", to_ascii_digits(ln.text))]
    return float(to_ascii_digits(counts[-1].text)) if counts else None


def _total_weight(text: str) -> int:
    if _NOT_TOTAL.search(text):
        return 0
    for pattern, weight in _TOTAL_RULES:
        if pattern.search(text):
            return weight
    return 0
