"""Reading ONNX metadata and weights without the onnx package: checked against the onnx package itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edge_node.engines import class_head
from edge_node.engines.onnx_file import read_onnx
from edge_node.engines.ppocr import bundled_model_dir
from edge_node.errors import ModelError

RECOGNIZER = bundled_model_dir() / "PP-OCRv6_rec_small.onnx"


def test_every_weight_and_the_metadata_of_the_bundled_recognizer_match_the_onnx_package() -> None:
    ours = read_onnx(RECOGNIZER)
    model = onnx.load(str(RECOGNIZER))
    assert ours.metadata == {entry.key: entry.value for entry in model.metadata_props}
    floats = [tensor for tensor in model.graph.initializer if tensor.data_type == onnx.TensorProto.FLOAT]
    assert floats and len(ours.initializers) == len(model.graph.initializer)
    for tensor in floats:
        expected = numpy_helper.to_array(tensor)
        got = ours.initializers[tensor.name]
        assert got.dims == tuple(tensor.dims)
        np.testing.assert_array_equal(got.array(), expected)


def _tiny_model(path: Path, *, raw: bool) -> np.ndarray:
    weight = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    tensor = (numpy_helper.from_array(weight, "w") if raw
              else helper.make_tensor("w", onnx.TensorProto.FLOAT, [3, 4], weight.ravel().tolist()))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])], [tensor],
    )
    model = helper.make_model(graph)
    helper.set_model_props(model, {"character": "a\nb", "note": "ünïcode"})
    onnx.save(model, str(path))
    return weight


@pytest.mark.parametrize("raw", [True, False])
def test_raw_and_packed_float_weights_are_read(tmp_path: Path, raw: bool) -> None:
    weight = _tiny_model(tmp_path / "m.onnx", raw=raw)
    ours = read_onnx(tmp_path / "m.onnx")
    assert ours.metadata == {"character": "a\nb", "note": "ünïcode"}
    np.testing.assert_array_equal(ours.initializers["w"].array(), weight)


def test_a_file_that_is_not_a_model_is_a_model_error(tmp_path: Path) -> None:
    _tiny_model(tmp_path / "m.onnx", raw=True)
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes((tmp_path / "m.onnx").read_bytes()[:-9])
    with pytest.raises(ModelError):
        read_onnx(truncated)
    with pytest.raises(ModelError, match="cannot read"):
        read_onnx(tmp_path / "missing.onnx")


def test_head_columns_cut_the_classifier_and_refuse_an_ambiguous_model() -> None:
    initializers = read_onnx(RECOGNIZER).initializers
    classes = 18710
    keep = np.array([0, 5, 17, classes - 1])
    cut = class_head.head_columns(initializers, classes, keep)
    assert sorted(array.shape for array in cut.values()) == [(4,), (120, 4)]
    weight_name = next(name for name, array in cut.items() if array.ndim == 2)
    np.testing.assert_array_equal(cut[weight_name], initializers[weight_name].array()[:, keep])
    assert class_head.head_columns(initializers, classes + 1, keep) == {}  # no layer of that many classes


def test_a_head_whose_weights_cannot_be_read_is_kept_whole(tmp_path: Path) -> None:
    """Weights stored outside the file (or not float32) cannot be cut: the model keeps its full head."""
    weight = np.ones((3, 4), dtype=np.float32)
    tensor = numpy_helper.from_array(weight.astype(np.float16), "w")
    bias = numpy_helper.from_array(np.zeros(4, dtype=np.float16), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT16, [1, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT16, [1, 4])], [tensor, bias],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "half.onnx"))
    initializers = read_onnx(tmp_path / "half.onnx").initializers
    assert initializers["w"].dims == (3, 4)
    assert class_head.head_columns(initializers, 4, np.array([0, 2])) == {}
