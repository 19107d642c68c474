"""What the harness's checks share: version ranges, working copies, outcomes, verdicts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migproof.engine.schema import diff

from .. import dbfiles
from ..cases import Case, CheckResult, Status
from ..context import Outcome, run_migrate
from ..contract import internal_tables, min_supported, refusal_error
from ..sandbox import describe, error_type, is_instance

if TYPE_CHECKING:
    from pathlib import Path

    from migproof.engine.schema import Schema

    from ..cases import Context

MAX_LISTED = 20  # differences listed in one result; the rest are counted


def modes(ctx: Context) -> tuple[str, ...]:
    return tuple(ctx.config.journal_modes)


def upgradable(ctx: Context) -> list[int]:
    """Populated versions below head the target claims to upgrade from (v >= 1)."""
    return list(range(max(1, min_supported(ctx.target)), ctx.target.head))


def step_starts(ctx: Context) -> list[int]:
    """Versions a single step starts from: empty, and every supported old version."""
    ms = max(1, min_supported(ctx.target))
    return [v for v in range(ctx.target.head) if v == 0 or v >= ms]


def working_copy(ctx: Context, src: Path, label: str) -> Path:
    folder = ctx.scratch(label)
    return dbfiles.copy(src, folder / "db.sqlite")


def upgraded(ctx: Context, version: int, journal_mode: str) -> Outcome:
    """The fixture at ``version`` migrated to head (memoised by the harness's own context)."""
    memo = getattr(ctx, "upgraded", None)
    if callable(memo):
        found = memo(version, journal_mode)
        assert isinstance(found, Outcome)
        return found
    path = working_copy(
        ctx, ctx.fixture_db(version, journal_mode), f"upgrade-v{version}-{journal_mode}"
    )
    return run_migrate(ctx.target, path)


def user_schema(ctx: Context, path: Path) -> Schema:
    """The schema less the target's internal tables (whose evolution is its own business)."""
    return ctx.schema_of(path).without(*internal_tables(ctx.target))


def schema_problems(expected: Schema, actual: Schema) -> list[str]:
    return [str(d) for d in diff(expected, actual)]


def listing(problems: list[str]) -> str:
    shown = problems[:MAX_LISTED]
    more = len(problems) - len(shown)
    return "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")


def version_problem(ctx: Context, path: Path, expected: int) -> str | None:
    try:
        found = ctx.target.version(str(path))
    except Exception as err:
        return f"version() raised {describe(err, with_traceback=True)}"
    return None if found == expected else f"version() is {found}, expected {expected}"


def raised(outcome: Outcome) -> str:
    """What the target raised, for a failure's detail: with its traceback into the user's code."""
    return outcome.describe_error(with_traceback=True)


def typed_problem(ctx: Context, err: BaseException | None) -> str | None:
    """For a target that promises typed refusals (the engine): is ``err`` one of them?"""
    expected = refusal_error(ctx.target)
    if expected is None or err is None or is_instance(err, expected):
        return None
    return (
        f"refused with an untyped {error_type(err)} (expected a {expected.__name__}): "
        f"{describe(err, with_traceback=True)}"
    )


def judge_refusal(ctx: Context, case: Case, out: Outcome, changes: list[str]) -> CheckResult:
    """A refusal passes when it left the file byte-identical and, for a target that promises
    typed refusals (the engine), raised one of them."""
    if changes:
        return failed(
            case, f"refused ({out.describe_error()}) but the file changed: " + "; ".join(changes)
        )
    untyped = typed_problem(ctx, out.error)
    if untyped:
        return failed(case, untyped)
    return passed(case, f"refused: {out.describe_error()}")


def passed(case: Case, detail: str = "") -> CheckResult:
    return CheckResult(case, Status.PASS, detail)


def failed(case: Case, detail: str) -> CheckResult:
    return CheckResult(case, Status.FAIL, detail)


def skipped(case: Case, detail: str) -> CheckResult:
    return CheckResult(case, Status.SKIP, detail)
