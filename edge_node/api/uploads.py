"""Reading multipart uploads with caps: the image bytes and the OCR options of one request."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from edge_node.errors import PayloadTooLargeError, ValidationFailedError
from shared_models.ocr import OcrOptions

#: What aiohttp's multipart parser raises for a body that breaks the format (bad part headers, boundaries,
#: a `_charset_` field it cannot use): all of them are the client's fault, answered with 400.
MALFORMED_BODY_ERRORS = (ValueError, AssertionError, LookupError, RuntimeError, HttpProcessingError)
#: Form fields other than files are short; anything longer is a client bug or an attack.
MAX_FIELD_BYTES = 1024
#: Read uploads in chunks of this size so the cap is enforced before the whole body is in memory.
CHUNK_BYTES = 64 * 1024
OPTION_FIELDS = frozenset(OcrOptions.model_fields)
FILE_FIELDS = frozenset({"image", "images"})
#: One parameter of `Content-Disposition: form-data; name="image"; filename="x.jpg"` as clients send it: quoted,
#: no escapes, no leading slash. Such headers are read here; aiohttp's general parser (RFC 5987 `name*=`, escapes,
#: tokens) rebuilds its escaping table on every call, ~50 us a part, and reads the rest.
_PLAIN_PARAM = re.compile(r'\s*(name|filename)="([^"\\/;][^"\\;]*|)"\s*')


@dataclass
class Upload:
    """Files and raw option values of one multipart request."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


async def read_upload(request: web.Request, *, max_file_bytes: int, max_files: int) -> Upload:
    """Stream the multipart body: 413 past the size cap, 400 for a malformed body or too many files."""
    # The raw header, not `request.content_type`: aiohttp parses that with the email package (~0.8 ms a request);
    # the multipart reader parses the boundary itself.
    if not request.headers.get(hdrs.CONTENT_TYPE, "").lstrip().lower().startswith("multipart/"):
        raise ValidationFailedError("send the image as multipart/form-data with a field named 'image'")
    try:
        return await _read_parts(request, max_file_bytes, max_files)
    except MALFORMED_BODY_ERRORS as err:
        raise ValidationFailedError(f"malformed multipart body: {err}") from err


async def _read_parts(request: web.Request, max_file_bytes: int, max_files: int) -> Upload:
    reader = await request.multipart()
    upload = Upload()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise ValidationFailedError("nested multipart bodies are not accepted")
        name, filename = _disposition(part)
        name = name or ""
        if name in FILE_FIELDS:
            if len(upload.files) >= max_files:
                raise ValidationFailedError(
                    f"at most {max_files} image(s) per request", details={"max_images": max_files}
                )
            content = await _read_capped(part, max_file_bytes)
            upload.files.append((filename or f"{name}-{len(upload.files)}", content))
        elif name in OPTION_FIELDS:
            raw = await _read_capped(part, MAX_FIELD_BYTES, field_name=name)
            upload.fields[name] = raw.decode("utf-8", errors="replace").strip()
        else:
            await part.release()
    return upload


def _disposition(part: BodyPartReader) -> tuple[str | None, str | None]:
    """(name, filename) of a part: plain `form-data` headers read directly, anything else by aiohttp."""
    kind, *params = part.headers.get(hdrs.CONTENT_DISPOSITION, "").split(";")
    if kind.strip() == "form-data":
        found: dict[str, str] = {}
        for param in params:
            match = _PLAIN_PARAM.fullmatch(param)
            if match is None or match[1] in found:
                break
            found[match[1]] = match[2]
        else:
            return found.get("name"), found.get("filename")
    return part.name, part.filename


async def _read_capped(part: BodyPartReader, limit: int, field_name: str | None = None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            if field_name is not None:
                raise ValidationFailedError(f"field {field_name!r} is too long")
            raise PayloadTooLargeError(
                f"the image is larger than {limit / 1_000_000:g} MB", details={"max_bytes": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)


def parse_options(fields: dict[str, str]) -> OcrOptions:
    """Validate the option fields; a bad value is VALIDATION_ERROR naming the field and what is allowed."""
    values: dict[str, object] = dict(fields)
    if "extract_barcodes" in fields:
        flag = fields["extract_barcodes"].lower()
        if flag not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValidationFailedError("extract_barcodes must be true or false", details={"field": "extract_barcodes"})
        values["extract_barcodes"] = flag in ("true", "1", "yes", "on")
    try:
        return OcrOptions.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "options"
        raise ValidationFailedError(
            f"invalid {name}: {first['msg']}",
            details={"field": name, "errors": [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                                               for e in err.errors()]},
        ) from err
