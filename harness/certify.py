"""The certify runner: enumerate cases, run them, report, and write the certificate.

Every result carries one copy-paste line that replays its case from the seed::

    migproof certify SPEC --seed N --only CHECK --case 'CASE_ID' --expect FINGERPRINT

FINGERPRINT is ``<migproof version>:<12 hex>`` over the target's step checksums (when it
declares them) or its reference schemas at every version. A replay computes it again and says
so when it differs: the target or migproof changed, and a pass proves nothing about the
recorded failure.

Time is bounded per case (``RunConfig.case_timeout``): the target runs behind the sandbox
(``harness/sandbox.py``), so a hung call is killed at the case's deadline and the case fails
naming the call. The header is printed before any migration runs; a case that runs long
prints a heartbeat line every ``HEARTBEAT`` seconds. Whatever the target printed during a
failing case (its stdout and stderr) is shown with the failure, its last lines at least. A
closed output pipe (``certify | head``) silences the run instead of ending it, so the exit
code is still the verdict's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import platform
import shlex
import shutil
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO, cast

from migproof import __version__

from . import capability_gate, contract, dbfiles, identity, jobs
from .baseline import Baseline
from .cases import Case, CheckResult, RunConfig, Shard, Status, touches_since
from .context import DEFAULT_ROWS, ReferenceError_, RunContext, safe_name
from .crash.power_images import MODEL as POWER_MODEL
from .errors import UsageError
from .options import DEFAULT_CASE_TIMEOUT
from .sandbox import CaseTimeout, evidence

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import TypeAlias

    from .cases import Check, Context
    from .target import Target

    # One planned case: the check and its case, or -- for a check whose enumeration failed --
    # no case and the failed result that stands for it.
    Planned: TypeAlias = tuple[Check, Case | None, CheckResult | None]

HEARTBEAT: Final = 30.0  # seconds between "still running" lines of a long case
OUTPUT_TAIL: Final = 40  # lines of the target's output shown with a failure
_OUTPUT_READ: Final = 1 << 16  # bytes read from the end of an output log for its tail
_LINE_WIDTH: Final = 300  # characters of one output line shown
_DETAIL_LINES: Final = 120  # lines of a failure's detail in the summary (the JSON has all)


@dataclass(frozen=True, slots=True)
class Selection:
    checks: tuple[Check, ...]
    case_id: str | None = None
    expect: str | None = None
    since: int | None = None  # keep only cases that exercise a step newer than this version
    shard: Shard | None = None

    def keeps(self, case: Case) -> bool:
        if self.case_id is not None and case.id != self.case_id:
            return False
        if self.since is not None and not touches_since(case, self.since):
            return False
        return self.shard is None or self.shard.owns(case)


@dataclass(slots=True)
class Report:
    target: Target
    config: RunConfig
    fingerprint: str
    results: list[CheckResult] = field(default_factory=list)
    expect_mismatch: str | None = None
    selection: Selection | None = None
    rows: int = DEFAULT_ROWS
    source_files: tuple[str, ...] = ()
    started_at: float = field(default_factory=time.time)  # wall clock, for the certificate
    duration: float = 0.0

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status is Status.FAIL]

    @property
    def verdict(self) -> str:
        """``fail`` if any case failed; ``skipped`` if none ran (nothing was certified)."""
        if self.failed:
            return "fail"
        if not any(r.status in (Status.PASS, Status.WAIVED) for r in self.results):
            return "skipped"
        return "pass"

    def partial_because(self) -> list[str]:
        """Why this run does not certify the whole target (empty for a complete run)."""
        from .checks import ALL_CHECKS

        sel = self.selection
        if sel is None:
            return []
        why = []
        if {c.name for c in sel.checks} != {c.name for c in ALL_CHECKS}:
            why.append(f"only {', '.join(c.name for c in sel.checks)}")
        if sel.case_id is not None:
            why.append(f"only case {sel.case_id}")
        if sel.since is not None:
            why.append(f"only steps after v{sel.since}")
        if sel.shard is not None:
            why.append(f"shard {sel.shard.index}/{sel.shard.count}")
        return why

    def certificate(self) -> dict[str, Any]:
        sel = self.selection
        partial = self.partial_because()
        return {
            "format": CERTIFICATE_FORMAT,
            "verdict": self.verdict,
            "partial": bool(partial),
            "partial_because": partial,
            "target": self.target.name,
            "head": self.target.head,
            "spec": self.config.spec,
            "fingerprint": self.fingerprint,
            "source_files": list(self.source_files),
            "migproof_version": __version__,
            "sqlite_version": sqlite3.sqlite_version,
            "python_version": platform.python_version(),
            "settings": {
                "seed": self.config.seed,
                "rows": self.rows,
                "journal_modes": list(self.config.journal_modes),
                "crash_mode": self.config.crash_mode,
                "crash_at": self.config.crash_at,
                "race_procs": self.config.race_procs,
                "race_rounds": self.config.race_rounds,
                "jobs": self.config.jobs,
                "case_timeout": self.config.case_timeout,
                "power_images": self.config.power_images,
                "power_model": POWER_MODEL,
            },
            "selection": {
                "only": [c.name for c in sel.checks] if sel and partial else None,
                "case": sel.case_id if sel else None,
                "since": sel.since if sel else None,
                "shard": f"{sel.shard.index}/{sel.shard.count}" if sel and sel.shard else None,
            },
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(
                timespec="seconds"
            ),
            "duration": round(self.duration, 3),
            "counts": _counts(self.results),
            "checks": _per_check(self.results),
            "cases": [_case_entry(r) for r in self.results],
        }


# The certificate's layout; bumped when a key changes meaning or goes away.
CERTIFICATE_FORMAT: Final = 2


def _counts(results: Sequence[CheckResult]) -> dict[str, int]:
    out = {"cases": len(results)}
    for status in Status:
        out[status.value] = sum(1 for r in results if r.status is status)
    return out


def _per_check(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    """Cases per check, counted as the command line's summary counts them."""
    rows: dict[str, dict[str, Any]] = {}
    for r in results:
        row = rows.setdefault(
            r.case.check,
            {"check": r.case.check, "pass": 0, "fail": 0, "skip": 0, "waived": 0, "time": 0.0},
        )
        row[r.status.value] += 1
        row["time"] = round(row["time"] + r.duration, 3)
    return list(rows.values())


