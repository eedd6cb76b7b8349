"""Read an ONNX file's metadata and weights without the `onnx` package (16 MB more resident memory in the node).

An ONNX file is one protobuf `ModelProto`; this reads the few fields the engines need straight from the wire
format: `metadata_props` (field 14: key 1, value 2) and the graph's (field 7) `initializer`s (field 5): a
`TensorProto` with `dims` (1), `data_type` (2), `float_data` (4), `name` (8) and `raw_data` (9). Nothing is
copied until an initializer's array is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_node.errors import ModelError

#: TensorProto.DataType FLOAT: the only type the engines read.
FLOAT = 1
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_MODEL_GRAPH, _MODEL_METADATA = 7, 14
_GRAPH_INITIALIZER = 5
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_FLOATS, _TENSOR_NAME, _TENSOR_RAW = 1, 2, 4, 8, 9


@dataclass(frozen=True)
class Initializer:
    """One named weight of the graph, still in the file's bytes."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    #: Little-endian float32 values: `raw_data`, or packed `float_data` (the same bytes on the wire).
    data: memoryview

    def array(self) -> np.ndarray:
        """The weight as a float32 array of its dims (a copy)."""
        if self.data_type != FLOAT:
            raise ModelError(f"initializer {self.name} is not float32 (type {self.data_type})")
        values = np.frombuffer(self.data, dtype="<f4")
        if values.size != int(np.prod(self.dims, dtype=np.int64)):
            raise ModelError(f"initializer {self.name} holds {values.size} values, not {self.dims}")
        return values.reshape(self.dims).astype(np.float32)


@dataclass(frozen=True)
class OnnxFile:
    """What the engines read of a model file: its metadata and its initializers by name."""

    metadata: dict[str, str]
    initializers: dict[str, Initializer]


def read_onnx(path: Path) -> OnnxFile:
    """Parse `path` (a `ModelProto`); raises ModelError when it is not a readable protobuf."""
    try:
        data = memoryview(path.read_bytes())
        return _model(data)
    except OSError as err:
        raise ModelError(f"cannot read model {path.name}: {err}") from err
    except (IndexError, ValueError, UnicodeDecodeError) as err:
        raise ModelError(f"model {path.name} is not a valid ONNX file: {err}") from err


def _model(data: memoryview) -> OnnxFile:
    metadata: dict[str, str] = {}
    initializers: dict[str, Initializer] = {}
    for field, value in _fields(data):
        if field == _MODEL_METADATA and isinstance(value, memoryview):
            entry = {key: bytes(text).decode() for key, text in _fields(value) if isinstance(text, memoryview)}
            metadata[entry.get(1, "")] = entry.get(2, "")
        elif field == _MODEL_GRAPH and isinstance(value, memoryview):
            for graph_field, tensor in _fields(value):
                if graph_field == _GRAPH_INITIALIZER and isinstance(tensor, memoryview):
                    initializer = _tensor(tensor)
                    initializers[initializer.name] = initializer
    return OnnxFile(metadata, initializers)


def _tensor(data: memoryview) -> Initializer:
    dims: list[int] = []
    name, data_type, payload = "", 0, memoryview(b"")
    for field, value in _fields(data):
        if field == _TENSOR_DIMS:
            dims.extend(_packed_varints(value) if isinstance(value, memoryview) else [value])
        elif field == _TENSOR_TYPE and isinstance(value, int):
            data_type = value
        elif field == _TENSOR_NAME and isinstance(value, memoryview):
            name = bytes(value).decode()
        elif field in (_TENSOR_RAW, _TENSOR_FLOATS) and isinstance(value, memoryview):
            payload = value
    return Initializer(name, tuple(dims), data_type, payload)


def _fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of one message: an int for varint and fixed fields, a view for length-delimited."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            number, pos = _varint(data, pos)
            yield field, number
        elif wire == _BYTES:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("a field runs past the end of its message")
            yield field, data[pos : pos + size]
            pos += size
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            yield field, int.from_bytes(data[pos : pos + size], "little")
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _packed_varints(data: memoryview) -> list[int]:
    values, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        values.append(value)
    return values
