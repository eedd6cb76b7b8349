"""`central-sync models upload | list | rollout | rollback | announce`: the model registry from the command line.

Each command works on the database, `registry.storage_dir` and the broker directly (no running central needed)
and prints a short report on stdout (or JSON with --json). A refused request prints one line on stderr and exits
1 (2 for a bad command line or configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from central_sync.config import CentralConfig
from central_sync.db.engine import create_engine
from central_sync.errors import CentralError, ConfigError, DatabaseError
from central_sync.registry import Change, Overview, Registry, UploadResult, bundle_json
from central_sync.rollout_plan import DEFAULT_SHADOW_SAMPLE, describe
from shared_models.model_updates import RolloutTarget

USAGE = """commands:
  upload BUNDLE                 store a signed bundle (folder or .tar); NAME VERSION come from its manifest
  list [--history] [--json]     stored bundles, active rollouts (all with --history), node reports
  rollout NAME VERSION TARGET [--shadow [--sample F]]
                                roll a stored bundle out to TARGET, one of: --all | --shops A,B |
                                --percent N | --node ID; --shadow runs it beside the serving model on a
                                sample of requests (default 0.1) and reports agreement, serving nothing
  rollback NAME [--shadow]      end NAME's newest serving (or shadow) rollout, restoring what it replaced
  announce                      publish the current state again (after an announcement failed)
