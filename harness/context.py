"""The runner's ``Context``: reference and fixture databases, built once per run and shared.

Layout under the run's workdir::

    cache/ref-<mode>-v<N>.db              migrate(empty, N), uninterrupted
    cache/fixture-s<seed>-r<rows>-<mode>-v<N>.db   ref + rows drawn from the seed
    cache/upgraded-...-v<N>.db            the fixture at N migrated to head (memoised)
    scratch/<label>-<k>/                  one fresh directory per ``scratch()`` call

Shared files are checkpointed (no ``-wal`` beside them) and must not be written: a check
copies one (``dbfiles.copy``) before handing it to the target. Files are built under a
temporary name and renamed into place, so processes sharing a workdir never see half a file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from migproof.engine.introspect import read_schema

from . import dbfiles
from .contract import internal_tables
from .options import JOURNAL_MODES

if TYPE_CHECKING:
    from migproof.engine.schema import Schema

    from .cases import Case, RunConfig
    from .population import Population
    from .target import Target

DEFAULT_ROWS: Final = 24


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one call to ``target.migrate`` did: the file it left, or what it raised."""

    path: Path
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe_error(self) -> str:
        return "" if self.error is None else f"{type(self.error).__name__}: {self.error}"


def run_migrate(target: Target, path: Path, to_version: int | None = None) -> Outcome:
    """Call the target, turning whatever it raises into an ``Outcome`` (a refusal or a bug)."""
    try:
        target.migrate(str(path), to_version)
    except (Exception, SystemExit) as err:
        return Outcome(path, err)
    return Outcome(path)