def _case_entry(r: CheckResult) -> dict[str, Any]:
    return {
        "id": r.case.id,
        "check": r.case.check,
        "status": r.status.value,
        "from_version": r.case.from_version,
        "to_version": r.case.to_version,
        "journal_mode": r.case.journal_mode,
        "point": r.case.point,
        "duration": round(r.duration, 3),
        "detail": r.detail,
        "reproduce": r.reproduce,
    }


@dataclass(frozen=True, slots=True)
class Identity:
    """What a fingerprint was computed from (the files are listed in the certificate)."""

    fingerprint: str
    source_files: tuple[str, ...]


def identify(ctx: Context) -> Identity:
    """The target's identity, without running any of its code.

    ``<migproof version>:<12 hex>`` over the SQLite version, the target's step checksums
    (``released_steps``, when it declares them), the source of the SPEC's module and the user
    modules it reaches (``identity``), and the project's declarations. Two targets whose code
    differs get different fingerprints even when their schemas agree.
    """
    target = ctx.target
    digest, files = identity.source_digest(ctx.config.spec)
    extra = contract.fingerprint_files(target)  # a command's scripts, hashed as its source is
    if extra:
        digest = hashlib.sha256(
            digest.encode() + b"".join(hashlib.sha256(f.read_bytes()).digest() for f in extra)
        ).hexdigest()
        files = [*files, *extra]
    steps = contract.released_steps(target) or ()
    declarations = {
        key: _plain(ctx.config.project.section(key))
        for key in ("changes", "columns", "examples", "command")
    }
    text = "\n".join(
        [
            f"sqlite {sqlite3.sqlite_version}",
            f"target {target.name} head {target.head}",
            *(f"step {v} {name} {checksum}" for v, name, checksum in steps),
            f"source {digest}",
            f"declarations {json.dumps(declarations, sort_keys=True, default=str)}",
        ]
    )
    fp = f"{__version__}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    return Identity(fp, tuple(_shown(f) for f in files))