Every command takes --json for a machine-readable answer."""


def add_parser(sub: Any) -> None:
    """Add `models` and its commands to the top-level subparsers."""
    models = sub.add_parser(
        "models", help="model registry: upload bundles, roll them out to nodes, roll back",
        description="Model bundles and rollouts (DESIGN §6).", epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = models.add_subparsers(dest="models_command", required=True, metavar="COMMAND")
    upload = actions.add_parser("upload", help="store a signed bundle folder or tar")
    upload.add_argument("bundle", type=Path, help="bundle folder (manifest.json, files, manifest.sig) or .tar")
    listing = actions.add_parser("list", help="bundles and rollouts")
    listing.add_argument("--history", action="store_true", help="also rollouts that ended")
    rollout = actions.add_parser("rollout", help="roll a stored bundle out")
    rollout.add_argument("name", metavar="NAME", help="model name (the manifest's)")
    rollout.add_argument("version", metavar="VERSION", help="a stored version of it")
    target = rollout.add_mutually_exclusive_group(required=True)
    target.add_argument("--all", action="store_true", help="every node of every shop")
    target.add_argument("--shops", metavar="A,B", help="comma-separated shop ids")
    target.add_argument("--percent", metavar="N", type=int, help="this share (1-100) of the nodes, by a stable hash")
    target.add_argument("--node", metavar="ID", help="one node id")
    rollout.add_argument("--shadow", action="store_true", help="run beside the serving model; serve nothing")
    rollout.add_argument("--sample", metavar="F", type=float,
                         help=f"share of requests a shadow model reads (default {DEFAULT_SHADOW_SAMPLE})")
    rollback = actions.add_parser("rollback", help="undo the newest rollout of a model")
    rollback.add_argument("name", metavar="NAME", help="model name")
    rollback.add_argument("--shadow", action="store_true", help="end the newest shadow rollout instead")
    actions.add_parser("announce", help="publish the current model state again")
    for command in (upload, listing, rollout, rollback, actions.choices["announce"]):
        command.add_argument("--json", action="store_true", help="print JSON")


def _target(args: argparse.Namespace) -> RolloutTarget:
    if args.sample is not None and not args.shadow:
        raise ValueError("--sample applies to --shadow rollouts only")
    if args.percent is not None and not 1 <= args.percent <= 100:
        raise ValueError("--percent must be between 1 and 100")
    if args.all:
        return RolloutTarget(kind="all")
    if args.shops is not None:
        shops = tuple(s.strip() for s in args.shops.split(",") if s.strip())
        return RolloutTarget(kind="shops", shops=shops)
    if args.percent is not None:
        return RolloutTarget(kind="percent", percent=args.percent)
    return RolloutTarget(kind="node", node_id=args.node)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in (headers, *rows)]
    return "\n".join(lines)


def _agreement(entry: dict[str, Any]) -> str:
    agreement = entry["shadow_agreement"]
    if agreement["value"] is None:
        return "-"
    lines = f", {agreement['lines']} lines" if agreement["lines"] is not None else ""
    return f"{agreement['value']:.1%} ({agreement['nodes']} nodes{lines})"


def render_overview(overview: Overview) -> str:
    """`models list` as text."""
    doc = overview.as_json()
    bundle_rows = [
        [b["name"], b["version"], b["engine"], ",".join(b["languages"]), _size(b["size"]), b["sha256"][:16],
         b["signer_key_id"] + ("" if b["signature_verified"] else " (unverified)"), b["uploaded_at"][:19]]
        for b in doc["bundles"]
    ]
    rollout_rows = [
        [str(r["rollout_id"]), r["label"], r["target_text"],
         f"shadow {r['shadow_sample']:.0%}" if r["shadow"] else "serving", r["state"], r["created_at"][:19],
         str(r["nodes_reporting"]), _agreement(r)]
        for r in doc["rollouts"]
    ]
    parts = [f"Bundles ({len(bundle_rows)})"]
    parts.append(table(["NAME", "VERSION", "ENGINE", "LANGS", "SIZE", "SHA256", "SIGNER", "UPLOADED"], bundle_rows)
                 if bundle_rows else "  none: `central-sync models upload BUNDLE`")
    parts.append(f"\nRollouts (announcement revision {doc['revision']})")
    parts.append(table(["ID", "MODEL", "TARGET", "MODE", "STATE", "CREATED", "NODES", "SHADOW AGREEMENT"],
                       rollout_rows) if rollout_rows else "  none active: nodes serve their embedded default models")
    return "\n".join(parts)


def _change_text(change: Change, verb: str) -> str:
    lines = [f"{verb}; announced revision {change.announced.revision} (retained, and to "
             f"{change.nodes_notified} known nodes)"]
    if change.ended:
        lines.append("ended rollouts: " + ", ".join(map(str, change.ended)))
    if change.restored:
        lines.append("active again: " + ", ".join(map(str, change.restored)))
    active = [f"  {r.rollout_id}: {r.label} -> {describe(r.target)}{' (shadow)' if r.shadow else ''}"
              for r in change.announced.rollouts]
    lines.append("active rollouts, newest first:" if active else "no active rollouts: nodes serve their defaults")
    lines.extend(active)
    return "\n".join(lines)


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "rollout_id": change.rollout_id, "ended": change.ended, "restored": change.restored,
        "nodes_notified": change.nodes_notified, "announcement": change.announced.model_dump(mode="json"),
    }


def _upload_text(result: UploadResult) -> str:
    b = result.bundle
    signer = f"key {b.signer_key_id}" + (" (verified)" if b.signature_verified else " (not verified: no trusted keys)")
    if not result.created:
        return f"{b.name} {b.version} is already stored with the same content; nothing to do"
    return f"stored {b.name} {b.version} ({b.engine}, {_size(b.archive_size)}, sha256 {b.archive_sha256}), {signer}"


async def _run(
    config: CentralConfig, args: argparse.Namespace, target: RolloutTarget | None
) -> tuple[str, dict[str, Any]]:
    engine = create_engine(config.database)
    try:
        registry = Registry(config, engine)
        command = args.models_command
        if command == "upload":
            result = await registry.upload(args.bundle)
            return _upload_text(result), {"created": result.created, "bundle": bundle_json(result.bundle)}
        if command == "list":
            overview = await registry.overview(history=args.history)
            return render_overview(overview), overview.as_json()
        if command == "rollout":
            assert target is not None
            sample = args.sample if args.sample is not None else DEFAULT_SHADOW_SAMPLE
            change = await registry.rollout(args.name, args.version, target, shadow=args.shadow, sample=sample)
            what = f"rollout {change.rollout_id}: {args.name} {args.version} -> {describe(target)}"
            return _change_text(change, what + (" (shadow)" if args.shadow else "")), _change_json(change)
        if command == "rollback":
            change = await registry.rollback(args.name, shadow=args.shadow)
            return _change_text(change, f"rolled back rollout {change.rollout_id}"), _change_json(change)
        change = await registry.announce()
        return _change_text(change, "announced the current state again"), _change_json(change)
    finally:
        await engine.dispose()


def run(config: CentralConfig, args: argparse.Namespace) -> int:
    """Run one `models` command; returns the exit status."""
    target = None
    if args.models_command == "rollout":
        try:
            target = _target(args)
        except ValueError as err:  # pydantic's ValidationError too: a target the command line got wrong
            detail = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
            sys.stderr.write(f"central-sync models rollout: {detail}\n")
            return 2
    try:
        text, document = asyncio.run(_run(config, args, target))
    except ConfigError as err:
        for problem in err.problems:
            sys.stderr.write(f"central-sync models: {problem}\n")
        return 2
    except DatabaseError as err:
        hint = " (run `central-sync migrate` first)" if "does not exist" in err.message else ""
        sys.stderr.write(f"central-sync models: database: {err.message}{hint}\n")
        return 1
    except CentralError as err:
        sys.stderr.write(f"central-sync models: {err.message}\n")
        return 1
    sys.stdout.write((json.dumps(document, indent=2) if args.json else text) + "\n")
    return 0