class RunContext:
    """``harness.cases.Context`` for one certify run (one process; thread-safe builds)."""

    def __init__(
        self,
        target: Target,
        config: RunConfig,
        *,
        rows: int = DEFAULT_ROWS,
        edge_values: bool = True,
        reuse: bool = False,
    ) -> None:
        self._target = target
        self._config = config
        self.rows = rows
        self.edge_values = edge_values
        self.internal_tables = internal_tables(target)
        root = Path(config.workdir)
        self.cache = root / "cache"
        self.scratch_root = root / "scratch"
        if not reuse and self.cache.exists():
            shutil.rmtree(self.cache)  # a reused --workdir must not serve another target's files
        self.cache.mkdir(parents=True, exist_ok=True)
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._populations: dict[int, Population] = {}
        self._upgraded: dict[tuple[int, str], Outcome] = {}
        self._scratch_count = 0
        self._case_scratch: list[Path] = []
        self._case_shared: list[Path] = []  # memoised upgrades the case read (evidence too)
        # The project's domain data (harness.domain), checked here -- before any case runs --
        # against the clean schema of every version; pools drawn once from the seed.
        from .domain import domain_of

        self.domain = domain_of(target, config.project)
        self._pools: dict[str, tuple[object, ...]] = {}
        if self.domain:
            self._check_domain()

    # --- the Context protocol ---------------------------------------------------------------

    @property
    def target(self) -> Target:
        return self._target

    @property
    def config(self) -> RunConfig:
        return self._config

    def scratch(self, label: str) -> Path:
        with self._lock:
            self._scratch_count += 1
            # The pid keeps processes that share a workdir (pytest-xdist) out of each other's way.
            path = self.scratch_root / f"{safe_name(label)}-{os.getpid()}-{self._scratch_count}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self._case_scratch.append(path)
        return path

    def reference_db(self, version: int, journal_mode: str) -> Path:
        self._check(version, journal_mode)
        path = self.cache / f"ref-{journal_mode}-v{version}.db"
        with self._lock:
            if not path.exists():
                from .strategies import build_reference

                tmp = self._tmp(path)
                try:
                    build_reference(self._target, version, tmp, journal_mode)
                except (Exception, SystemExit) as err:
                    dbfiles.remove(tmp)
                    raise ReferenceError_(self._target.name, version, journal_mode, err) from err
                _publish(tmp, path)
        return path

    def fixture_db(self, version: int, journal_mode: str) -> Path:
        self._check(version, journal_mode)
        path = (
            self.cache / f"fixture-s{self._config.seed}-r{self.rows}-{journal_mode}-v{version}.db"
        )
        with self._lock:
            if not path.exists():
                ref = self.reference_db(version, journal_mode)
                tmp = self._tmp(path)
                dbfiles.copy(ref, tmp)
                if version > 0:
                    self.population(version).write(tmp)
                _publish(tmp, path)
        return path

    def schema_of(self, path: Path) -> Schema:
        with dbfiles.opened(path) as conn:
            return read_schema(conn)

    # --- beyond the protocol: what the harness's own checks share ----------------------------

    def population(self, version: int) -> Population:
        """The rows of the fixture at ``version`` (the same for every journal mode)."""
        with self._lock:
            found = self._populations.get(version)
            if found is None:
                from .population import template_of
                from .seeded import derive_seed, populate

                ref = self.reference_db(version, self._config.journal_modes[0])
                found = populate(
                    template_of(ref, exclude=self.internal_tables),
                    derive_seed(self._config.seed, "fixture", version),
                    min_rows=1,  # every table populated: empty tables are what reference DBs are
                    max_rows=self.rows,
                    edge_values=self.edge_values,
                    pools=self._pools,
                    examples=self.domain.examples_at(version),
                )
                self._populations[version] = found
        return found

    def _check_domain(self) -> None:
        """Names against every version's clean schema, each example row against its version's
        clean database; then the pools. Any problem is a ``UsageError`` (exit 2)."""
        from .errors import UsageError
        from .population import template_of
        from .seeded import ExampleRejected, insert_examples

        mode = self._config.journal_modes[0]
        refs: dict[int, Path] = {}
        for v in range(1, self._target.head + 1):
            with contextlib.suppress(ReferenceError_):  # the checks report an unbuildable one
                refs[v] = self.reference_db(v, mode)
        schemas = {v: self.schema_of(path) for v, path in refs.items()}
        self.domain.check(schemas, target=self._target.name, internal=self.internal_tables)
        for v in sorted({e.version for e in self.domain.examples} & set(refs)):
            template = template_of(refs[v], exclude=self.internal_tables)
            conn = template.open()
            try:
                insert_examples(conn, template, self.domain.examples_at(v))
            except ExampleRejected as err:
                raise UsageError(
                    f"{self.domain.origin_of(v, err.table, err.index)} = {err.row!r} is refused "
                    f"by the clean database at version {v}: {err.reason}. Example rows are "
                    "inserted as given; fix the row (or add the parent rows it needs, earlier "
                    "in the list). Nothing was run."
                ) from err
            finally:
                conn.close()
        self._pools = self.domain.pools(self._config.seed)

    def upgraded(self, version: int, journal_mode: str) -> Outcome:
        """The fixture at ``version`` migrated to head by one ``migrate`` call (shared; copy it)."""
        key = (version, journal_mode)
        with self._lock:
            found = self._upgraded.get(key)
            if found is None:
                fixture = self.fixture_db(version, journal_mode)
                # Per process: workers sharing a workdir (the pytest plugin) never migrate one
                # file at the same time.
                name = f"upgraded-s{self._config.seed}-r{self.rows}-{journal_mode}-v{version}"
                path = self.cache / f"{name}.{os.getpid()}.db"
                dbfiles.copy(fixture, path)
                found = run_migrate(self._target, path)
                if found.ok:
                    dbfiles.checkpoint(path)
                self._upgraded[key] = found
        self._case_shared.append(found.path)
        return found

    def begin_case(self, case: Case) -> None:
        del case
        self._case_scratch = []
        self._case_shared = []

    def end_case(self, *, keep: bool) -> None:
        """Remove the case's scratch directories unless it failed (they are the evidence)."""
        if not keep:
            for path in self._case_scratch:
                shutil.rmtree(path, ignore_errors=True)

    def case_scratch(self) -> list[Path]:
        """The scratch directories made since ``begin_case`` (kept with ``--keep-failures``)."""
        return list(self._case_scratch)

    def case_shared(self) -> list[Path]:
        """The shared upgraded databases read since ``begin_case`` (kept with them)."""
        return list(dict.fromkeys(self._case_shared))

    def _check(self, version: int, journal_mode: str) -> None:
        if not 0 <= version <= self._target.head:
            raise ValueError(f"version {version} is outside 0..{self._target.head}")
        if journal_mode not in JOURNAL_MODES:
            raise ValueError(
                f"unknown journal mode {journal_mode!r}; expected one of {JOURNAL_MODES}"
            )

    def _tmp(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


class ReferenceError_(Exception):
    """The target failed to build a clean database from empty: nothing else can be certified."""

    def __init__(self, target: str, version: int, journal_mode: str, cause: BaseException) -> None:
        super().__init__(
            f"{target}: migrate(empty, {version}) in {journal_mode} mode raised "
            f"{type(cause).__name__}: {cause}"
        )
        self.version = version
        self.journal_mode = journal_mode


def _publish(tmp: Path, path: Path) -> None:
    dbfiles.checkpoint(tmp)
    os.replace(tmp, path)
    dbfiles.remove(tmp)  # any sidecar left under the temporary name


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")[:80] or "scratch"
