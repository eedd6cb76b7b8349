"""`model-export trocr | sign | verify | keygen | synthetic`: the exporter's command line.

Results go to stdout, progress and errors to stderr; exit 0 on success, 1 on a `ModelExportError` (its message
says why), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from model_export.errors import ModelExportError

_LOGGER = logging.getLogger("model_export")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model-export", description="Build, sign and verify OCR model bundles")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    trocr = sub.add_parser("trocr", help="export a TrOCR checkpoint (folder or hub id) to a model bundle")
    trocr.add_argument(
        "--model", required=True, help="checkpoint folder, or hub id such as microsoft/trocr-small-printed"
    )
    trocr.add_argument("--out", required=True, type=Path, help="bundle folder to create")
    trocr.add_argument("--quantize", choices=["int8"], help="dynamic int8 quantisation of MatMul/Gemm weights")
    trocr.add_argument("--quantize-embeddings", action="store_true", help="also quantise the token embeddings")
    trocr.add_argument("--name", help="bundle name (default: from the checkpoint)")
    trocr.add_argument("--version", help="bundle version (default: the UTC time)")
    trocr.add_argument("--language", action="append", dest="languages", help="language code read (default en)")
    trocr.add_argument("--max-length", type=int, default=64, help="most tokens generated per line (default 64)")
    trocr.add_argument("--golden", action="append", help="a golden self-test line to render (repeatable)")
    trocr.add_argument("--golden-font", type=Path, help="TrueType font for the golden lines (default DejaVu Sans)")
    trocr.add_argument("--strict-golden", action="store_true", help="fail when the model misreads a golden line")
    trocr.add_argument("--onnx-dir", type=Path, help="reuse an optimum export (image-to-text-with-past) in this folder")
    trocr.add_argument("--no-validate", action="store_true", help="skip optimum's ONNX-vs-PyTorch output check")
    trocr.add_argument("--force", action="store_true", help="replace --out if it exists")
    sign = sub.add_parser("sign", help="sign a bundle's manifest with an Ed25519 private key")
    sign.add_argument("--key", required=True, type=Path, help="private key PEM (from keygen)")
    sign.add_argument("bundle", type=Path)
    verify = sub.add_parser("verify", help="check a bundle's signature and every file's sha256, as a node does")
    verify.add_argument("--pubkey", required=True, type=Path, action="append", help="trusted public key PEM")
    verify.add_argument("bundle", type=Path)
    keygen = sub.add_parser("keygen", help="create an Ed25519 key pair (NAME.key private, NAME.pub public)")
    keygen.add_argument("--out", required=True, type=Path, help="folder for the two PEM files")
    keygen.add_argument("--name", default="bundle-signing")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    synthetic = sub.add_parser("synthetic", help="build a TrOCR-architecture checkpoint from configs (offline tests)")
    synthetic.add_argument("--shape", choices=["tiny", "trocr-small-printed"], default="tiny")
    synthetic.add_argument("--text", action="append", help="training string (repeatable); tiny shape only")
    synthetic.add_argument("--no-train", action="store_true", help="keep random weights")
    synthetic.add_argument("--out", required=True, type=Path)
    return parser


def _trocr(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if Path(args.model).expanduser().is_dir():
        # A local checkpoint needs nothing from the hub; set before transformers is imported, so nothing is asked.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from model_export.golden import DEFAULT_GOLDEN
    from model_export.progress import Progress
    from model_export.trocr import STEPS, TrocrExport, export_trocr

    options = TrocrExport(
        model=args.model, out=args.out, quantize=args.quantize or "none", quantize_embeddings=args.quantize_embeddings,
        name=args.name, version=args.version, languages=tuple(args.languages or ["en"]), max_length=args.max_length,
        golden=tuple(args.golden or DEFAULT_GOLDEN), golden_font=args.golden_font, strict_golden=args.strict_golden,
        force=args.force, validate=not args.no_validate, onnx_dir=args.onnx_dir,
    )
    result = export_trocr(options, Progress(STEPS - (args.onnx_dir is not None), quiet=args.quiet))
    manifest = result.manifest
    sys.stdout.write(f"bundle {manifest.name} {manifest.version} ({manifest.quantization}) written to {result.out}\n")
    for entry in manifest.files:
        sys.stdout.write(f"  {entry.path:<32} {entry.size / 1e6:9.2f} MB  sha256 {entry.sha256[:16]}\n")
    for reading in result.golden:
        mark = "ok" if reading.read == reading.source_text else "MISREAD"
        sys.stdout.write(f"  golden {reading.source_text!r} -> {reading.read!r} ({reading.confidence:.2f}) {mark}\n")
    sys.stdout.write(f"next: model-export sign --key KEY {result.out}\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "trocr":
        return _trocr(args)
    from model_export import signing

    if args.command == "sign":
        signer = signing.sign_bundle(args.bundle, args.key)
        sys.stdout.write(f"signed {args.bundle} with key {signer}\n")
    elif args.command == "verify":
        bundle = signing.verify(args.bundle, args.pubkey)
        manifest = bundle.manifest
        sys.stdout.write(
            f"OK: {manifest.name} {manifest.version} ({manifest.engine}, {len(manifest.files)} files) "
            f"signed by key {bundle.key_id}\n"
        )
    elif args.command == "keygen":
        private, public = signing.keygen(args.out, name=args.name, force=args.force)
        sys.stdout.write(f"private key {private} (keep it secret)\npublic key {public} (ocr.trusted_keys on nodes)\n")
    else:
        from model_export.synthetic import make_checkpoint

        texts = args.text or ["TOTAL 45.50", "MILK 1L 85.00", "RICE 5KG 420"]
        report = make_checkpoint(args.out, args.shape, texts, fit=not args.no_train and args.shape == "tiny")
        trained = f", trained {report.steps} steps to loss {report.loss:.4f}" if report else ", random weights"
        sys.stdout.write(f"checkpoint {args.out} ({args.shape}{trained})\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `model-export` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return _run(args)
    except ModelExportError as err:
        sys.stderr.write(f"model-export {args.command}: {err.message}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("model-export: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
