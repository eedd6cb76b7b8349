"""Barcodes and 2-D codes in one photo: zxing-cpp first, zbar as a second opinion, bounded retries.

At a shop till a misread is worse than no read, so every value is voted on before it is returned:

* First pass: zxing-cpp and zbar on the grayscale photo (downscaled when huge). zxing-cpp's reads stand alone (it
  already demands agreeing scan lines and a valid check digit); a zbar read stands alone only for codes whose own
  error detection is strong (2-D codes, Code 128). zbar QR payloads that are not ASCII are ignored: zbar guesses
  their character set and gets Shift_JIS and Latin-1 wrong.
* Retries, only when the photo itself gave nothing (or only a book's price code): the full resolution (if the
  first pass was downscaled); then the regions where OpenCV's localiser sees bars (`barcode_regions`), cut out with
  CLAHE, upscaled, and both, stopping as soon as a code is accepted; then the whole photo upscaled to about 1 MP,
  with CLAHE contrast, and both. A linear code seen only in retries needs votes from several reads:
  zxing-cpp twice, or zxing-cpp and zbar, or zbar three times.
* Different values read over the same spot conflict: the value with more votes wins, a tie drops both.
* EAN/UPC values must pass their check digit and are given as zxing presents them: UPC-A as 12 digits, UPC-E as 8,
  EAN-13 as 13, EAN-8 as 8. Other payloads are kept as decoded (zxing-cpp ``TextMode.Plain``: GS stays GS).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar
from pyzbar.pyzbar import ZBarSymbol

from edge_node.pipeline.barcode_regions import barcode_regions
from edge_node.pipeline.extract.gs1 import Gs1Error, gtin_check_digit_ok, parse_gs1, upca_to_upce, upce_to_upca
from shared_models.ocr import Barcode, BoundingBox

DECODER_ZXING = "zxing-cpp"
DECODER_ZBAR = "zbar"

# First pass on at most this many pixels (about 1320 x 990): still over 3 px per module for an EAN-13 a quarter as
# wide as a 12 MP photo, and both decoders together stay near 50 ms even on a busy shelf photo (their cost grows
# with area and texture). The full resolution is tried when nothing was found.
FIRST_PASS_MAX_PIXELS = 1_300_000
# Retries upscale small photos x2 (codes under ~2 px per module are where both decoders give up)...
UPSCALE_FACTOR = 2.0
# ...but to no more than this many pixels (time grows with area: a 640x480 photo gets x1.8), and not at all when
# the gain would be under 1.25x.
UPSCALE_MAX_PIXELS = 1_000_000
MIN_UPSCALE = 1.25
# CLAHE evens out glare and shadows without the ringing of sharpening (which produced misreads when measured).
CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)
# Votes per read: zxing-cpp counts double (on the bench it misread far less often than zbar did).
ZXING_VOTES = 2
ZBAR_VOTES = 1
# A linear code seen only in retries needs this many votes: zxing twice, or zxing and zbar, or zbar three times.
MIN_RETRY_VOTES = 3
# A value seen only in retries never looks as sure as a first-pass zxing-cpp read (0.9).
RETRY_CONFIDENCE_CAP = 0.85
# Boxes are grown by this share of their size (plus a pixel margin) before testing whether two reads overlap.
OVERLAP_GROW = 0.05
OVERLAP_MARGIN_PX = 4.0

# zxing-cpp format name -> the zxing (Java) name the API uses; results in other formats are ignored.
_ZXING_NAMES = {
    "Aztec": "AZTEC", "AztecCode": "AZTEC", "Codabar": "CODABAR", "Code39": "CODE_39", "Code39Std": "CODE_39",
    "Code39Ext": "CODE_39", "Code93": "CODE_93", "Code128": "CODE_128", "DataBar": "DATABAR",
    "DataBarOmni": "DATABAR", "DataBarStk": "DATABAR", "DataBarStkOmni": "DATABAR", "DataBarLtd": "DATABAR_LIMITED",
    "DataBarLimited": "DATABAR_LIMITED", "DataBarExp": "DATABAR_EXPANDED", "DataBarExpStk": "DATABAR_EXPANDED",
    "DataBarExpanded": "DATABAR_EXPANDED", "DataMatrix": "DATA_MATRIX", "EAN8": "EAN_8", "EAN13": "EAN_13",
    "ISBN": "EAN_13", "UPCA": "UPC_A", "UPCE": "UPC_E", "ITF": "ITF", "ITF14": "ITF", "MaxiCode": "MAXICODE",
    "PDF417": "PDF_417", "CompactPDF417": "PDF_417", "MicroPDF417": "MICRO_PDF_417", "QRCode": "QR_CODE",
    "QRCodeModel1": "QR_CODE", "QRCodeModel2": "QR_CODE", "MicroQRCode": "MICRO_QR_CODE", "RMQRCode": "RMQR_CODE",
}
_ZXING_FORMATS = zxingcpp.barcode_formats_from_str(
    "Aztec,Codabar,Code39,Code93,Code128,DataBar,DataBarExpanded,DataBarLimited,DataMatrix,EAN8,EAN13,UPCA,UPCE,"
    "ITF,MaxiCode,PDF417,QRCode,MicroQRCode,RMQRCode"
)
# zbar symbologies to enable. DataBar is left to zxing-cpp (zbar's decoder prints assertion noise on stderr), and
# so is PDF417 (zbar's is incomplete). Enabling UPC-A/UPC-E makes zbar report them as such, not as EAN-13.
_ZBAR_NAMES = {
    ZBarSymbol.EAN13: "EAN_13", ZBarSymbol.EAN8: "EAN_8", ZBarSymbol.UPCA: "UPC_A", ZBarSymbol.UPCE: "UPC_E",
    ZBarSymbol.CODE128: "CODE_128", ZBarSymbol.CODE39: "CODE_39", ZBarSymbol.CODE93: "CODE_93",
    ZBarSymbol.I25: "ITF", ZBarSymbol.CODABAR: "CODABAR", ZBarSymbol.QRCODE: "QR_CODE",
}
_ZBAR_SYMBOLS = list(_ZBAR_NAMES)
_ZBAR_TYPES = {symbol.name: name for symbol, name in _ZBAR_NAMES.items()}
# Lengths of the EAN/UPC family, whose last digit is a check digit.
_RETAIL_LENGTHS = {"EAN_13": 13, "EAN_8": 8, "UPC_A": 12, "UPC_E": 8}
# 2-D codes carry Reed-Solomon error correction: one read is enough.
_MATRIX_KINDS = frozenset({"QR_CODE", "MICRO_QR_CODE", "RMQR_CODE", "DATA_MATRIX", "AZTEC", "PDF_417",
                           "MICRO_PDF_417", "MAXICODE"})
# Linear codes whose checksum is strong enough to trust a single first-pass read from either decoder.
_STRONG_LINEAR_KINDS = frozenset({"CODE_128"})
# Japanese books print a second EAN-13 (prefix 191/192: classification and price) under the ISBN; it is not the
# product's key, so it is dropped when the ISBN (978/979) was read too.
_BOOK_PREFIXES = ("978", "979")
_BOOK_COMPANION_PREFIXES = ("191", "192")

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the input image

# With `parallel=True`, zbar reads each attempt on a thread of this pool while zxing-cpp reads it on the caller's
# (both release the GIL): a barcode-only request takes the longer of the two instead of their sum. The reads are
# merged in the same order as when run one after the other, so the result is the same.
_zbar_pool: Executor | None = None
_zbar_pool_lock = threading.Lock()


def _zbar_executor() -> Executor:
    global _zbar_pool
    with _zbar_pool_lock:
        if _zbar_pool is None:
            _zbar_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="zbar")
        return _zbar_pool


@dataclass(frozen=True)
class _Attempt:
    """One image to decode: ``image`` pixels divided by ``scale`` are input pixels."""

    index: int
    image: np.ndarray
    scale: float
    primary: bool  # the photo itself (reads stand alone), not an enhanced copy
    zxing_downscale: bool = True
    zxing_invert: bool = True
    use_zbar: bool = True
    origin: tuple[float, float] = (0.0, 0.0)  # where the image's (0, 0) lies in the input, in input pixels
    checkpoint: bool = False  # stop after this attempt when a code was accepted (else go on to the next ones)


@dataclass(frozen=True)
class _Read:
    """One decoder's reading of one code in one attempt."""

    kind: str
    value: str
    box: Box
    decoder: str
    attempt: int
    primary: bool
    gs1: dict[str, str] | None = None


