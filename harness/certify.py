"""The certify runner: enumerate cases, run them, report, and write the certificate.

Every result carries one copy-paste line that replays its case from the seed::

    migproof certify SPEC --seed N --only CHECK --case 'CASE_ID' --expect FINGERPRINT

FINGERPRINT is ``<migproof version>:<12 hex>`` over the target's step checksums (when it
declares them) or its reference schemas at every version. A replay computes it again and says
so when it differs: the target or migproof changed, and a pass proves nothing about the
recorded failure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import shlex
import shutil
import sqlite3
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from migproof import __version__

from . import capability_gate, contract, dbfiles, identity
from .baseline import Baseline
from .cases import Case, CheckResult, RunConfig, Shard, Status, touches_since
from .context import DEFAULT_ROWS, ReferenceError_, RunContext, safe_name
from .errors import UsageError
from .power_images import MODEL as POWER_MODEL

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeAlias

    from .cases import Check, Context
    from .target import Target

    # One planned case: the check and its case, or -- for a check whose enumeration failed --
    # no case and the failed result that stands for it.
    Planned: TypeAlias = tuple[Check, Case | None, CheckResult | None]


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
) -> Report:
    began = time.monotonic()
    contract.check(target, config.project)
    load_baseline(config, rows, target.name)
    ctx = RunContext(target, config, rows=rows)
    ident = identify(ctx)
    fp = ident.fingerprint
    report = Report(
        target, config, fp, selection=selection, rows=rows, source_files=ident.source_files
    )
    if selection.expect is not None and selection.expect != fp:
        report.expect_mismatch = (
            f"fingerprint mismatch: the line was recorded with {selection.expect}, "
            f"this run is {fp}. "
            "The target's steps (or migproof) changed since; this replay does not necessarily "
            "exercise the recorded failure."
        )
        print(f"migproof: warning: {report.expect_mismatch}", file=out)
    planned = plan(ctx, selection)
    if selection.case_id is not None and not planned:
        planned = _unlisted_case(selection)
        if not planned:
            raise UsageError(_no_such_case(ctx, selection))
    print(
        f"migproof certify: {target.name} (head {target.head}), seed {config.seed}, "
        f"{len(planned)} cases, journal modes {','.join(config.journal_modes)}, fingerprint {fp}",
        file=out,
    )
    width = len(str(len(planned)))
    for i, planned_case in enumerate(planned, 1):
        result = run_case(ctx, planned_case, fp, rows=rows)
        report.results.append(result)
        _progress(out, i, len(planned), width, result)
        if result.status is Status.FAIL and config.keep_failures is not None:
            _keep(ctx, result, config.keep_failures)
        # A passing case's copies are litter; a failing one's are evidence (--keep-failures,
        # --workdir).
        ctx.end_case(keep=result.status is Status.FAIL)
        if on_result is not None:
            on_result(result)
    report.duration = time.monotonic() - began
    print_summary(report, out)
    return report


def run_case(
    ctx: RunContext, planned: Planned, fp: str, *, rows: int = DEFAULT_ROWS
) -> CheckResult:
    """Run one planned case (timing, reproduction line): ``certify``'s and the plugin's entry."""
    check, case, early = planned
    if case is None:
        assert early is not None
        return dataclasses.replace(
            early, reproduce=reproduce_line(ctx.config, early.case, fp, rows=rows)
        )
    ctx.begin_case(case)
    started = time.perf_counter()
    try:
        result = capability_gate.run(ctx, check, case)
    except ReferenceError_ as err:
        result = CheckResult(case, Status.FAIL, str(err))
    except Exception as err:
        tb = traceback.format_exception(err)[-3:]
        result = CheckResult(
            case, Status.FAIL, f"the check itself raised {type(err).__name__}: {err}\n{''.join(tb)}"
        )
    result = dataclasses.replace(
        result,
        reproduce=result.reproduce or reproduce_line(ctx.config, case, fp, rows=rows),
        duration=result.duration or (time.perf_counter() - started),
    )
    accepted = load_baseline(ctx.config, rows, ctx.target.name)
    return result if accepted is None else accepted.judge(result)


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
    return "\n".join("  " + line for line in text.splitlines()[:40])


def _keep(ctx: RunContext, result: CheckResult, dest: Path) -> None:
    folder = dest / safe_name(result.case.id)
    folder.mkdir(parents=True, exist_ok=True)
    for src in ctx.case_scratch():
        shutil.copytree(src, folder / src.name, dirs_exist_ok=True)
    for db in ctx.case_shared():
        if db.exists():
            dbfiles.copy(db, folder / db.name)
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
