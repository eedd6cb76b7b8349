"""TrOCR-architecture checkpoints built from configs, to exercise the export pipeline and the node with no hub access.

- `tiny`: a ViT encoder (hidden 64, 2 layers) and TrOCR decoder (d_model 64, 2 layers) on 32x160 inputs, with a BPE
  tokenizer trained locally on the strings; `train` overfits it on rendered images of those strings in seconds,
  so an exported bundle of it must read them back exactly.
- `trocr-small-printed`: the published model's shape (DeiT-small encoder: hidden 384, 12 layers, 6 heads, 384x384,
  patch 16; decoder: d_model 256, 6 layers, 8 heads, FFN 1024, vocabulary 64044; 61.6M parameters) with random
  weights: right for file sizes and latency, meaningless for accuracy.

Training computes the cross-entropy itself: transformers 4.50-4.57's VisionEncoderDecoderModel loss shifts the
labels twice (upstream issue 40111).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_node.engines.trocr_onnx import preprocess
from model_export.golden import render_line
from shared_models.bundle import ImageInput

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3, as in RoBERTa / XLM-R
BOS, PAD, EOS = 0, 1, 2


@dataclass(frozen=True)
class Shape:
    """Encoder and decoder sizes."""

    image: tuple[int, int]
    patch: int
    enc_hidden: int
    enc_layers: int
    enc_heads: int
    enc_ffn: int
    dec_model: int
    dec_layers: int
    dec_heads: int
    dec_ffn: int
    vocab: int | None  # None: the trained tokenizer's size
    max_positions: int


SHAPES: dict[str, Shape] = {
    "tiny": Shape((32, 160), 8, 64, 2, 2, 128, 64, 2, 2, 128, None, 40),
    "trocr-small-printed": Shape((384, 384), 16, 384, 12, 6, 1536, 256, 6, 8, 1024, 64044, 512),
}


@dataclass(frozen=True)
class TrainReport:
    """How training went."""

    steps: int
    loss: float
    seconds: float


def train_tokenizer(texts: list[str], vocab_size: int = 64) -> Tokenizer:
    """A small sentencepiece-style BPE (`▁` marks word starts) trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def image_input(shape: Shape) -> ImageInput:
    """The encoder input of `shape` (TrOCR's processor: bilinear resize, mean 0.5, std 0.5)."""
    return ImageInput(height=shape.image[0], width=shape.image[1])


def build_model(shape: Shape, vocab_size: int, *, seed: int = 0) -> Any:
    """A randomly initialised VisionEncoderDecoderModel of `shape`."""
    import torch
    from transformers import TrOCRConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    torch.manual_seed(seed)
    encoder = ViTConfig(
        hidden_size=shape.enc_hidden, num_hidden_layers=shape.enc_layers, num_attention_heads=shape.enc_heads,
        intermediate_size=shape.enc_ffn, image_size=list(shape.image), patch_size=shape.patch, qkv_bias=True,
        layer_norm_eps=1e-12,
    )
    decoder = TrOCRConfig(
        vocab_size=vocab_size, d_model=shape.dec_model, decoder_layers=shape.dec_layers,
        decoder_attention_heads=shape.dec_heads, decoder_ffn_dim=shape.dec_ffn,
        max_position_embeddings=shape.max_positions, activation_function="relu", scale_embedding=True,
        use_learned_position_embeddings=True, layernorm_embedding=True, tie_word_embeddings=False,
        pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, decoder_start_token_id=EOS,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = EOS, PAD, EOS
    config.tie_word_embeddings = False
    return VisionEncoderDecoderModel(config)


def rendered_samples(texts: list[str], *, variants: int = 3, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Each text rendered as a golden line, plus `variants - 1` copies with uneven extra margins (a detector's crop
    is rarely tight)."""
    rng = random.Random(seed)
    samples = []
    for text in texts:
        image = np.asarray(render_line(text))
        samples.append((text, image))
        for _ in range(variants - 1):
            pads = ((rng.randint(0, 6), rng.randint(0, 6)), (rng.randint(0, 12), rng.randint(0, 12)), (0, 0))
            samples.append((text, np.pad(image, pads, constant_values=255)))
    return samples


def train(
    model: Any, tokenizer: Tokenizer, samples: list[tuple[str, np.ndarray]], shape: Shape, *,
    max_steps: int = 600, target_loss: float = 0.01, seed: int = 0,
) -> TrainReport:
    """Overfit `model` on (text, RGB line image) samples until the loss is below `target_loss`.

    A model this small memorises its samples rather than learning to read: it reads back exactly the kinds of
    crops it was trained on, which is what an export round-trip test needs, and nothing else.
    """
    import torch

    spec = image_input(shape)
    pixels = torch.tensor(np.stack([preprocess(image, spec) for _, image in samples]))
    sequences = [[BOS, *tokenizer.encode(text).ids, EOS] for text, _ in samples]
    length = max(map(len, sequences))
    labels = torch.full((len(sequences), length), -100, dtype=torch.long)
    inputs = torch.full((len(sequences), length), PAD, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        labels[row, : len(sequence)] = torch.tensor(sequence)
        inputs[row, 0] = EOS  # decoder_start_token_id
        inputs[row, 1 : len(sequence)] = torch.tensor(sequence[:-1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains faster on one thread than with two contending
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    start, loss_value, steps = time.perf_counter(), float("inf"), 0
    try:
        while steps < max_steps:
            steps += 1
            logits = model(pixel_values=pixels, decoder_input_ids=inputs).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            if loss_value < target_loss:
                break
    finally:
        torch.set_num_threads(threads)
        model.eval()
    return TrainReport(steps=steps, loss=loss_value, seconds=time.perf_counter() - start)


def save_checkpoint(model: Any, tokenizer: Tokenizer, shape: Shape, out: Path) -> Path:
    """Write a Hugging Face checkpoint folder: weights, config, tokenizer and image processor."""
    from PIL import Image
    from transformers import PreTrainedTokenizerFast, ViTImageProcessor

    model.save_pretrained(out)
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    ).save_pretrained(out)
    ViTImageProcessor(
        size={"height": shape.image[0], "width": shape.image[1]}, resample=Image.Resampling.BILINEAR,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    ).save_pretrained(out)
    return out


def make_checkpoint(
    out: Path, shape_name: str, texts: list[str], *, fit: bool = True,
    extra_samples: list[tuple[str, np.ndarray]] | None = None,
) -> TrainReport | None:
    """Build (and for `fit`, train on the rendered texts plus `extra_samples`) a checkpoint of `shape_name` into
    `out`; the training report when trained."""
    shape = SHAPES[shape_name]
    tokenizer = train_tokenizer(texts)
    model = build_model(shape, shape.vocab or tokenizer.get_vocab_size())
    samples = rendered_samples(texts) + list(extra_samples or [])
    report = train(model, tokenizer, samples, shape) if fit else None
    save_checkpoint(model, tokenizer, shape, out)
    return report
