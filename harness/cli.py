"""The harness's subcommands (``certify``, ``freeze``); each imports its library lazily.

``migproof migrate`` must stay fast, so nothing here imports Hypothesis or the checks until
``certify`` actually runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import options

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

    from .cases import Shard
    from .project import Project

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the harness's subcommands to the ``migproof`` parser."""
    from .cases import RunConfig
    from .context import DEFAULT_ROWS

    # The defaults a reproduction line leaves out (``certify.reproduce_line``): one source.
    defaults = RunConfig(spec="", seed=0, workdir=Path())
    p = sub.add_parser(
        "certify",
        help="certify a migrator: populated fixtures at every version, structural oracle, refusals",
        description=(
            "Run migproof's checks against a migrator and print a verdict. SPEC is "
            "'package.module:ATTR' or 'path/to/file.py:ATTR' naming engine Steps or a target "
            "(name, head, migrate(db_path, target=None), version(db_path)); default: "
            "[tool.migproof] target, else steps, in ./pyproject.toml. Exit 0 when every check "
            "passes, 1 when any fails, 2 on a usage error."
        ),
    )
    p.add_argument("spec", nargs="?", metavar="SPEC", help="steps or target to certify")
    p.add_argument(
        "--seed", type=_nonneg_int, default=0, help="seed for every random choice (default 0)"
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the certificate (JSON) to FILE")
    p.add_argument("--only", type=_names, metavar="CHECK[,CHECK]", help="run only these checks")
    p.add_argument(
        "--case", metavar="ID", help="run only the case with this id (from a reproduction line)"
    )
    p.add_argument("--expect", metavar="FP", help="fingerprint recorded with a reproduction line")
    p.add_argument(
        "--journal-modes",
        type=_modes,
        default=defaults.journal_modes,
        metavar="MODES",
        help=f"journal modes to prepare files in (default {','.join(defaults.journal_modes)})",
    )
    p.add_argument(
        "--crash-mode",
        choices=options.CRASH_MODES,
        default=defaults.crash_mode,
        help=f"how crash-recovery crashes (default {defaults.crash_mode})",
    )
    p.add_argument(
        "--crash-at",
        choices=options.CRASH_LEVELS,
        default=None,
        help=(
            "crash-recovery's crash points: every SQL statement, or every write to the "
            "database's files (recorded with strace; any process, any language) (default: "
            f"[tool.migproof] crash_at, else {defaults.crash_at})"
        ),
    )
    p.add_argument(
        "--race-procs",
        type=_race_procs,
        default=defaults.race_procs,
        metavar="N",
        help=f"processes per race round (default {defaults.race_procs})",
    )
    p.add_argument(
        "--race-rounds",
        type=_pos_int,
        default=defaults.race_rounds,
        metavar="N",
        help=f"race rounds per version pair (default {defaults.race_rounds})",
    )
    p.add_argument(
        "--power-images",
        type=_pos_int,
        default=defaults.power_images,
        metavar="N",
        help=f"power-loss images per sync barrier, at most (default {defaults.power_images})",
    )
    p.add_argument(
        "--rows",
        type=_pos_int,
        default=DEFAULT_ROWS,
        metavar="N",
        help=f"max rows per table in fixtures (default {DEFAULT_ROWS})",
    )
    p.add_argument(
        "--case-timeout",
        type=_seconds,
        default=defaults.case_timeout,
        metavar="SECONDS",
        help=(
            "kill the target and fail the case when one case runs longer "
            f"(default {defaults.case_timeout:g})"
        ),
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_pos_int,
        default=None,
        metavar="N",
        help="processes running cases at once (default: [tool.migproof] jobs, else every core; "
        "never two race cases at once)",
    )
    p.add_argument(
        "--keep-failures", type=Path, metavar="DIR", help="copy each failing case's files into DIR"
    )
    p.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="work in DIR and keep it (default: a temporary directory)",
    )
    p.add_argument("--list", action="store_true", help="list the case ids and exit")
    p.add_argument(
        "--since",
        type=_nonneg_int,
        metavar="V",
        help="only cases that exercise a step newer than V (certify a new step before merging)",
    )
    p.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="run only shard I of N (deterministic by case id), for a CI matrix",
    )
    p.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="write a Markdown summary (for a CI job summary) to FILE",
    )
    p.add_argument(
        "--fixtures",
        type=Path,
        metavar="DIR",
        help="frozen fixtures and lock file (default: [tool.migproof] fixtures, else ./fixtures)",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="accepted findings to report as waived (default: [tool.migproof] baseline, else "
        "./migproof-baseline.json if it exists)",
    )
    p.add_argument(
        "--write-baseline",
        type=Path,
        metavar="FILE",
        help="run without a baseline and record every finding in FILE (accept them all)",
    )
    p.set_defaults(handler=certify_command)

    f = sub.add_parser(
        "freeze",
        help="record the released versions: a seeded fixture dump per version and the lock file",
        description=(
            "Record every version up to head that is not recorded yet, as released: a SQL dump "
            "of a seeded, populated database at that version in DIR/<target>/v<N>.sql, and the "
            "step's checksum chained into DIR/<target>/migproof.lock. Nothing already recorded "
            "is rewritten; a released step whose content changed is refused (exit 1). "
            "`certify` then replays every dump and checks the lock file."
        ),
    )
    f.add_argument(
        "spec",
        nargs="?",
        metavar="SPEC",
        help="steps or target (default: [tool.migproof] target, else steps)",
    )
    f.add_argument(
        "--seed", type=_nonneg_int, default=0, help="seed for the fixtures' rows (default 0)"
    )
    f.add_argument(
        "--rows",
        type=_pos_int,
        default=DEFAULT_ROWS,
        metavar="N",
        help=f"max rows per table (default {DEFAULT_ROWS})",
    )
    f.add_argument(
        "--fixtures",
        type=Path,
        metavar="DIR",
        help="where to record (default: [tool.migproof] fixtures, else ./fixtures)",
    )
    f.set_defaults(handler=freeze_command)


