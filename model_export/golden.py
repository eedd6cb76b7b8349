"""Golden self-test lines: short strings rendered like a shop's printed label, stored as PNG files in the bundle.

The exporter reads them with the finished bundle (through the node's own engine code) and records what it read as
each case's `expected` text; a node that loads the bundle must read them the same way (see
edge_node/engines/trocr_onnx.py). `source_text` keeps what was rendered, so a misreading shows at export time.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from model_export.errors import GoldenError

#: Upper case, digits and a decimal point: what trocr-*-printed (fine-tuned on SROIE receipts) reads best.
DEFAULT_GOLDEN: tuple[str, ...] = ("TOTAL 45.50", "MILK 1L 85.00", "RICE 5KG 420")
DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
#: Text height in pixels and the white margin around it: a tight crop, as the node's detector cuts lines.
FONT_SIZE = 32
MARGIN = 8
GOLDEN_DIR = "golden"


def _font(path: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    chosen = path or DEFAULT_FONT
    try:
        return ImageFont.truetype(str(chosen), size)
    except OSError as err:
        if path is not None:
            raise GoldenError(f"cannot load font {path}: {err}") from err
        return ImageFont.load_default(size)


def render_line(text: str, *, font: Path | None = None, size: int = FONT_SIZE) -> Image.Image:
    """Black text on white with a small margin, one line."""
    face = _font(font, size)
    left, top, right, bottom = face.getbbox(text)
    image = Image.new("RGB", (int(right - left) + 2 * MARGIN, int(bottom - top) + 2 * MARGIN), "white")
    ImageDraw.Draw(image).text((MARGIN - left, MARGIN - top), text, fill="black", font=face)
    return image


def write_golden(bundle: Path, texts: list[str] | tuple[str, ...], *, font: Path | None = None) -> list[str]:
    """Render each text into `bundle/golden/NN.png`; return the relative paths in order."""
    if any(not text.strip() for text in texts):
        raise GoldenError("a golden line must contain text")
    (bundle / GOLDEN_DIR).mkdir(parents=True, exist_ok=True)
    paths = []
    for number, text in enumerate(texts):
        relative = f"{GOLDEN_DIR}/{number:02d}.png"
        render_line(text, font=font).save(bundle / relative, format="PNG")
        paths.append(relative)
    return paths