def fingerprint(ctx: Context) -> str:
    return identify(ctx).fingerprint


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def reproduce_line(config: RunConfig, case: Case, fp: str, *, rows: int = DEFAULT_ROWS) -> str:
    defaults = RunConfig(spec="", seed=0, workdir=Path())
    parts = [
        "migproof certify",
        _quote(config.spec),
        f"--seed {config.seed}",
        f"--only {case.check}",
        f"--case {_quote_always(case.id)}",
        f"--expect {fp}",
    ]
    if rows != DEFAULT_ROWS:
        parts.append(f"--rows {rows}")
    if config.case_timeout != DEFAULT_CASE_TIMEOUT:
        parts.append(f"--case-timeout {config.case_timeout:g}")
    if config.journal_modes != defaults.journal_modes:
        # Some checks work in the first mode only, and the fingerprint reads it: a replay in
        # other modes would not enumerate the case, or would say the fingerprint changed.
        parts.append(f"--journal-modes {','.join(config.journal_modes)}")
    if case.check == "crash-recovery" and config.crash_mode != defaults.crash_mode:
        parts.append(f"--crash-mode {config.crash_mode}")
    if case.check == "crash-recovery" and config.crash_at != defaults.crash_at:
        parts.append(f"--crash-at {config.crash_at}")
    if case.check == "power-loss" and config.power_images != defaults.power_images:
        parts.append(f"--power-images {config.power_images}")
    if case.check == "race":
        if config.race_procs != defaults.race_procs:
            parts.append(f"--race-procs {config.race_procs}")
        if config.race_rounds != defaults.race_rounds:
            parts.append(f"--race-rounds {config.race_rounds}")
    return " ".join(parts)


def _quote(text: str) -> str:
    return shlex.quote(text)


def _quote_always(text: str) -> str:
    return f"'{text}'" if "'" not in text else shlex.quote(text)


def enumerate_cases(ctx: Context, checks: Sequence[Check]) -> list[Planned]:
    """Each check's cases; a check whose enumeration fails yields one failed result instead."""
    out: list[Planned] = []
    for check in checks:
        cannot = capability_gate.check_skip(ctx, check)
        if cannot is not None:  # a check that cannot look at this target: one skip, named
            out.append((check, None, CheckResult(Case(check.name), Status.SKIP, cannot)))
            continue
        try:
            cases = list(check.cases(ctx))
        except ReferenceError_ as err:
            out.append((check, None, CheckResult(Case(check.name), Status.FAIL, str(err))))
            continue
        out.extend((check, c, None) for c in cases)
    return out


def case_of(planned: Planned) -> Case:
    """The case a planned entry stands for (a check that failed to enumerate: ``Case(check)``)."""
    _check, case, early = planned
    if case is None:
        assert early is not None
        return early.case
    return case


def plan(ctx: Context, selection: Selection) -> list[Planned]:
    """What a run does, in order: ``certify``, ``certify --list`` and the pytest plugin's items."""
    planned = enumerate_cases(ctx, selection.checks)
    return [p for p in planned if p[1] is None or selection.keeps(p[1])]


