"""python -m bench: argument parsing, the command shown in the docs, and a full run on a fake backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bench.__main__ as cli
from bench.client import HttpBackend, Timed
from bench.datasets import DEFAULT_DATA_DIR
from bench.sets import SETS
from shared_models.ocr import BoundingBox, Line, OcrOptions, OcrResult


class _Echo:
    """Reads every line as 'x' and every image as nothing."""

    name = "fake"

    def image(self, data: bytes, options: OcrOptions, filename: str = "image") -> Timed[OcrResult]:
        return Timed(OcrResult(text="", confidence=0.0, model_used="fake"), 3.0)

    def line(self, image: np.ndarray, options: OcrOptions) -> Timed[Line]:
        box = BoundingBox(x=0, y=0, width=1, height=1)
        return Timed(Line(text="x", confidence=0.5, bounding_box=box, engine="fake"), 1.0)


def test_parser_defaults() -> None:
    args = cli.build_parser().parse_args(["accuracy", "--set", "sroie"])
    assert args.set_name == "sroie"
    assert args.data == DEFAULT_DATA_DIR
    assert args.url is None
    assert args.limit is None
    assert not args.no_docs


def test_parser_options() -> None:
    args = cli.build_parser().parse_args(
        ["accuracy", "--set", "all", "--data", "d", "--url", "http://h:8000", "--token", "t", "--limit", "10"]
    )
    assert (args.set_name, args.data, args.url, args.token, args.limit) == ("all", Path("d"), "http://h:8000", "t", 10)


@pytest.mark.parametrize(
    "argv",
    [
        ["accuracy"],
        ["accuracy", "--set", "nope"],
        ["accuracy", "--set", "sroie", "--limit", "0"],
        ["accuracy", "--set", "sroie", "--limit", "x"],
        [],
    ],
)
def test_parser_rejects(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args(argv)
    assert caught.value.code == 2


def test_every_set_is_a_choice() -> None:
    assert list(SETS) == ["sroie-lines", "sroie", "barcodes", "price_tags", "scene_text", "bengali_lines"]


def test_command_line_redacts_the_token() -> None:
    assert cli.command_line(["accuracy", "--set", "sroie", "--token", "s3cret", "--limit", "2"]) == (
        "python -m bench accuracy --set sroie --token '***' --limit 2"
    )
    assert cli.command_line(["accuracy", "--set", "sroie", "--token=s3cret"]) == (
        "python -m bench accuracy --set sroie '--token=***'"
    )


def test_make_backend_http() -> None:
    backend = cli.make_backend("http://127.0.0.1:8000", "t")
    assert isinstance(backend, HttpBackend)
    assert backend.url == "http://127.0.0.1:8000/api/v1/ocr/process"


def test_main_runs_a_set_and_writes_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "make_backend", lambda url, token: _Echo())
    docs = tmp_path / "BENCHMARKS.md"
    argv = ["accuracy", "--set", "scene_text", "--limit", "3", "--reports", str(tmp_path), "--docs", str(docs)]
    assert cli.main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "== scene_text: 3/300 items" in out
    report = json.loads((tmp_path / "scene_text.json").read_text(encoding="utf-8"))
    assert report["n_items"] == 3
    assert report["backend"] == "fake"
    text = docs.read_text(encoding="utf-8")
    assert "<!-- bench:scene_text -->" in text
    assert f"`{cli.command_line([*argv, '--quiet'])}`" in text
    assert "Not measured yet: `python -m bench accuracy --set sroie`" in text


def test_main_all_and_no_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "make_backend", lambda url, token: _Echo())
    docs = tmp_path / "BENCHMARKS.md"
    argv = ["accuracy", "--set", "all", "--limit", "1", "--reports", str(tmp_path), "--docs", str(docs), "--no-docs"]
    assert cli.main([*argv, "--quiet"]) == 0
    assert sorted(path.stem for path in tmp_path.glob("*.json")) == sorted(SETS)
    assert not docs.exists()


def test_main_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["accuracy", "--set", "sroie", "--data", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err


def test_main_fails_when_every_call_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = HttpBackend("http://127.0.0.1:9", timeout_s=2)
    monkeypatch.setattr(cli, "make_backend", lambda url, token: backend)
    argv = ["accuracy", "--set", "bengali_lines", "--limit", "1", "--reports", str(tmp_path), "--no-docs", "--quiet"]
    assert cli.main(argv) == 1
    report = json.loads((tmp_path / "bengali_lines.json").read_text(encoding="utf-8"))
    assert report["errors"][0]["code"] == "NETWORK_ERROR"
