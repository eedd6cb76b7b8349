"""Sync figures for docs/BENCHMARKS.md (the `sync` section): central's drain rate, the OCR throughput a node
loses while it syncs, and the timings of the sync chaos test.

    .venv/bin/python -m bench.sync_figures [--only drain,overhead,chaos] [--drain-args "..."]
                                           [--overhead-args "..."] [--no-docs]

Each figure comes from its own command, run as a process of its own from the repository root:

- drain:    `python -m bench.central_drain` (a 10,000-result backlog -> PostgreSQL; target >= 1,000 results/s);
- overhead: `python -m bench.sync_overhead` (OCR jobs/s with sync off vs draining a backlog; target < 5% lost);
- chaos:    `python -m pytest tests/integration/test_sync_chaos.py` (SYNC_CHAOS_REPORT gets its timings).

Every run is kept in bench/reports/sync-NAME.json with its command, date and the machine's load average, and
the section is rendered from the reports present, so `--only` re-measures one figure and keeps the others.
Only the text between `<!-- bench:sync -->` and `<!-- /bench:sync -->` is rewritten (bench.report.update_docs).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.datasets import REPO_ROOT
from bench.queue_speed import SECTION as QUEUE_SECTION
from bench.report import DOCS_PATH, REPORTS_DIR, update_docs
from bench.sets import SETS

SECTION = "sync"
STEPS = ("drain", "overhead", "chaos")
#: Goals from the issue: central drains at least this many results per second ...
DRAIN_GOAL = 1000.0
#: ... and a node loses less than this share of its OCR throughput while it syncs.
OVERHEAD_GOAL_PCT = 5.0
#: Upper bound of one step (the overhead bench takes 2-3 minutes on 2 cores, the others about one).
STEP_TIMEOUT_SECONDS = 1800


def _command(step: str, extra: list[str]) -> tuple[list[str], str]:
    """(argv to run, the command as the docs show it) of one step; `extra` are the user's added arguments."""
    if step == "chaos":
        shown = ["python", "-m", "pytest", "tests/integration/test_sync_chaos.py", *extra]
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *shown[3:]], shlex.join(shown)
    module = {"drain": "bench.central_drain", "overhead": "bench.sync_overhead"}[step]
    return [sys.executable, "-m", module, *extra], shlex.join(["python", "-m", module, *extra])


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def measure(step: str, extra: list[str]) -> dict[str, Any]:
    """Run one step, return its report (command, date, load, figures) and keep it in bench/reports."""
    argv, shown = _command(step, extra)
    with tempfile.TemporaryDirectory(prefix="sync-figures-") as tmp:
        out = Path(tmp) / "figures.json"
        env = dict(os.environ)
        if step == "chaos":
            env["SYNC_CHAOS_REPORT"] = str(out)
        else:
            argv += ["--json", str(out)]
        started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        load_before = _load()
        print(f"== {step}: {shown}", flush=True)
        subprocess.run(argv, cwd=REPO_ROOT, env=env, check=True, timeout=STEP_TIMEOUT_SECONDS)
        figures = json.loads(out.read_text(encoding="utf-8"))
    report = {"step": step, "command": shown, "measured_at": started_at, "load_before": load_before,
              "load_after": _load(), "cpus": os.cpu_count(), "figures": figures}
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    (REPORTS_DIR / f"sync-{step}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _stored(step: str) -> dict[str, Any] | None:
    path = REPORTS_DIR / f"sync-{step}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def _when(report: dict[str, Any]) -> str:
    return f"{report['measured_at']}, load {report['load_before']} -> {report['load_after']}"


def _drain_rows(report: dict[str, Any]) -> list[str]:
    f = report["figures"]
    rows = [
        f"| central drain: {f['messages']:,} results from {f['nodes']} nodes ({f['mode']}) -> PostgreSQL | "
        f"{f['drain_rate']:,.0f} results/s ({f['drain_seconds']:.2f} s, {f['batches']} batches) | "
        f">= {DRAIN_GOAL:,.0f} results/s ({_met(f['drain_rate'] >= DRAIN_GOAL)}) | {_when(report)} | "
        f"`{report['command']}` |"
    ]
    if f.get("relay_rate") is not None:
        rows.append(f"| ... and relayed to Kafka (tansu) | {f['relay_rate']:,.0f} events/s "
                    f"({f['relay_seconds']:.2f} s) | | | same run |")
    return rows


def _overhead_rows(report: dict[str, Any]) -> list[str]:
    f = report["figures"]
    scope = f"{f['jobs']} jobs, median of {f['rounds']} rounds, node on {f['node_cores']} CPU"
    lost, cpu_lost = f["throughput_lost_pct"], f["cpu_efficiency_lost_pct"]
    per_round = [(1 - r["rate_on"] / r["rate_off"]) * 100 for r in f.get("rounds_detail", [])]
    spread = f"; single rounds {min(per_round):+.0f}% to {max(per_round):+.0f}%" if per_round else ""
    return [
        f"| OCR throughput lost while draining a {f['backlog']:,}-row backlog, wall clock ({scope}) | "
        f"{lost:.1f}% ({f['rate_off']:.2f} -> {f['rate_on']:.2f} jobs/s{spread}) | < {OVERHEAD_GOAL_PCT:.0f}% "
        f"({_met(lost < OVERHEAD_GOAL_PCT)}) | {_when(report)} | `{report['command']}` |",
        f"| OCR jobs per node CPU second lost, same runs | {cpu_lost:.1f}% ({f['per_cpu_off']:.2f} -> "
        f"{f['per_cpu_on']:.2f}) | < {OVERHEAD_GOAL_PCT:.0f}% ({_met(cpu_lost < OVERHEAD_GOAL_PCT)}) | | same run |",
    ]


def _chaos_rows(report: dict[str, Any]) -> list[str]:
    f = report["figures"]
    duplicates = sum(f["kafka_duplicates"].values())
    return [
        f"| chaos test: {f['jobs']:,} jobs accepted with the broker down ({f['completed']:,} completed, "
        f"{f['failed']} failed) | accepted in {f['accept_2000_s']:.1f} s, all run in {f['accept_and_process_s']:.1f} s"
        f" | | {_when(report)} | `{report['command']}` |",
        f"| chaos test: backlog -> PostgreSQL through central SIGKILL (at {f['central_killed_at_jobs']} jobs), "
        f"broker restart (at {f['broker_restarted_at_jobs']}) and a Kafka outage (at {f['kafka_stopped_at_jobs']}) "
        f"| {f['drain_to_postgres_s']:.1f} s (outbox empty {f['drain_to_empty_outbox_s']:.1f} s, every job id "
        f"on Kafka {f['drain_to_kafka_s']:.1f} s) | exactly once, none missing (met) | | same run |",
        f"| chaos test: Kafka records (duplicates) | {sum(f['kafka_records'].values()):,} ({duplicates}) | "
        f"duplicates counted, none missing | | same run |",
    ]


def render(reports: dict[str, dict[str, Any] | None]) -> str:
    """The Markdown body of the section from the stored reports."""
    lines = [
        "### sync: edge outbox -> MQTT -> central -> PostgreSQL and Kafka",
        "",
        "Rewritten by `python -m bench.sync_figures` from the runs kept in `bench/reports/sync-*.json`; each row "
        "gives the command that produced it and when. This machine has "
        f"{os.cpu_count()} cores and is shared with other work: the 1-minute load average before -> after each "
        "run is shown, as wall-clock figures move with it. Definitions: the module docstrings of "
        "`bench/central_drain.py`, `bench/sync_overhead.py` and `tests/integration/test_sync_chaos.py`.",
        "",
        "| figure | value | goal | measured | command |",
        "|---|---|---|---|---|",
    ]
    renderers = {"drain": _drain_rows, "overhead": _overhead_rows, "chaos": _chaos_rows}
    for step in STEPS:
        report = reports.get(step)
        if report is None:
            lines.append(f"| {step} | not measured yet | | | `python -m bench.sync_figures --only {step}` |")
        else:
            lines.extend(renderers[step](report))
    lines += [
        "",
        "- The chaos drain includes waits for the node's ack timeout (5 s in the test, 30 s by default): Mosquitto "
        "2.0.11 does not restore shared subscriptions from its persistence file, so after a broker (re)start what "
        "the node publishes before central has reconnected and subscribed again is dropped by the broker and sent "
        "again by the node when no ack comes. Nothing is lost; it costs up to one ack timeout per broker restart.",
        "- The throughput figure is the wall-clock loss the goal names; on a busy shared machine single rounds "
        "scatter widely (the range is in the row; every round in bench/reports/sync-overhead.json), so the median "
        "is a rough figure. The per-CPU figure is the loss on a node whose cores OCR keeps busy; it does not depend "
        "on what else the scheduler runs.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.sync_figures", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps to run ({', '.join(STEPS)})")
    parser.add_argument("--drain-args", default="", help="extra arguments for bench.central_drain")
    parser.add_argument("--overhead-args", default="", help="extra arguments for bench.sync_overhead")
    parser.add_argument("--chaos-args", default="", help="extra arguments for pytest")
    parser.add_argument("--docs", type=Path, default=DOCS_PATH, help="the Markdown file to update")
    parser.add_argument("--no-docs", action="store_true", help="do not touch the Markdown file")
    args = parser.parse_args()
    steps = [step.strip() for step in args.only.split(",") if step.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps: {', '.join(unknown)}")
    extra = {"drain": args.drain_args, "overhead": args.overhead_args, "chaos": args.chaos_args}
    reports: dict[str, dict[str, Any] | None] = {step: _stored(step) for step in STEPS}
    for step in STEPS:
        if step in steps:
            reports[step] = measure(step, shlex.split(extra[step]))
    body = render(reports)
    print(body)
    if not args.no_docs:
        update_docs(args.docs, SECTION, body, [*SETS, QUEUE_SECTION, SECTION])
        print(f"updated the `{SECTION}` section of {args.docs}")


if __name__ == "__main__":
    main()