def run(
    target: Target,
    config: RunConfig,
    selection: Selection,
    *,
    rows: int = DEFAULT_ROWS,
    out: TextIO = sys.stdout,
    on_result: Callable[[CheckResult], None] | None = None,
    workdir_kept: bool = True,
    heartbeat: float = HEARTBEAT,
) -> Report:
    """Run the selected cases, printing progress to ``out``; ``workdir_kept`` says whether
    ``config.workdir`` outlives the run (a failure then names its output log there)."""
    out = cast("TextIO", _PipeSafe(out))
    began = time.monotonic()
    contract.check(target, config.project)
    load_baseline(config, rows, target.name)
    # After the usage checks, before any migration runs (the context and the fingerprint
    # build reference DBs): a target that hangs at once still shows what is being certified.
    print(
        f"migproof certify: {target.name} (head {target.head}), seed {config.seed}, "
        f"journal modes {','.join(config.journal_modes)}, "
        f"case deadline {config.case_timeout:g} s",
        file=out,
        flush=True,
    )
    ctx = RunContext(target, config, rows=rows)
    ctx.workdir_kept = workdir_kept
    try:
        ident = identify(ctx)
        fp = ident.fingerprint
        report = Report(
            target, config, fp, selection=selection, rows=rows, source_files=ident.source_files
        )
        if selection.expect is not None and selection.expect != fp:
            report.expect_mismatch = (
                f"fingerprint mismatch: the line was recorded with {selection.expect}, "
                f"this run is {fp}. "
                "The target's steps (or migproof) changed since; this replay does not "
                "necessarily exercise the recorded failure."
            )
            print(f"migproof: warning: {report.expect_mismatch}", file=out)
        planned = plan(ctx, selection)
        if selection.case_id is not None and not planned:
            planned = _unlisted_case(selection)
            if not planned:
                raise UsageError(_no_such_case(ctx, selection))
        print(f"{len(planned)} cases, fingerprint {fp}", file=out, flush=True)
        width = len(str(len(planned)))
        results: list[CheckResult | None] = [None] * len(planned)

        def finished(index: int, result: CheckResult) -> None:
            results[index] = result
            done = sum(r is not None for r in results)
            _progress(out, done, len(planned), width, result)
            if on_result is not None:
                on_result(result)

        def one(job_ctx: RunContext, planned_case: Planned) -> CheckResult:
            with _heartbeat(job_ctx, out, heartbeat):
                return run_case(job_ctx, planned_case, fp, rows=rows)

        if config.jobs > 1 and len(planned) > 1:

            def job_context() -> RunContext:
                job_ctx = RunContext(target, config, rows=rows, reuse=True)
                job_ctx.workdir_kept = workdir_kept
                return job_ctx

            jobs.run_parallel(
                job_context, one, planned, range(len(planned)), jobs=config.jobs, on_result=finished
            )
        for i, planned_case in enumerate(planned):
            if results[i] is None:
                finished(i, one(ctx, planned_case))
        report.results.extend(r for r in results if r is not None)
    finally:
        ctx.close()
    report.duration = time.monotonic() - began
    print_summary(report, out)
    return report


def run_case(
    ctx: RunContext, planned: Planned, fp: str, *, rows: int = DEFAULT_ROWS
) -> CheckResult:
    """Run one planned case (deadline, timing, the target's output with a failure, the
    reproduction line, ``--keep-failures``): ``certify``'s and the plugin's entry."""
    check, case, early = planned
    if case is None:
        assert early is not None
        # The check failed to enumerate: what the target printed then is in the setup log.
        return dataclasses.replace(
            early,
            detail=early.detail + _output_tail(ctx.setup_output, None),
            reproduce=reproduce_line(ctx.config, early.case, fp, rows=rows),
        )
    ctx.begin_case(case)
    failed = True
    try:
        started = time.perf_counter()
        result = _checked(ctx, check, case)
        result = dataclasses.replace(
            result,
            reproduce=result.reproduce or reproduce_line(ctx.config, case, fp, rows=rows),
            duration=result.duration or (time.perf_counter() - started),
        )
        accepted = load_baseline(ctx.config, rows, ctx.target.name)
        if accepted is not None:
            result = accepted.judge(result)
        failed = result.status is Status.FAIL
        if failed:
            keep = ctx.config.keep_failures
            kept_log = keep / safe_name(case.id) / "output.log" if keep is not None else None
            shown = kept_log or (ctx.output() if ctx.workdir_kept else None)
            result = dataclasses.replace(
                result, detail=result.detail + _output_tail(ctx.output(), shown)
            )
            if keep is not None:
                _keep(ctx, result, keep)
        return result
    finally:
        # A passing case's copies are litter; a failing one's are evidence (--keep-failures,
        # --workdir).
        ctx.end_case(keep=failed)


def _checked(ctx: RunContext, check: Check, case: Case) -> CheckResult:
    """``check.run``, with a hung target, a harness bug or an overrun deadline as a FAIL."""
    try:
        result = capability_gate.run(ctx, check, case)
    except ReferenceError_ as err:
        return CheckResult(case, Status.FAIL, str(err))
    except CaseTimeout as err:
        what = (
            f"{err.call} was still running when the case's deadline ran out "
            f"({err.waited:.0f} s into the call); its process group was killed."
            if err.started
            else f"the case's deadline ran out before {err.call} could start."
        )
        return CheckResult(case, Status.FAIL, f"{what} {_deadline_advice(ctx.config)}")
    except Exception as err:
        tb = traceback.format_exception(err)[-3:]
        return CheckResult(
            case, Status.FAIL, f"the check itself raised {type(err).__name__}: {err}\n{''.join(tb)}"
        )
    if result.status is Status.FAIL and ctx.expired():
        # The check's own waits (race rounds, crash workers) were cut to the case's deadline.
        return dataclasses.replace(
            result,
            detail=f"the case ran out of its deadline. {_deadline_advice(ctx.config)} "
            f"What the check saw then:\n{result.detail}",
        )
    return result