@dataclass
class _Candidate:
    """All reads of one (kind, value)."""

    kind: str
    value: str
    reads: list[_Read] = field(default_factory=list)

    @property
    def votes(self) -> int:
        """Votes over distinct (attempt, decoder) pairs."""
        seen = {(r.attempt, r.decoder) for r in self.reads}
        return sum(ZXING_VOTES if decoder == DECODER_ZXING else ZBAR_VOTES for _, decoder in seen)

    @property
    def decoders(self) -> set[str]:
        """Decoders that produced this value."""
        return {r.decoder for r in self.reads}

    def stands_alone(self) -> bool:
        """True when this value needs no further read to back it (rival values are checked separately)."""
        if self.kind in _MATRIX_KINDS:
            return True
        if any(r.primary and (r.decoder == DECODER_ZXING or self.kind in _STRONG_LINEAR_KINDS) for r in self.reads):
            return True
        return self.votes >= MIN_RETRY_VOTES


def read_barcodes(image: np.ndarray, parallel: bool = False, retries: bool = True) -> list[Barcode]:
    """Decode every barcode and 2-D code in an RGB (or grayscale) uint8 photo; [] when none is readable.

    `parallel`: run zbar beside zxing-cpp on another thread (same result, less latency when a core is free; the
    pipeline asks for it when barcodes are all a request wants). `retries=False`: the first pass only (the photo
    itself, at full resolution too when it was downscaled), for documents whose codes are printed crisp.
    Raises ValueError for an array that is not an image.
    """
    gray = _to_gray(image)
    candidates: dict[tuple[str, str], _Candidate] = {}
    accepted: list[tuple[_Candidate, bool]] = []
    for attempt in _attempts(gray, retries):
        for read in _decode(attempt, parallel):
            candidates.setdefault((read.kind, read.value), _Candidate(read.kind, read.value)).reads.append(read)
        accepted = _accept(list(candidates.values()))
        if attempt.checkpoint and accepted and not all(_is_book_companion(cand) for cand, _ in accepted):
            break  # found; a lone book companion code makes the ISBN worth the retries
    return [_to_model(cand, conflicted, gray.shape) for cand, conflicted in accepted]


