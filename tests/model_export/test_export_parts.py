"""The exporter's parts on their own: sentencepiece tokenizer conversion, checkpoint config reading, progress."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from model_export.checkpoint import read_checkpoint
from model_export.errors import CheckpointError
from model_export.progress import Progress
from model_export.tokenizer import export_tokenizer

LINES = ["TOTAL 45.50", "MILK 1L 85.00", "RICE 5KG 420", "CASH 500.00", "CHANGE 54.50", "TEA 30", "EGGS 12"]


def test_a_sentencepiece_tokenizer_is_converted_to_tokenizer_json(tmp_path: Path) -> None:
    """trocr-small-* ship an XLM-R `sentencepiece.bpe.model` and no tokenizer.json: the export converts it."""
    import sentencepiece as spm
    from tokenizers import Tokenizer
    from transformers import XLMRobertaTokenizer

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(LINES * 20), model_prefix=str(tmp_path / "sp"), vocab_size=40, model_type="bpe",
        character_coverage=1.0, minloglevel=2,
    )
    checkpoint = tmp_path / "checkpoint"
    XLMRobertaTokenizer(vocab_file=str(tmp_path / "sp.model")).save_pretrained(checkpoint)
    assert not (checkpoint / "tokenizer.json").exists()
    size = export_tokenizer(checkpoint, tmp_path / "tokenizer.json")
    tokenizer = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert size == tokenizer.get_vocab_size()
    for line in LINES:
        ids = tokenizer.encode(line).ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == line


def test_a_folder_without_a_tokenizer_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vision-encoder-decoder"}))
    with pytest.raises(CheckpointError, match="no usable tokenizer"):
        export_tokenizer(tmp_path, tmp_path / "tokenizer.json")


def _config(tmp_path: Path, **top: object) -> Path:
    config = {
        "model_type": "vision-encoder-decoder",
        "encoder": {"image_size": 384},
        "decoder": {"vocab_size": 64044, "max_position_embeddings": 512, "bos_token_id": 0, "eos_token_id": 2},
        **top,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_checkpoint_reading_follows_trocr_small_printed_configs(tmp_path: Path) -> None:
    folder = _config(tmp_path, decoder_start_token_id=2, pad_token_id=1, eos_token_id=2)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3,
         "size": 384}
    ))
    info = read_checkpoint(folder, "microsoft/trocr-small-printed")
    assert (info.input.height, info.input.width, info.input.resample) == (384, 384, "bicubic")
    assert (info.start_token_id, info.eos_token_id, info.pad_token_id) == (2, 2, 1)
    assert (info.vocab_size, info.max_positions) == (64044, 512)


def test_checkpoint_without_decoder_start_falls_back_to_bos(tmp_path: Path) -> None:
    info = read_checkpoint(_config(tmp_path), "local")
    assert info.start_token_id == 0 and info.input.mean == (0.5, 0.5, 0.5)


def test_checkpoint_with_unsupported_rescaling_is_refused(tmp_path: Path) -> None:
    folder = _config(tmp_path, decoder_start_token_id=2)
    (folder / "preprocessor_config.json").write_text(json.dumps({"do_rescale": False}))
    with pytest.raises(CheckpointError, match="1/255"):
        read_checkpoint(folder, "local")


def test_progress_numbers_steps_and_beats_while_a_step_runs() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream=stream, heartbeat=0.02)
    with progress.step("exporting"):
        time.sleep(0.07)
    with pytest.raises(RuntimeError), progress.step("quantising"):
        raise RuntimeError("boom")
    text = stream.getvalue()
    assert "[1/2] exporting ..." in text and "still exporting" in text and "done in" in text
    assert "[2/2] quantising ..." in text and "quantising: failed after" in text