def _deadline_advice(config: RunConfig) -> str:
    return (
        f"A case may take {config.case_timeout:g} s; a target that needs longer: "
        "--case-timeout SECONDS (pytest: --migproof-case-timeout, [tool.migproof] case_timeout)."
    )


_BASELINES: dict[tuple[Path, int, int], Baseline] = {}


def load_baseline(config: RunConfig, rows: int, target: str) -> Baseline | None:
    """The run's baseline (read once per process), checked to apply to this target, seed and
    row count: a usage error before any case runs otherwise."""
    path = config.baseline
    if path is None:
        return None
    key = (path, config.seed, rows)
    found = _BASELINES.get(key)
    if found is None:
        found = Baseline.load(path)
        found.check_applies(target, config.seed, rows, path)
        _BASELINES[key] = found
    return found


def _output_tail(log: Path, shown: Path | None) -> str:
    """The last ``OUTPUT_TAIL`` lines the target printed into ``log`` ("" when it printed
    nothing), for a failure's detail; ``shown`` is where the whole log can be read."""
    try:
        with log.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _OUTPUT_READ))
            data = f.read()
    except OSError:
        return ""
    if not data.strip():
        return ""
    lines = data.decode("utf-8", "backslashreplace").splitlines()
    if size > len(data):
        lines = lines[1:]  # the first one is cut
    tail = lines[-OUTPUT_TAIL:]
    where = f"; all of it in {shown}" if shown is not None else ""
    head = f"--- the target's output (stdout and stderr), last {len(tail)} lines{where} ---"
    return "\n" + evidence([head, *(line[:_LINE_WIDTH] for line in tail)])


