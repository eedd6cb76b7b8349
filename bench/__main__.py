"""Command line: ``python -m bench accuracy --set NAME [--data DIR] [--url URL] [--token TOKEN] [--limit N]``;
``python -m bench queue``; ``python -m bench speed [--setup-peer] [options]`` (see ``bench/speed.py``).

NAME is one of the sets in ``bench.sets.SETS`` or ``all``. Without ``--url`` the pipeline runs in this process
(engines from ``EdgeConfig()``); with it, every image is POSTed to the node's ``/api/v1/ocr/process``. The figures
are printed, written to ``bench/reports/NAME.json`` and to the set's section of docs/BENCHMARKS.md.

The default data folder is ``../shared/bench`` next to the repository root, wherever the command runs from; an
explicit ``--data`` is taken as given (relative to the current directory). ``--token`` defaults to the
``BENCH_TOKEN`` environment variable and is never written to a report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.accuracy import Calls, stderr_progress
from bench.client import Backend, HttpBackend, InProcessBackend
from bench.datasets import DEFAULT_DATA_DIR
from bench.report import DOCS_PATH, REPORTS_DIR, RunInfo, render_section, summary_lines, update_docs, write_json
from bench.sets import CALL_UNITS, SETS

ALL = "all"


def _limit(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--limit must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="ZakPOS OCR benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    accuracy = commands.add_parser("accuracy", help="Accuracy on ../shared/bench; updates docs/BENCHMARKS.md.")
    accuracy.add_argument("--set", dest="set_name", required=True, choices=[*SETS, ALL], help="Which set to run.")
    accuracy.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="Benchmark data folder.")
    accuracy.add_argument("--url", help="Base URL of a running node, e.g. http://127.0.0.1:8000 (default: in-process).")
    accuracy.add_argument("--token", default=os.environ.get("BENCH_TOKEN"), help="Bearer token for --url.")
    accuracy.add_argument("--limit", type=_limit, help="Only the first N items of each set.")
    accuracy.add_argument("--reports", type=Path, default=REPORTS_DIR, help="Folder for the JSON reports.")
    accuracy.add_argument("--docs", type=Path, default=DOCS_PATH, help="The Markdown file to update.")
    accuracy.add_argument("--no-docs", action="store_true", help="Do not touch the Markdown file.")
    accuracy.add_argument("--quiet", action="store_true", help="No progress lines on stderr.")
    commands.add_parser("queue", help="Queue throughput, cache hits and crash recovery against a real node.")
    from bench.speed import add_arguments as add_speed_arguments

    speed = commands.add_parser(
        "speed", help="Latency, throughput, RSS and cold start of a real node beside the raw engines and rapidocr-api."
    )
    add_speed_arguments(speed)
    return parser


def command_line(argv: Sequence[str]) -> str:
    """The command as the docs show it, with any token value redacted."""
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            shown.append("***")
            hide_next = False
        elif arg == "--token":
            shown.append(arg)
            hide_next = True
        elif arg.startswith("--token="):
            shown.append("--token=***")
        else:
            shown.append(arg)
    return "python -m bench " + shlex.join(shown)


def make_backend(url: str | None, token: str | None) -> Backend:
    """The HTTP backend when a URL is given, else the in-process one."""
    return HttpBackend(url, token) if url else InProcessBackend()


def run_accuracy(args: argparse.Namespace, argv: Sequence[str], backend: Backend) -> int:
    """Run the chosen set(s) on ``backend``; 1 when some set had no successful call at all."""
    names = list(SETS) if args.set_name == ALL else [args.set_name]
    status = 0
    for name in names:
        calls = Calls(backend, progress=None if args.quiet else stderr_progress)
        info = RunInfo(
            command=command_line(argv),
            backend=backend.name,
            started_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            data_dir=str(args.data),
            limit=args.limit,
            url=args.url,
            setup_ms=getattr(backend, "setup_ms", None),
        )
        result = SETS[name](args.data, calls, args.limit)
        for line in summary_lines(result):
            print(line)
        path = write_json(result, info, args.reports)
        print(f"  report: {path}")
        if not args.no_docs:
            update_docs(args.docs, name, render_section(result, info, CALL_UNITS[name]), list(SETS))
            print(f"  docs:   {args.docs} (section {name})")
        if result.n_items and not any(result.calls.wall_ms.values()):
            status = 1
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "queue":
        from bench.queue_speed import main as queue_main

        return queue_main()
    if args.command == "speed":
        from bench.speed import main as speed_main

        return speed_main(args, argv, command_line(argv))
    if not args.data.is_dir():
        print(f"benchmark data folder not found: {args.data}", file=sys.stderr)
        return 2
    try:
        backend = make_backend(args.url, args.token)
    except ImportError as err:
        print(f"in-process backend unavailable ({err}); install the [edge] extra or pass --url", file=sys.stderr)
        return 2
    return run_accuracy(args, argv, backend)


if __name__ == "__main__":
    sys.exit(main())