class Terminated(BaseException):
    """SIGTERM arrived: the run unwinds (its ``finally`` blocks remove temporary folders)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _signals_end_the_run() -> Iterator[None]:
    """SIGINT and SIGTERM kill the target's process groups first, then unwind the run."""

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        from . import forked

        forked.kill_all()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (an embedding program's worker thread)
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def check_output_paths(args: argparse.Namespace) -> None:
    """Refuse, before anything runs, an output path that cannot be written: a usage error."""
    from .errors import UsageError

    for option, path, is_folder in (
        ("--json", args.json, False),
        ("--markdown", args.markdown, False),
        ("--write-baseline", args.write_baseline, False),
        ("--keep-failures", args.keep_failures, True),
    ):
        if path is None:
            continue
        problem = _unwritable(Path(path), is_folder=is_folder)
        if problem:
            raise UsageError(f"{option} {path}: {problem}. Nothing was run.")


def _unwritable(path: Path, *, is_folder: bool) -> str | None:
    if path.exists():
        if path.is_dir() != is_folder:
            return "is a folder" if path.is_dir() else "is not a folder"
        if not os.access(path if is_folder else path.parent, os.W_OK):
            return "is not writable"
        return None
    parent = path.parent
    if not parent.is_dir():
        return f"its folder {parent} does not exist"
    if not os.access(parent, os.W_OK):
        return f"its folder {parent} is not writable"
    return None


def certify_command(args: argparse.Namespace) -> int:
    check_output_paths(args)
    with _signals_end_the_run():
        return _certify(args)


def _certify(args: argparse.Namespace) -> int:
    from .cases import RunConfig
    from .certify import Selection, run, write_certificate
    from .checks import select
    from .spec import baseline_file, default_fixtures, default_spec, load_target, project_at

    spec = args.spec or default_spec()
    target = load_target(spec)
    project = project_at()
    checks = select(args.only)
    baseline = (
        None if args.write_baseline else args.baseline or baseline_file(Path(), project.table)
    )
    workdir = args.workdir
    temporary = workdir is None
    try:
        if temporary:
            workdir = Path(tempfile.mkdtemp(prefix="migproof-certify-"))
        config = RunConfig(
            spec=spec,
            seed=args.seed,
            workdir=workdir,
            journal_modes=args.journal_modes,
            crash_mode=args.crash_mode,
            crash_at=args.crash_at or _table_crash_at(project),
            race_procs=args.race_procs,
            race_rounds=args.race_rounds,
            power_images=args.power_images,
            keep_failures=args.keep_failures,
            fixtures_dir=args.fixtures or default_fixtures(),
            project=project,
            case_timeout=args.case_timeout,
            baseline=baseline,
            jobs=args.jobs or _table_jobs(project),
        )
        selection = Selection(checks, args.case, args.expect, since=args.since, shard=args.shard)
        if args.list:
            from .certify import case_of, plan
            from .context import RunContext

            ctx = RunContext(target, config, rows=args.rows)
            try:
                for planned in plan(ctx, selection):
                    failed = planned[1] is None
                    print(case_of(planned).id + (" (cannot enumerate)" if failed else ""))
            finally:
                ctx.close()
            return 0
        report = run(
            target, config, selection, rows=args.rows, out=sys.stdout, workdir_kept=not temporary
        )
        if args.write_baseline is not None:
            from .baseline import Baseline

            recorded = Baseline.of(target.name, args.seed, args.rows, report.results)
            recorded.save(args.write_baseline)
            n = sum(len(v) for v in recorded.waived.values())
            print(
                f"baseline written to {args.write_baseline}: {n} findings of "
                f"{len(recorded.waived)} cases accepted; later runs report them as waived and "
                "fail on anything new. Commit the file."
            )
            return 0
        if args.json is not None:
            write_certificate(report, args.json)
            print(f"certificate written to {args.json}")
        if args.markdown is not None:
            from .markdown import render_certificate

            args.markdown.write_text(render_certificate(report.certificate()), encoding="utf-8")
            print(f"summary written to {args.markdown}")
        return 0 if report.verdict == "pass" else 1
    finally:
        if temporary and workdir is not None:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


def freeze_command(args: argparse.Namespace) -> int:
    from .cases import RunConfig
    from .context import RunContext
    from .frozen import FrozenSet, freeze
    from .spec import default_fixtures, default_spec, load_target, project_at

    spec = args.spec or default_spec()
    target = load_target(spec)
    project = project_at()
    fixtures = args.fixtures or default_fixtures() or Path("fixtures")
    with tempfile.TemporaryDirectory(prefix="migproof-freeze-") as tmp:
        config = RunConfig(
            spec=spec,
            seed=args.seed,
            workdir=Path(tmp),
            journal_modes=("delete",),
            fixtures_dir=fixtures,
            project=project,
        )
        result = freeze(RunContext(target, config, rows=args.rows), fixtures)
    folder = FrozenSet.of(fixtures, target).folder
    if not result.dumped and not result.locked:
        print(
            f"{target.name}: every version up to v{target.head} is already frozen in {folder}; nothing to do."
        )
        return 0
    dumped = ", ".join(f"v{v}" for v in result.dumped) or "none"
    locked = ", ".join(f"v{v}" for v in result.locked) or "none"
    print(
        f"{target.name}: froze fixtures {dumped} and locked steps {locked} in {folder}. Commit that folder."
    )
    return 0


def _table_crash_at(project: Project) -> str:
    """``[tool.migproof] crash_at``, checked as ``--crash-at`` is; else the default."""
    from .errors import UsageError

    value = project.table.get("crash_at", "statements")
    try:
        return options.crash_at(str(value))
    except ValueError as err:
        raise UsageError(f"[tool.migproof] crash_at {err}. Nothing was run.") from None


def _table_jobs(project: Project) -> int:
    """``[tool.migproof] jobs``, else every core this process may run on."""
    configured = project.table.get("jobs")
    if configured is not None:
        try:
            return options.whole_number(str(configured), minimum=1)
        except ValueError as err:
            from .errors import UsageError

            raise UsageError(f"[tool.migproof] jobs: {err}") from None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _shard(text: str) -> Shard:
    from .cases import Shard

    try:
        return Shard.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _argparse_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An ``options`` parser as an argparse type (argparse names the option in the error)."""

    def parsed(text: str) -> T:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return parsed


_nonneg_int = _argparse_type(functools.partial(options.whole_number, minimum=0))
_pos_int = _argparse_type(functools.partial(options.whole_number, minimum=1))
_race_procs = _argparse_type(
    functools.partial(options.whole_number, minimum=options.MIN_RACE_PROCS)
)
_names = _argparse_type(options.check_names)
_modes = _argparse_type(options.journal_modes)
_seconds = _argparse_type(options.seconds)
