"""The engine's subcommands (``migrate``, ``status``, ``plan``), thin over the library."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .core import render_plan
from .shell import CHECKS, JOURNAL_MODES, inspect, migrate, refusal
from .spec import load_steps

_SPEC_HELP = (
    "the declared steps, as package.module:ATTR or path/to/file.py:ATTR "
    "(default: [tool.migproof] steps in ./pyproject.toml)"
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the engine's subcommands to the ``migproof`` parser."""
    p = sub.add_parser(
        "migrate",
        help="migrate a state file to the head version (or --to)",
        description="Take the write lock, check the file, optionally back it up, and run the "
        "pending steps in one transaction. Refusals leave the file untouched and exit with a "
        "distinct code (see docs/runbook.md).",
    )
    _common(p)
    p.add_argument(
        "--busy-timeout",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for another writer's lock (default 5)",
    )
    p.add_argument(
        "--check",
        choices=CHECKS,
        default="quick",
        help="preflight check before migrating: quick_check, integrity_check or none "
        "(default quick)",
    )
    p.add_argument(
        "--check-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="deadline for the preflight check (default 60)",
    )
    p.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="copy the file here (verified, mode 0600) before changing it",
    )
    p.add_argument(
        "--keep-backups",
        type=_count,
        default=5,
        metavar="K",
        help="backups of this file to keep in --backup-dir (default 5)",
    )
    p.add_argument(
        "--journal-mode",
        choices=JOURNAL_MODES,
        help="set this journal mode after migrating (default: keep the file's)",
    )
    p.set_defaults(handler=_migrate)

    p = sub.add_parser(
        "status",
        help="show the file's version and what migrate would do (read-only)",
        description="Read-only: the stored version, the head, the decision migrate would take "
        "and the pending steps. Never writes to the file. Exits with the code migrate would "
        "exit with: 0 when it would proceed, the refusal's code otherwise (see docs/runbook.md).",
    )
    _common(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_status)

    p = sub.add_parser(
        "plan",
        help="print the exact SQL migrate would run (read-only dry run)",
        description="Read-only dry run: print, as an SQL script, exactly what migrate would run "
        "on this file now. Never writes to the file.",
    )
    _common(p)
    p.set_defaults(handler=_plan)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("db", metavar="DB", help="path of the SQLite state file")
    p.add_argument("--steps", metavar="SPEC", help=_SPEC_HELP)
    p.add_argument(
        "--to",
        type=int,
        metavar="VERSION",
        dest="to_version",
        help="target version (default: the head)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more (the new backup is one of them)")
    return value


def _migrate(args: argparse.Namespace) -> int:
    steps = load_steps(args.steps)
    report = migrate(
        args.db,
        steps,
        to_version=args.to_version,
        busy_timeout=args.busy_timeout,
        check=args.check,
        check_timeout=args.check_timeout,
        backup_dir=args.backup_dir,
        keep_backups=args.keep_backups,
        journal_mode=args.journal_mode,
    )
    ms = report.duration_s * 1000.0
    if report.applied or report.repaired:
        parts = [f"{len(report.applied)} step(s)", f"{report.statements} statement(s)"]
        if report.repaired:
            parts.append(f"repaired: {', '.join(report.repaired)}")
        if report.skipped:
            parts.append(f"already present: {', '.join(report.skipped)}")
        print(
            f"{args.db}: migrated from version {report.from_version} to {report.to_version} "
            f"({'; '.join(parts)}; {ms:.0f} ms)"
        )
    else:
        print(f"{args.db}: current at version {report.to_version} ({ms:.1f} ms)")
    if report.backup:
        print(f"backup: {report.backup}")
    return 0


def _status(args: argparse.Namespace) -> int:
    steps = load_steps(args.steps)
    decision = inspect(args.db, steps, to_version=args.to_version)
    pending = [{"version": s.version, "name": s.name} for s in decision.plan.steps]
    # The exit code `migrate` would give, so a rollout script can branch on `status` alone.
    code = refusal(decision, args.db).exit_code if decision.verdict.refused else 0
    if args.json:
        print(
            json.dumps(
                {
                    "path": args.db,
                    "steps": steps.name,
                    "version": decision.version,
                    "head": decision.head,
                    "target": decision.target,
                    "min_supported": decision.min_supported,
                    "decision": decision.verdict.value,
                    "pending": pending,
                    "repairs": [op.description for op in decision.plan.repairs],
                    "reasons": list(decision.reasons),
                },
                indent=2,
            )
        )
        return code
    print(f"{args.db}: version {decision.version}, head {decision.head} ({steps.name})")
    print(f"decision: {decision.verdict.value}")
    for op in decision.plan.repairs:
        print(f"  repair: {op.description}")
    for step in pending:
        print(f"  pending: {step['version']} {step['name']}")
    for reason in decision.reasons:
        print(f"  - {reason}")
    return code


def _plan(args: argparse.Namespace) -> int:
    steps = load_steps(args.steps)
    print(render_plan(inspect(args.db, steps, to_version=args.to_version)), end="")
    return 0