@contextlib.contextmanager
def _heartbeat(ctx: RunContext, out: TextIO, interval: float) -> Iterator[None]:
    """While the cases run, a thread prints "... <case> still running after N s: <what>" for
    a case that has run ``interval`` seconds since its start or its last such line."""
    stop = threading.Event()

    def beat() -> None:
        printed = 0.0
        while not stop.wait(min(interval, 1.0)):
            running = ctx.running()
            now = time.monotonic()
            if running is not None and now - max(running[0], printed) >= interval:
                print(f"... {running[1]}", file=out, flush=True)
                printed = now

    thread = threading.Thread(target=beat, name="migproof-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class _PipeSafe(io.TextIOBase):
    """The run's output, written by the run and its heartbeat thread one write at a time; once
    its pipe is closed (``| head``) every write goes to /dev/null, so the run goes on to its
    verdict and exit code."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out
        self._lock = threading.RLock()
        self._broken = False

    def write(self, text: str) -> int:
        with self._lock:
            if not self._broken:
                try:
                    self._out.write(text)
                except BrokenPipeError:
                    self._silence()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if not self._broken:
                try:
                    self._out.flush()
                except BrokenPipeError:
                    self._silence()

    def _silence(self) -> None:
        self._broken = True
        # Later writes to the same descriptor (the interpreter's own flush at exit, a
        # "certificate written" line) must not fail again: point it at /dev/null.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._out.fileno())
            os.close(null)


def _progress(out: TextIO, i: int, n: int, width: int, r: CheckResult) -> None:
    line = f"[{i:>{width}}/{n}] {r.status.value.upper():4} {r.case.id} ({r.duration:.2f}s)"
    if r.status is not Status.PASS and r.detail:
        line += "  " + r.detail.splitlines()[0][:160]
    print(line, file=out, flush=True)


def print_summary(report: Report, out: TextIO) -> None:
    rows = _per_check(report.results)
    name_w = max([len("check"), *(len(r["check"]) for r in rows)])
    print("", file=out)
    print(
        f"{'check':<{name_w}}  {'pass':>5} {'fail':>5} {'skip':>5} {'waived':>6} {'time':>8}",
        file=out,
    )
    for row in rows:
        mark = "  <-- FAIL" if row["fail"] else ("  (not run)" if not row["pass"] else "")
        print(
            f"{row['check']:<{name_w}}  {row['pass']:>5} {row['fail']:>5} {row['skip']:>5} "
            f"{row['waived']:>6} {row['time']:>7.2f}s{mark}",
            file=out,
        )
    skipped = _skip_reasons(report.results)
    if skipped:
        print("\nSKIPPED (not checked, and not counted as passing):", file=out)
        for (check, reason), n in skipped.items():
            print(f"  {check} ({n} case{'s' if n != 1 else ''}): {reason}", file=out)
    accepted = load_baseline(report.config, report.rows, report.target.name)
    if accepted is not None:
        stale = [
            r.case.id
            for r in report.results
            if r.status is Status.PASS and r.case.id in accepted.waived
        ]
        if stale:
            print(
                f"\nSTALE baseline entries (these cases pass now; rewrite {report.config.baseline} "
                "with --write-baseline):",
                file=out,
            )
            for case_id in stale:
                print(f"  {case_id}", file=out)
    for r in report.failed:
        print(f"\nFAIL {r.case.id}\n{_indent(r.detail)}\n  reproduce: {r.reproduce}", file=out)
    if report.expect_mismatch:
        print(f"\nNOTE: {report.expect_mismatch}", file=out)
    print("\n" + verdict_line(report), file=out)


def verdict_line(report: Report) -> str:
    """The run's last line: PASS only when something ran, nothing failed; partial runs say so."""
    counts = _counts(report.results)
    name = report.target.name
    if report.verdict == "fail":
        return f"FAIL: {name} -- {counts['fail']} of {counts['cases']} cases failed"
    if report.verdict == "skipped":
        return (
            f"NOT CERTIFIED: {name} -- all {counts['cases']} cases were skipped; nothing was "
            "checked (the reasons are listed above)"
        )
    line = f"PASS: {name} -- {counts['pass']} of {counts['cases']} cases passed"
    if counts["skip"]:
        line += f", {counts['skip']} skipped"
    if counts["waived"]:
        line += f", {counts['waived']} waived by the baseline"
    partial = report.partial_because()
    if partial:
        line += f" (partial: {'; '.join(partial)})"
    return line


def _skip_reasons(results: Sequence[CheckResult]) -> dict[tuple[str, str], int]:
    """Each check's distinct reasons for skipping, with how many cases gave each."""
    out: dict[tuple[str, str], int] = {}
    for r in results:
        if r.status is Status.SKIP:
            reason = (r.detail.splitlines() or ["no reason given"])[0]
            out[(r.case.check, reason)] = out.get((r.case.check, reason), 0) + 1
    return out


def _indent(text: str) -> str:
    lines = text.splitlines()
    cut = (
        [f"... {len(lines) - _DETAIL_LINES} more lines in the certificate (--json)"]
        if len(lines) > _DETAIL_LINES
        else []
    )
    return "\n".join("  " + line for line in lines[:_DETAIL_LINES] + cut)


def _keep(ctx: RunContext, result: CheckResult, dest: Path) -> None:
    folder = dest / safe_name(result.case.id)
    folder.mkdir(parents=True, exist_ok=True)
    for src in ctx.case_scratch():
        shutil.copytree(src, folder / src.name, dirs_exist_ok=True)
    for db in ctx.case_shared():
        if db.exists():
            dbfiles.copy(db, folder / db.name)
    if ctx.output().exists():
        shutil.copyfile(ctx.output(), folder / "output.log")
    (folder / "README.txt").write_text(
        f"{result.case.id}\n\n{result.detail}\n\nreproduce: {result.reproduce}\n"
    )


def _unlisted_case(selection: Selection) -> list[Planned]:
    """A case id no check enumerates, but one a check can rebuild from its id.

    A failing crash-point group names its single failing point (``...,k7]``) so that it
    replays alone; checks that can narrow a case that way offer ``case_for(id)``.
    """
    assert selection.case_id is not None
    for check in selection.checks:
        case_for = getattr(check, "case_for", None)
        case = case_for(selection.case_id) if callable(case_for) else None
        if isinstance(case, Case):
            return [(check, case, None)]
    return []


def _no_such_case(ctx: Context, selection: Selection) -> str:
    ids = [c.id for ch in selection.checks for c in ch.cases(ctx)]
    shown = "\n  ".join(ids[:30]) + ("\n  ..." if len(ids) > 30 else "")
    return f"no case {selection.case_id!r} among the selected checks; the cases are:\n  {shown}"


def write_certificate(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report.certificate(), indent=2) + "\n")
