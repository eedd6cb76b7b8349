"""A CTC recognizer's classifier head cut down to the classes a reading may use.

PP-OCRv6's recognizer ends in a linear layer (120 -> 18,710 classes) and a softmax over all of them. An English
reading may only ever use ~200 of those classes, so the node overrides that layer's weight and bias with their
columns for those classes (onnxruntime `SessionOptions.add_initializer`): the same network, a head 100x
smaller, and an output of ~200 probabilities per time step instead of 18,710. On SROIE line crops the argmax is
the same on every time step, and a line costs about 14% less. The softmax is then taken over the kept classes:
where the model put probability on a class that cannot be read anyway (a CJK character for a smudged `*`), that
share goes to the kept ones.
"""

from __future__ import annotations

import numpy as np

from edge_node.engines.onnx_file import Initializer
from edge_node.errors import ModelError


def head_columns(initializers: dict[str, Initializer], classes: int, keep: np.ndarray) -> dict[str, np.ndarray]:
    """The weight ([features, classes]) and bias ([classes]) of the model's classifier with only the `keep`
    columns, by initializer name; empty when the model has not exactly one such pair (the full head is used)."""
    weights = [init for init in initializers.values() if len(init.dims) == 2 and init.dims[1] == classes]
    biases = [init for init in initializers.values() if init.dims == (classes,)]
    if len(weights) != 1 or len(biases) != 1:
        return {}
    try:
        return {init.name: np.ascontiguousarray(init.array()[..., keep]) for init in (weights[0], biases[0])}
    except ModelError:  # not float32, or its values stored outside the file: keep the full head
        return {}
