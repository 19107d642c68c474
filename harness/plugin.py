"""migproof's pytest plugin (registered through the ``pytest11`` entry point).

A project whose ``pyproject.toml`` has a ``[tool.migproof]`` table naming its steps (or a
target) gets certified by plain ``pytest``: the plugin collects that ``pyproject.toml`` as a
test file whose items are the certification cases -- one per check x version pair (x journal
mode, x drifted object or damage where those apply) -- with the same ids ``migproof certify``
prints. ``pytest -n auto`` spreads them over pytest-xdist workers, which share the
reference and fixture databases through one cache folder (files are built under a temporary
name and renamed, so a worker never sees half a file). A failing item prints what was found,
what was expected, and the one command line that replays it.

Collection: pytest offers every file it walks to ``pytest_collect_file``, so a plain ``pytest``
in the project's folder reaches its ``pyproject.toml`` -- unless the project sets
``testpaths``, when pytest walks only those folders. Then (and only then: paths named on the
command line are the user's choice) ``pytest_configure`` adds the rootdir's ``pyproject.toml``
to what is collected, when it has a ``[tool.migproof]`` table.

Configuration: ``[tool.migproof]`` keys ``steps`` (or ``target``, a ``command`` table, or a
tool's configuration: ``alembic``, ``yoyo``, ``sqlite_utils``), ``seed``, ``journal_modes``,
``rows``, ``checks``, ``crash_mode``, ``crash_at``, ``race_procs``, ``race_rounds``,
``case_timeout``, ``power_images``, ``fixtures``; each but the last can be overridden by its
``--migproof-*`` option (``--migproof-spec`` for ``steps``, ``--migproof-only`` for
``checks``, else the key's own name), and a key's value is checked as its option's is.
``--migproof-since`` has no key. ``--no-migproof`` turns collection off.

Fixtures for hand-written tests: ``migproof_target``, and ``migproof_db_at(version, ...)``,
which returns the path of a private copy of a seeded, populated database at that version --
the way Room's ``createDatabase(name, version)`` is used to assert what a data step did.

Import stays light: pytest loads this module in every session of an environment where
migproof is installed, so nothing beyond pytest and the stdlib is imported until a migproof
item or fixture is used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from . import options

if TYPE_CHECKING:
    from .cases import CheckResult
    from .certify import Planned
    from .context import RunContext
    from .target import Target

_DEFAULT_SEED: Final = 0


@dataclass(frozen=True, slots=True)
class Settings:
    """``[tool.migproof]`` merged with the ``--migproof-*`` options."""

    spec: str
    root: Path  # the folder of the pyproject.toml; relative file SPECs resolve against it
    seed: int
    journal_modes: tuple[str, ...]
    rows: int | None
    checks: tuple[str, ...] | None
    since: int | None
    crash_mode: str | None
    crash_at: str | None
    race_procs: int | None
    race_rounds: int | None
    case_timeout: float | None
    power_images: int | None
    fixtures_dir: Path | None  # frozen fixtures: [tool.migproof] fixtures, else <root>/fixtures
    baseline: Path | None  # accepted findings: [tool.migproof] baseline, else the default file
    table: Mapping[str, Any]  # the whole [tool.migproof] table (declarations beside the SPEC)


# --- options ---------------------------------------------------------------------------------


def _option(name: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An ``options`` parser as a pytest option type: a bad value is a usage error."""

    def parsed(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise pytest.UsageError(f"{name} {err}") from None

    return parsed


# Each --migproof-* option's parser. A [tool.migproof] value goes through the same one, so a
# value `migproof certify` would refuse (rows = 0, seed = -1) never reaches a run or a
# reproduction line.
_PARSERS: Final[dict[str, Callable[[str], Any]]] = {
    name: _option(name, parse)
    for name, parse in (
        ("--migproof-seed", partial(options.whole_number, minimum=0)),
        ("--migproof-journal-modes", options.journal_modes),
        ("--migproof-only", options.check_names),
        ("--migproof-since", partial(options.whole_number, minimum=0)),
        ("--migproof-rows", partial(options.whole_number, minimum=1)),
        ("--migproof-crash-mode", options.crash_mode),
        ("--migproof-crash-at", options.crash_at),
        ("--migproof-race-procs", partial(options.whole_number, minimum=options.MIN_RACE_PROCS)),
        ("--migproof-race-rounds", partial(options.whole_number, minimum=1)),
        ("--migproof-case-timeout", options.seconds),
        ("--migproof-power-images", partial(options.whole_number, minimum=1)),
    )
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("migproof", "migproof: certify SQLite migrations")
    group.addoption(
        "--no-migproof", action="store_true", help="do not collect migproof certification items"
    )
    group.addoption(
        "--migproof-spec",
        metavar="SPEC",
        help="package.module:ATTR or path/file.py:ATTR naming steps or a target",
    )
    group.addoption(
        "--migproof-seed",
        metavar="N",
        type=_PARSERS["--migproof-seed"],
        help="the seed every fixture is drawn from (default: [tool.migproof] seed, else 0)",
    )
    group.addoption(
        "--migproof-journal-modes",
        metavar="MODES",
        type=_PARSERS["--migproof-journal-modes"],
        help="delete,wal (default: both)",
    )
    group.addoption(
        "--migproof-only",
        metavar="CHECKS",
        type=_PARSERS["--migproof-only"],
        help="run only these checks (comma-separated)",
    )
    group.addoption(
        "--migproof-since",
        metavar="V",
        type=_PARSERS["--migproof-since"],
        help="only what steps after version V touch (certifying a new step)",
    )
    group.addoption(
        "--migproof-rows",
        metavar="N",
        type=_PARSERS["--migproof-rows"],
        help="rows per table in generated fixtures",
    )
    group.addoption(
        "--migproof-crash-mode",
        metavar="MODE",
        type=_PARSERS["--migproof-crash-mode"],
        help="how crash images are made: snapshot or kill",
    )
    group.addoption(
        "--migproof-crash-at",
        metavar="LEVEL",
        type=_PARSERS["--migproof-crash-at"],
        help="crash points at every SQL statement or every write (strace): statements or writes",
    )
    group.addoption(
        "--migproof-race-procs",
        metavar="N",
        type=_PARSERS["--migproof-race-procs"],
        help="processes per race",
    )
    group.addoption(
        "--migproof-race-rounds",
        metavar="N",
        type=_PARSERS["--migproof-race-rounds"],
        help="rounds per race case",
    )
    group.addoption(
        "--migproof-case-timeout",
        metavar="SECONDS",
        type=_PARSERS["--migproof-case-timeout"],
        help=(
            "kill the target and fail the item when one case runs longer "
            f"(default {options.DEFAULT_CASE_TIMEOUT:g})"
        ),
    )
    group.addoption(
        "--migproof-power-images",
        metavar="N",
        type=_PARSERS["--migproof-power-images"],
        help="power-loss images per sync barrier, at most",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "migproof: a certification case generated by migproof from [tool.migproof]"
    )
    if os.environ.get("CI"):
        # Hypothesis ships a derandomized "ci" profile; a user's own property tests over our
        # strategies then replay identically from run to run in CI. Our fixtures are seeded
        # either way.
        from hypothesis import settings

        settings.load_profile("ci")
    _collect_beside_testpaths(config)


def _collect_beside_testpaths(config: pytest.Config) -> None:
    """With ``testpaths`` set and no paths given, pytest walks only those folders: add the
    rootdir's pyproject.toml, so plain ``pytest`` still certifies the project."""
    if config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return
    if config.getoption("--no-migproof"):
        return
    pyproject = config.rootpath / "pyproject.toml"
    if not pyproject.is_file() or _read_table(pyproject) is None:
        return
    walked = [(config.rootpath / arg).resolve() for arg in config.args]
    if any(pyproject.resolve().is_relative_to(folder) for folder in walked):
        return  # a test path is the rootdir itself (testpaths = ["."]): collected already
    config.args.append(str(pyproject))


def _read_table(pyproject: Path) -> dict[str, Any] | None:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    table = data.get("tool", {}).get("migproof")
    if not isinstance(table, dict):
        return None
    from migproof.adapters import ADAPTERS  # imports no tool

    named = (
        table.get("steps")
        or table.get("target")
        or isinstance(table.get("command"), dict)
        or any(k in table for k in ADAPTERS)
    )
    return table if named else None


def settings_for(config: pytest.Config, pyproject: Path, table: dict[str, Any]) -> Settings:
    from .spec import baseline_file, fixtures_dir, table_spec

    def pick(option: str, key: str) -> Any:
        given = config.getoption(option)
        if given is not None:
            return given
        if key not in table:
            return None
        value = table[key]
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        try:
            return _PARSERS[option](text)
        except pytest.UsageError as err:
            raise pytest.UsageError(f"[tool.migproof] {key} in {pyproject}: {err}") from None

    modes = pick("--migproof-journal-modes", "journal_modes")
    checks = pick("--migproof-only", "checks")
    seed = pick("--migproof-seed", "seed")
    return Settings(
        spec=config.getoption("--migproof-spec") or str(table_spec(table)),
        root=pyproject.parent,
        seed=_DEFAULT_SEED if seed is None else seed,
        journal_modes=modes or options.JOURNAL_MODES,
        rows=pick("--migproof-rows", "rows"),
        checks=checks or None,
        since=config.getoption("--migproof-since"),
        crash_mode=pick("--migproof-crash-mode", "crash_mode"),
        crash_at=pick("--migproof-crash-at", "crash_at"),
        race_procs=pick("--migproof-race-procs", "race_procs"),
        race_rounds=pick("--migproof-race-rounds", "race_rounds"),
        case_timeout=pick("--migproof-case-timeout", "case_timeout"),
        power_images=pick("--migproof-power-images", "power_images"),
        fixtures_dir=fixtures_dir(pyproject.parent, table),
        baseline=baseline_file(pyproject.parent, table),
        table=dict(table),
    )


# --- collection ------------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name != "pyproject.toml" or parent.config.getoption("--no-migproof"):
        return None
    table = _read_table(file_path)
    if table is None:
        return None
    return MigproofFile.from_parent(parent, path=file_path, table=table)


class MigproofFile(pytest.File):
    """A pyproject.toml with a ``[tool.migproof]`` table: its items are certification cases."""

    def __init__(self, *, table: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings_for(self.config, self.path, table)

    def collect(self) -> Iterator[pytest.Item]:
        from .certify import case_of

        session = _session(self.config, self.settings)
        for planned in session.planned:
            item = MigproofItem.from_parent(self, name=case_of(planned).id, planned=planned)
            item.add_marker(pytest.mark.migproof)
            yield item


class MigproofItem(pytest.Item):
    def __init__(self, *, planned: Planned, **kwargs: Any) -> None:
        from .certify import case_of

        super().__init__(**kwargs)
        self.planned = planned
        self.case = case_of(planned)

    def runtest(self) -> None:
        from .cases import Status

        assert isinstance(self.parent, MigproofFile)
        session = _session(self.config, self.parent.settings)
        result = session.run(self.planned)
        self.user_properties.append(("migproof_reproduce", result.reproduce))
        if result.status is Status.SKIP:
            pytest.skip(result.detail or "skipped")
        if result.status is Status.WAIVED:
            pytest.xfail(result.detail.splitlines()[0])
        if result.status is Status.FAIL:
            raise CaseFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            r = excinfo.value.result
            return f"{r.case.id} failed:\n{r.detail}\n\nreproduce: {r.reproduce}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"migproof {self.case.id}"


class CaseFailed(Exception):
    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.case.id)
        self.result = result


class _Session:
    """One process's view of a certification run: the target, its context and its cases."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        from migproof import adapters

        from . import certify
        from .cases import RunConfig
        from .checks import select
        from .context import DEFAULT_ROWS, RunContext
        from .project import Project
        from .spec import load_target

        spec = adapters.rooted(settings.spec, settings.root)  # alembic=alembic.ini beside it
        file_part, sep, attr = spec.rpartition(":")
        if (
            sep
            and adapters.parse(spec) is None
            and (file_part.endswith((".py", ".toml")) or "/" in file_part)
            and not os.path.isabs(file_part)
        ):
            spec = f"{settings.root / file_part}:{attr}"
        if str(settings.root) not in sys.path:
            # A module SPEC names the user's own package, which lives beside pyproject.toml.
            sys.path.insert(0, str(settings.root))
        self.target: Target = load_target(spec)
        self.rows = settings.rows if settings.rows is not None else DEFAULT_ROWS
        overrides = {
            k: v
            for k, v in (
                ("crash_mode", settings.crash_mode),
                ("crash_at", settings.crash_at),
                ("race_procs", settings.race_procs),
                ("race_rounds", settings.race_rounds),
                ("case_timeout", settings.case_timeout),
                ("power_images", settings.power_images),
            )
            if v is not None
        }
        self.config = RunConfig(
            spec=settings.spec,
            seed=settings.seed,
            workdir=_shared_workdir(config, settings.root),
            journal_modes=settings.journal_modes,
            fixtures_dir=settings.fixtures_dir,
            project=Project(settings.root, settings.table),
            baseline=settings.baseline,
            **overrides,  # type: ignore[arg-type]
        )
        self.ctx: RunContext = RunContext(self.target, self.config, rows=self.rows, reuse=True)
        selection = certify.Selection(select(settings.checks), since=settings.since)
        self.planned: list[Planned] = certify.plan(self.ctx, selection)
        self._fingerprint: str | None = None

    def run(self, planned: Planned) -> CheckResult:
        from . import certify

        if self._fingerprint is None:
            self._fingerprint = certify.fingerprint(self.ctx)
        return certify.run_case(self.ctx, planned, self._fingerprint, rows=self.rows)


# One session per pyproject.toml folder: a monorepo's projects each certify their own target.
_SESSIONS_KEY = pytest.StashKey[dict[Path, _Session]]()


def _session(config: pytest.Config, settings: Settings) -> _Session:
    sessions = config.stash.setdefault(_SESSIONS_KEY, {})
    session = sessions.get(settings.root)
    if session is None:
        session = _Session(config, settings)
        sessions[settings.root] = session
    return session


def _shared_workdir(config: pytest.Config, root: Path) -> Path:
    """One cache folder per project for the whole run, shared by every pytest-xdist worker."""
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    base = factory.getbasetemp()
    if hasattr(config, "workerinput"):
        base = base.parent  # each worker's basetemp is <run>/popen-gwN
    # Cache files are named by version, not target: two projects must not share a folder.
    workdir = base / "migproof" / hashlib.sha256(str(root).encode()).hexdigest()[:12]
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


# --- reporting -------------------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    reports = [
        r
        for key in ("passed", "failed", "skipped")
        for r in terminalreporter.stats.get(key, [])
        if getattr(r, "when", "call") == "call" and "pyproject.toml::" in getattr(r, "nodeid", "")
    ]
    if not reports:
        return
    failed = [r for r in reports if r.failed]
    terminalreporter.section("migproof")
    terminalreporter.write_line(
        f"{len(reports)} certification cases: {len(reports) - len(failed)} passed or skipped, {len(failed)} failed"
    )
    for r in failed:
        line = dict(r.user_properties).get("migproof_reproduce")
        if line:
            terminalreporter.write_line(f"FAIL {r.nodeid.split('::')[-1]}\n  reproduce: {line}")


# --- fixtures for hand-written tests ---------------------------------------------------------


def _fixture_session(request: pytest.FixtureRequest) -> _Session:
    pyproject = request.config.rootpath / "pyproject.toml"
    table = _read_table(pyproject) if pyproject.is_file() else None
    if table is None and not request.config.getoption("--migproof-spec"):
        collected = request.config.stash.get(_SESSIONS_KEY, {})
        if collected:  # a [tool.migproof] table collected below the rootdir
            return next(iter(collected.values()))
        pytest.fail(
            f"migproof fixtures need [tool.migproof] steps = 'package.module:ATTR' in {pyproject} "
            "or --migproof-spec",
            pytrace=False,
        )
    return _session(request.config, settings_for(request.config, pyproject, table or {}))


@pytest.fixture
def migproof_target(request: pytest.FixtureRequest) -> Target:
    """The target named by ``[tool.migproof]`` (declared steps adapted, or your own target)."""
    return _fixture_session(request).target


@pytest.fixture
def migproof_db_at(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``migproof_db_at(version, *, journal_mode="delete")`` returns the path of a
    private copy of a populated database at ``version``, drawn from the run's seed, ready for
    the test to migrate and inspect.
    """
    session = _fixture_session(request)
    made = 0

    def make(version: int, *, journal_mode: str = "delete") -> Path:
        nonlocal made
        if not 0 <= version <= session.target.head:
            raise ValueError(f"version {version} is outside 0..{session.target.head} (head)")
        made += 1
        dest = tmp_path / f"migproof-v{version}-{made}.sqlite"
        shutil.copyfile(session.ctx.fixture_db(version, journal_mode), dest)
        return dest

    return make