def _to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale uint8, C-contiguous."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        raise ValueError("expected a non-empty uint8 numpy image")
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    raise ValueError(f"expected an H x W x 3 RGB image, got shape {image.shape}")


def _resize(gray: np.ndarray, factor: float) -> np.ndarray:
    """Resize by ``factor``: area averaging when shrinking, bicubic when growing."""
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interpolation)


def _attempts(gray: np.ndarray, retries: bool = True) -> Iterator[_Attempt]:
    """The first pass, then (with `retries`) the retries, built lazily so that a first-pass hit costs nothing
    more."""
    scale = min(1.0, math.sqrt(FIRST_PASS_MAX_PIXELS / gray.size))
    base = _resize(gray, scale) if scale < 1.0 else gray
    yield _Attempt(0, base, scale, primary=True, checkpoint=True)
    index = 1
    if scale < 1.0:
        # zxing-cpp alone, upright scans only (the first pass tried inverted and downscaled ones): at 8 MP this is
        # still ~150 ms, zbar would add as much again.
        yield _Attempt(index, gray, 1.0, primary=True, zxing_downscale=False, zxing_invert=False, use_zbar=False,
                       checkpoint=True)
        index += 1
    if not retries:
        return
    for attempt in _region_attempts(base, scale, index):
        yield attempt
        index = attempt.index + 1
    up = min(UPSCALE_FACTOR, math.sqrt(UPSCALE_MAX_PIXELS / base.size))
    upscaled = _resize(base, up) if up >= MIN_UPSCALE else None
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    # Retries skip zxing-cpp's inverted and downscaled scans (the first pass did them), and zbar skips the plain
    # upscale: measured, it added one image for about a quarter of the retry time.
    if upscaled is not None:
        yield _Attempt(index, upscaled, scale * up, primary=False, zxing_downscale=False, zxing_invert=False,
                       use_zbar=False)
    yield _Attempt(index + 1, clahe.apply(base), scale, primary=False, zxing_invert=False)
    if upscaled is not None:
        yield _Attempt(index + 2, clahe.apply(upscaled), scale * up, primary=False, zxing_downscale=False,
                       zxing_invert=False)


