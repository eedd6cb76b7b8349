"""`tokenizer.json` for the bundle: the checkpoint's fast tokenizer, converted from sentencepiece when that is what
the checkpoint ships (trocr-small-* use an XLM-R style `sentencepiece.bpe.model`; trocr-base-* a RoBERTa BPE).

The node decodes with the `tokenizers` library alone, so the file must load there; that is checked after writing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from model_export.errors import CheckpointError

_LOGGER = logging.getLogger(__name__)


def export_tokenizer(checkpoint: Path, target: Path) -> int:
    """Write the checkpoint's tokenizer as `tokenizer.json`; return its vocabulary size."""
    try:
        from transformers import AutoTokenizer
    except ImportError as err:
        raise CheckpointError("converting the tokenizer needs transformers (the export extra)") from err
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=True, local_files_only=True)
    except (OSError, ValueError, ImportError, TypeError, KeyError) as err:
        raise CheckpointError(
            f"no usable tokenizer in {checkpoint} (tokenizer.json, or sentencepiece.bpe.model / vocab.json + "
            f"merges.txt with tokenizer_config.json): {err}"
        ) from err
    if not getattr(tokenizer, "is_fast", False):
        raise CheckpointError(f"the tokenizer of {checkpoint} has no fast (tokenizers) version to export")
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.backend_tokenizer.save(str(target))
    from tokenizers import Tokenizer

    try:
        reloaded = Tokenizer.from_file(str(target))
    except Exception as err:  # tokenizers raises bare Exception
        raise CheckpointError(f"the converted {target.name} does not load in tokenizers: {err}") from err
    size = int(reloaded.get_vocab_size(with_added_tokens=True))
    _LOGGER.debug("tokenizer.json written with %d tokens", size)
    return size
