"""Spread crash-recovery cases over a pool of processes, with the results of a serial run.

Each case is deterministic given the run's seed (the fixture is drawn from it; crash images
and their recoveries depend only on the fixture's bytes and the target), so the only thing
parallel workers must not share is scratch space. The parent builds every fixture the cases
need in the run's cache first; each worker opens the same cache (``RunContext(reuse=True)``)
and makes its scratch directories with ``mkdtemp`` so two workers never pick the same name.

Workers come from a ``forkserver``: safe when the parent has threads (a pytest-xdist
worker), and warm -- the target is loaded once per worker, not once per case.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from .context import DEFAULT_ROWS, RunContext
from .crash import run_case
from .spec import load_target

if TYPE_CHECKING:
    from collections.abc import Sequence

    from migproof.engine.schema import Schema

    from .cases import Case, CheckResult, RunConfig
    from .target import Target


class _SharedCache:
    """A ``Context`` over a reused ``RunContext`` whose scratch names cannot collide."""

    def __init__(self, inner: RunContext) -> None:
        self._inner = inner

    @property
    def target(self) -> Target:
        return self._inner.target

    @property
    def config(self) -> RunConfig:
        return self._inner.config

    def scratch(self, label: str) -> Path:
        root = self._inner.scratch_root
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root))

    def reference_db(self, version: int, journal_mode: str) -> Path:
        return self._inner.reference_db(version, journal_mode)

    def fixture_db(self, version: int, journal_mode: str) -> Path:
        return self._inner.fixture_db(version, journal_mode)

    def schema_of(self, path: Path) -> Schema:
        return self._inner.schema_of(path)


_worker: _SharedCache | None = None


def _start(spec: str, config: RunConfig, rows: int) -> None:
    global _worker  # noqa: PLW0603 -- one context per worker process
    _worker = _SharedCache(RunContext(load_target(spec), config, rows=rows, reuse=True))


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
        if case.from_version is not None and case.journal_mode is not None:
            parent.fixture_db(case.from_version, case.journal_mode)
    if jobs <= 1:
        _start(config.spec, config, rows)
        return [_run(c) for c in cases]
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        jobs, mp_context=ctx, initializer=_start, initargs=(config.spec, config, rows)
    ) as pool:
        return list(pool.map(_run, cases))