def _region_attempts(base: np.ndarray, scale: float, first_index: int) -> Iterator[_Attempt]:
    """Retries on the regions where OpenCV's localiser sees bars (`barcode_regions`): each cut out with CLAHE, then
    upscaled (to at most UPSCALE_MAX_PIXELS) without and with it, cheapest first, stopping at the first attempt
    after which a code is accepted. Cheaper than the whole-photo retries and better on a small code; when they find
    nothing, the whole-photo retries follow."""
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    index = first_index
    for x0, y0, x1, y1 in barcode_regions(base):
        crop = np.ascontiguousarray(base[y0:y1, x0:x1])
        up = min(UPSCALE_FACTOR, math.sqrt(UPSCALE_MAX_PIXELS / crop.size))
        origin = (x0 / scale, y0 / scale)
        yield _Attempt(index, clahe.apply(crop), scale, primary=False, zxing_invert=False, origin=origin,
                       checkpoint=True)
        if up >= MIN_UPSCALE:
            upscaled = _resize(crop, up)
            yield _Attempt(index + 1, upscaled, scale * up, primary=False, zxing_downscale=False, zxing_invert=False,
                           use_zbar=False, origin=origin, checkpoint=True)
            yield _Attempt(index + 2, clahe.apply(upscaled), scale * up, primary=False, zxing_downscale=False,
                           zxing_invert=False, origin=origin, checkpoint=True)
        index += 3


def _decode(attempt: _Attempt, parallel: bool = False) -> list[_Read]:
    """Reads of both decoders on one attempt, in input-image coordinates (zxing-cpp's first, then zbar's)."""
    if not attempt.use_zbar:
        return _zxing_reads(attempt)
    if not parallel:
        return _zxing_reads(attempt) + _zbar_reads(attempt)
    zbar = _zbar_executor().submit(_zbar_reads, attempt)
    try:
        reads = _zxing_reads(attempt)
    finally:
        zbar_reads = zbar.result()  # also when zxing-cpp failed: never leave the attempt's image in use behind
    return reads + zbar_reads


def _zxing_reads(attempt: _Attempt) -> list[_Read]:
    """zxing-cpp reads, presented as zxing does, with failed EAN/UPC check digits dropped."""
    reads = []
    results = zxingcpp.read_barcodes(
        attempt.image, formats=_ZXING_FORMATS, try_rotate=True, try_invert=attempt.zxing_invert,
        try_downscale=attempt.zxing_downscale, text_mode=zxingcpp.TextMode.Plain,
    )
    for result in results:
        kind = _ZXING_NAMES.get(result.format.name)
        if kind is None:
            continue
        kind, value = _present(kind, result.text, result.extra)
        if value is None:
            continue
        pos = result.position
        corners = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
        xs = [attempt.origin[0] + p.x / attempt.scale for p in corners]
        ys = [attempt.origin[1] + p.y / attempt.scale for p in corners]
        gs1 = _gs1(value) if result.content_type == zxingcpp.ContentType.GS1 else None
        box = (min(xs), min(ys), max(xs) + 1, max(ys) + 1)
        reads.append(_Read(kind, value, box, DECODER_ZXING, attempt.index, attempt.primary, gs1))
    return reads


def _zbar_reads(attempt: _Attempt) -> list[_Read]:
    """zbar reads; QR payloads that are not plain ASCII are dropped (zbar guesses their character set)."""
    reads = []
    for symbol in pyzbar.decode(attempt.image, symbols=_ZBAR_SYMBOLS):
        kind = _ZBAR_TYPES.get(symbol.type)
        try:
            text = symbol.data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if kind is None or (kind == "QR_CODE" and not text.isascii()):
            continue
        kind, value = _present(kind, text, None)
        if value is None:
            continue
        left, top, width, height = symbol.rect
        ox, oy = attempt.origin
        box = (ox + left / attempt.scale, oy + top / attempt.scale, ox + (left + width + 1) / attempt.scale,
               oy + (top + height + 1) / attempt.scale)
        reads.append(_Read(kind, value, box, DECODER_ZBAR, attempt.index, attempt.primary))
    return reads


def _present(kind: str, text: str, extra: object) -> tuple[str, str | None]:
    """(kind, value) in zxing's presentation; value None when an EAN/UPC value is malformed or fails its check."""
    if kind in ("EAN_13", "UPC_A") and len(text) == 13 and text.startswith("0"):
        kind, text = "UPC_A", text[1:]  # UPC-A is an EAN-13 with a leading 0; zxing gives its 12 digits
    elif kind == "UPC_E" and len(text) != 8:
        short = extra.get("UPCE") if isinstance(extra, dict) else None
        text = short if isinstance(short, str) else (upca_to_upce(text[-12:]) or "")
    if kind not in _RETAIL_LENGTHS:
        return kind, text
    if len(text) != _RETAIL_LENGTHS[kind] or not text.isascii() or not text.isdigit():
        return kind, None
    full = upce_to_upca(text) if kind == "UPC_E" else text
    return kind, text if full is not None and gtin_check_digit_ok(full) else None


