"""The engine's subcommands (``migrate``, ``status``, ``plan``), thin over the library."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from .errors import MigproofError
from .script import CHECKS, render
from .shell import JOURNAL_MODES, Inspection, inspect, migrate, refusal
from .spec import load_steps

if TYPE_CHECKING:
    from .steps import Steps

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
        "and the pending steps. Runs migrate's own sequence with the same options on a private "
        "copy of the file (in $TMPDIR) and rolls it back; a current file is recognised from its "
        "header, without a copy. Never writes to the file or beside it. Exits with the code "
        "migrate would: 0 when it would proceed, the refusal's code otherwise (see "
        "docs/runbook.md). It cannot foresee a lock, a full disk or the backup.",
    )
    _common(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_status)

    p = sub.add_parser(
        "plan",
        help="print the exact SQL migrate would run (read-only dry run)",
        description="Read-only dry run: print, as an SQL script, every statement migrate would "
        "run on this file now with the same options, in order. Never writes to the file; "
        "exits like status.",
    )
    _common(p)
    p.set_defaults(handler=_plan)


def _common(p: argparse.ArgumentParser) -> None:
    """Options every engine command takes, so status and plan see what migrate would."""
    p.add_argument("db", metavar="DB", help="path of the SQLite state file")
    p.add_argument("--steps", metavar="SPEC", help=_SPEC_HELP)
    p.add_argument(
        "--to",
        type=int,
        metavar="VERSION",
        dest="to_version",
        help="target version (default: the head)",
    )
    p.add_argument(
        "--check",
        choices=CHECKS,
        help="quick: quick_check, plus integrity_check of the tables a migration writes that "
        "have indexes; full: integrity_check; none: no check. Given, it runs even on a current "
        "file. Default: quick, and only when migrating (a current file takes the fast path, "
        "which reads three header fields and checks nothing else)",
    )
    p.add_argument(
        "--check-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="deadline for each round of checks (default 60)",
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


def _inspect(args: argparse.Namespace) -> tuple[Steps, Inspection, int]:
    """What migrate would do with these options, and the exit code it would give."""
    steps = load_steps(args.steps)
    found = inspect(
        args.db,
        steps,
        to_version=args.to_version,
        check=args.check,
        check_timeout=args.check_timeout,
    )
    d = found.decision
    return steps, found, refusal(d, args.db).exit_code if d.verdict.refused else 0


def _status(args: argparse.Namespace) -> int:
    try:
        steps, found, code = _inspect(args)
    except MigproofError as err:
        if not args.json:
            raise
        # A script reading --json gets an object whatever happened; the message goes to stderr.
        print(
            json.dumps({"path": args.db, "error": type(err).__name__, "exit_code": err.exit_code})
        )
        print(f"migproof: {err}", file=sys.stderr)
        return err.exit_code
    decision = found.decision
    pending = [{"version": s.version, "name": s.name} for s in decision.plan.steps]
    if args.json:
        print(
            json.dumps(
                {
                    "path": args.db,
                    "exists": found.exists,
                    "steps": steps.name,
                    "version": decision.version,
                    "head": decision.head,
                    "target": decision.target,
                    "min_supported": decision.min_supported,
                    "decision": decision.verdict.value,
                    "fast_path": found.fast_path,
                    "pending": pending,
                    "repairs": [op.description for op in decision.plan.repairs],
                    "reasons": list(decision.reasons),
                },
                indent=2,
            )
        )
        return code
    if not found.exists:
        print(
            f"{args.db}: no such file; migrate would create a new database at version "
            f"{decision.target} ({steps.name}). Check the path if you expected an existing file."
        )
    else:
        print(f"{args.db}: version {decision.version}, head {decision.head} ({steps.name})")
    fast = " (fast path: the header shows no change since the last migration)"
    print(f"decision: {decision.verdict.value}{fast if found.fast_path else ''}")
    for op in decision.plan.repairs:
        print(f"  repair: {op.description}")
    for step in pending:
        print(f"  pending: {step['version']} {step['name']}")
    for reason in decision.reasons:
        print(f"  - {reason}")
    return code


def _plan(args: argparse.Namespace) -> int:
    _, found, code = _inspect(args)
    print(render(found.decision, found.script, fast_path=found.fast_path), end="")
    return code
