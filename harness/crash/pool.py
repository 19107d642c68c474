"""Spread crash-recovery cases over a pool of processes, with the results of a serial run.

Each case is deterministic given the run's seed (the fixture is drawn from it; crash images
and their recoveries depend only on the fixture's bytes and the target), so the only thing
parallel workers must not share is scratch space. The parent builds every fixture the cases
need in the run's cache first; each worker opens the same cache (``RunContext(reuse=True)``),
whose scratch directories carry the worker's pid, so two workers never pick the same name.

Workers come from a ``forkserver``: safe when the parent has threads (a pytest-xdist
worker), and warm -- the target is loaded once per worker, not once per case.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from ..context import DEFAULT_ROWS, RunContext
from ..spec import load_target
from ..starts import FRESH
from .statements import run_case

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..cases import Case, CheckResult, RunConfig


_worker: RunContext | None = None


def _start(spec: str, config: RunConfig, rows: int) -> None:
    global _worker  # noqa: PLW0603 -- one context per worker process
    _worker = RunContext(load_target(spec), config, rows=rows, reuse=True)


def _run(case: Case) -> CheckResult:
    assert _worker is not None, "the pool initializer did not run"
    return run_case(_worker, case)


def run_parallel(
    config: RunConfig, cases: Sequence[Case], *, jobs: int, rows: int = DEFAULT_ROWS
) -> list[CheckResult]:
    """Run ``cases`` (crash-recovery) on ``jobs`` processes; results in the order of ``cases``.

    ``config.spec`` names the target; each worker loads it. ``config.workdir`` is shared.
    """
    parent = RunContext(load_target(config.spec), config, rows=rows, reuse=True)
    for case in cases:
        if case.from_version is not None and case.journal_mode not in (None, *FRESH):
            parent.fixture_db(case.from_version, case.journal_mode)
    if jobs <= 1:
        _start(config.spec, config, rows)
        return [_run(c) for c in cases]
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        jobs, mp_context=ctx, initializer=_start, initargs=(config.spec, config, rows)
    ) as pool:
        return list(pool.map(_run, cases))
