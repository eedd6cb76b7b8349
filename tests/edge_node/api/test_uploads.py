"""Multipart part names: plain `form-data` headers are read directly and give what aiohttp's parser gives;
every other form (escapes, RFC 5987, tokens, odd casing) still goes through aiohttp's parser."""

from __future__ import annotations

import warnings

import pytest
from aiohttp import BodyPartReader
from multidict import CIMultiDict, CIMultiDictProxy

from edge_node.api.uploads import _disposition

HEADERS = [
    'form-data; name="image"; filename="x.jpg"',
    'form-data; name="type"',
    'form-data;name="image";filename="a b;c.jpg"',
    'form-data; name=""',
    'form-data; name="a\\"b"',
    'form-data; name="image"; filename="/etc/passwd"',
    "form-data; name=\"image\"; filename*=utf-8''%C3%A9.jpg",
    'form-data; name="image"; name="other"',
    'attachment; name="image"',
    'form-data; Name="image"',
    "form-data; name=image",
    'form-data; name="image";',
    "",
]


def _part(header: str) -> BodyPartReader:
    headers = CIMultiDictProxy(CIMultiDict({"Content-Disposition": header} if header else {}))
    return BodyPartReader(b"--b", headers, None)  # type: ignore[arg-type]  # no content is read


@pytest.mark.parametrize("header", HEADERS)
def test_part_names_match_aiohttps_reading(header: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiohttp warns about the malformed ones
        expected = (_part(header).name, _part(header).filename)
        assert _disposition(_part(header)) == expected