def _gs1(value: str) -> dict[str, str] | None:
    """GS1 element strings of a code flagged as GS1, or None when they do not parse."""
    try:
        return parse_gs1(value) or None
    except Gs1Error:
        return None


def _overlap(a: Box, b: Box) -> bool:
    """True when two boxes, grown a little, intersect."""
    def grow(box: Box) -> Box:
        dx = (box[2] - box[0]) * OVERLAP_GROW + OVERLAP_MARGIN_PX
        dy = (box[3] - box[1]) * OVERLAP_GROW + OVERLAP_MARGIN_PX
        return box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy

    ga, gb = grow(a), grow(b)
    return ga[0] < gb[2] and gb[0] < ga[2] and ga[1] < gb[3] and gb[1] < ga[3]


def _same_spot(a: _Candidate, b: _Candidate) -> bool:
    """True when some read of ``a`` overlaps some read of ``b``."""
    return any(_overlap(ra.box, rb.box) for ra in a.reads for rb in b.reads)


def _accept(candidates: list[_Candidate]) -> list[tuple[_Candidate, bool]]:
    """Candidates to return, each with whether a weaker different value was read over it."""
    accepted = []
    for cand in candidates:
        if not cand.stands_alone():
            continue
        rivals = [other for other in candidates if other is not cand and other.kind not in _MATRIX_KINDS
                  and cand.kind not in _MATRIX_KINDS and _same_spot(cand, other)]
        if any(other.votes >= cand.votes for other in rivals):
            continue
        accepted.append((cand, bool(rivals)))
    if any(c.kind == "EAN_13" and c.value.startswith(_BOOK_PREFIXES) for c, _ in accepted):
        accepted = [(c, r) for c, r in accepted if not _is_book_companion(c)]
    return accepted


def _is_book_companion(cand: _Candidate) -> bool:
    """True for the classification/price EAN-13 that Japanese books print under their ISBN."""
    return cand.kind == "EAN_13" and cand.value.startswith(_BOOK_COMPANION_PREFIXES)


def _confidence(cand: _Candidate, conflicted: bool) -> float:
    """0-1: highest when both decoders agree, lower for values seen only in retries or over a rival read."""
    both = len(cand.decoders) == 2
    if cand.kind in _MATRIX_KINDS:
        score = 0.99 if both else 0.95 if DECODER_ZXING in cand.decoders else 0.9
    elif any(r.primary and r.decoder == DECODER_ZXING for r in cand.reads):
        score = 0.98 if both else 0.9
    elif any(r.primary for r in cand.reads) and cand.kind in _STRONG_LINEAR_KINDS:
        score = 0.85
    else:
        score = min(RETRY_CONFIDENCE_CAP, 0.5 + 0.1 * cand.votes)
    return round(score * (0.8 if conflicted else 1.0), 3)


def _to_model(cand: _Candidate, conflicted: bool, shape: tuple[int, ...]) -> Barcode:
    """The API model; the box is the union of the reads from the first attempt that found the code, in the image."""
    first = min(r.attempt for r in cand.reads)
    boxes = [r.box for r in cand.reads if r.attempt == first]
    height, width = shape[0], shape[1]
    x = min(width - 1, max(0, int(min(b[0] for b in boxes))))
    y = min(height - 1, max(0, int(min(b[1] for b in boxes))))
    x1 = min(width, round(max(b[2] for b in boxes)))
    y1 = min(height, round(max(b[3] for b in boxes)))
    box = BoundingBox(x=x, y=y, width=max(1, x1 - x), height=max(1, y1 - y))
    best = sorted(cand.reads, key=lambda r: (r.attempt, r.decoder != DECODER_ZXING))[0]
    gs1 = next((r.gs1 for r in cand.reads if r.gs1), None)
    return Barcode(type=cand.kind, value=cand.value, confidence=_confidence(cand, conflicted),
                   bounding_box=box, decoder=best.decoder, gs1=gs1)
