"""Fixtures for model-update tests: the tiny TrOCR bundle (built once per process) and its variants as tars."""

from __future__ import annotations

import pytest
from bundle_variants import Tars, other_key, pack, variant
from tiny_trocr import TinyBundle, build

from edge_node.engines.registry import EngineSet


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory, engines: EngineSet) -> TinyBundle:
    return build(tmp_path_factory.mktemp("tiny-trocr"), engines.detector)


@pytest.fixture(scope="session")
def tars(tiny: TinyBundle, tmp_path_factory: pytest.TempPathFactory) -> Tars:
    root = tmp_path_factory.mktemp("tars")
    untrusted = other_key(root)
    return Tars(
        v1=pack(variant(tiny, root, "1.0.0"), root / "v1.tar"),
        v2=pack(variant(tiny, root, "2.0.0"), root / "v2.tar"),
        wrong_key=pack(variant(tiny, root, "3.0.0", key=untrusted), root / "wrong-key.tar"),
        bad_self_test=pack(variant(tiny, root, "4.0.0", break_self_test=True), root / "bad-self-test.tar"),
    )
