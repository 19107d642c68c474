"""Domain data: what a project's columns hold, and example rows per version.

Generated values have the shape of a column's type, not of the domain: a data step that
rewrites ``'gh:owner/name#12'`` into ``'github.com:owner/name#12'`` and de-duplicates never
meets such a value, and its postconditions pass vacuously. A project says what its columns
hold in two places, merged (a column declared in both is an error):

- on the target, looked up by ``domain_of`` (the one place; the typed contract in
  ``contract.py`` may take it over):

  - ``column_values``: a mapping (or a method returning one) from ``"table.column"`` to a
    Hypothesis strategy or a sequence of values;
  - ``example_rows(version)``: ``{table: [{column: value, ...}, ...]}``, rows inserted as given
    into the fixture at that version;

- in ``pyproject.toml``, for the simple cases::

      [tool.migproof.columns]
      "items.ref" = { regex = "gh:[a-z]+/[a-z]+#[0-9]{1,4}" }
      "items.kind" = { values = ["bug", "feature"] }

      [tool.migproof.examples.2]
      items = [{ id = 1, ref = "gh:octo/cat#12" }]

Everything is checked before a case runs (``UsageError``, exit 2): the shape of every key
and value, every regex, that each table and column exists at some version (example rows: at
their version), and that each example row is accepted by the clean database at its version.

A strategy is turned into a *pool* of examples once per run: a ``@given`` run with ``@seed``,
generate phase only, no example database. The seeded generator then picks from the pool, so
values repeat (a de-duplication meets real duplicates where no UNIQUE key forbids them).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from . import contract
from .errors import UsageError
from .seeded import derive_seed

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from migproof.engine.schema import Schema

    from .project import Project
    from .target import Target

POOL_SIZE: Final = 64  # examples drawn from a user's strategy; a fixture picks from them
COLUMN_KEYS: Final = ("regex", "values")
_FIX: Final = "Nothing was run."

Rows = tuple[Mapping[str, object], ...]


@dataclass(frozen=True, slots=True)
class ColumnDomain:
    """One column's values: a fixed list, or a Hypothesis strategy to draw a pool from."""

    column: str  # "table.column", lower case
    origin: str  # where it was declared, for messages
    values: tuple[object, ...] = ()
    strategy: SearchStrategy[Any] | None = None

    @property
    def table(self) -> str:
        return self.column.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.column.split(".", 1)[1]


@dataclass(frozen=True, slots=True)
class ExampleRows:
    """The example rows of one version of one table, and where they were declared."""

    version: int
    table: str
    rows: Rows
    origin: str


@dataclass(frozen=True, slots=True)
class Domain:
    """A project's domain data, merged from the target and ``pyproject.toml``."""

    columns: tuple[ColumnDomain, ...] = ()
    examples: tuple[ExampleRows, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.columns or self.examples)

    def examples_at(self, version: int) -> Mapping[str, Rows]:
        """``{table: rows}`` to insert as given into the fixture at ``version``."""
        out: dict[str, list[Mapping[str, object]]] = {}
        for e in self.examples:
            if e.version == version:
                out.setdefault(e.table, []).extend(e.rows)
        return {t: tuple(rows) for t, rows in out.items()}

    def origin_of(self, version: int, table: str, index: int) -> str:
        """Where row ``index`` of ``examples_at(version)[table]`` was declared."""
        for e in self.examples:
            if e.version == version and e.table == table.lower():
                if index < len(e.rows):
                    return f"{e.origin}[{index}]"
                index -= len(e.rows)
        return f"example row {table}[{index}] at version {version}"

    def pools(self, seed: int) -> dict[str, tuple[object, ...]]:
        """Each column's values: its list, or ``POOL_SIZE`` examples of its strategy drawn
        from ``seed`` (the same in every process)."""
        out: dict[str, tuple[object, ...]] = {}
        for c in self.columns:
            if c.strategy is None:
                out[c.column] = c.values
                continue
            try:
                out[c.column] = tuple(
                    examples_of(c.strategy, seed=derive_seed(seed, "domain", c.column))
                )
            except UsageError:
                raise
            except Exception as err:  # the user's strategy: any failure is theirs to fix
                raise UsageError(
                    f"{c.origin}: drawing examples from the strategy for {c.column!r} raised "
                    f"{type(err).__name__}: {err}. Fix the strategy. {_FIX}"
                ) from err
        return out

    def check(
        self, schemas: Mapping[int, Schema], *, target: str, internal: frozenset[str] = frozenset()
    ) -> None:
        """Every column exists at some version, every example table and column at its own;
        none is one of the target's internal tables (migproof never writes those)."""
        for c in self.columns:
            if c.table in internal:
                raise UsageError(
                    f"{c.origin}: {c.table} is one of the target's internal tables, which "
                    f"migproof never fills. {_FIX}"
                )
            if not any(_has_column(s, c.table, c.name) for s in schemas.values()):
                raise UsageError(
                    f"{c.origin}: no version of {target} has a column {c.name!r} in a table "
                    f"{c.table!r} ({_known(schemas, c.table)}). Fix the name. {_FIX}"
                )
        for e in self.examples:
            schema = schemas.get(e.version)
            if schema is None:
                continue  # the reference at that version did not build: the checks say so
            table = schema.table(e.table)
            if table is None or e.table in internal:
                raise UsageError(
                    f"{e.origin}: there is no table {e.table!r} at version {e.version} "
                    f"(tables: {', '.join(t.name for t in schema.tables) or 'none'}). {_FIX}"
                )
            for i, row in enumerate(e.rows):
                unknown = [c for c in row if c.lower() not in table.column_names]
                if unknown:
                    raise UsageError(
                        f"{e.origin}: row {i} names {', '.join(map(repr, unknown))}, not "
                        f"columns of {e.table} at version {e.version} (its columns: "
                        f"{', '.join(table.column_names)}). {_FIX}"
                    )


NO_DOMAIN: Final = Domain()


def _has_column(schema: Schema, table: str, column: str) -> bool:
    t = schema.table(table)
    return t is not None and column in t.column_names


def _known(schemas: Mapping[int, Schema], table: str) -> str:
    columns = sorted({c for s in schemas.values() if (t := s.table(table)) for c in t.column_names})
    if columns:
        return f"its columns: {', '.join(columns)}"
    tables = sorted({t.name for s in schemas.values() for t in s.tables})
    return f"tables: {', '.join(tables) or 'none'}"


# --- reading the declarations ----------------------------------------------------------------


def domain_of(target: Target, project: Project) -> Domain:
    """The project's domain data: the target's ``column_values`` and ``example_rows`` (the
    only place they are looked up) merged with ``[tool.migproof.columns]`` and
    ``[tool.migproof.examples.N]``. Malformed declarations raise ``UsageError``."""
    columns = _project_columns(project.section("columns"))
    examples = _project_examples(project.section("examples"), target.head)
    own = contract.column_values(target)
    for key, value in (own or {}).items():
        origin = f"the target's column_values[{key!r}]"
        columns.append(_python_column(key, value, origin))
    rows_fn = contract.example_rows(target)
    if rows_fn is not None:
        for v in range(1, target.head + 1):
            examples += _tables_of_rows(rows_fn(v), v, f"the target's example_rows({v})")
    seen: dict[str, str] = {}
    for c in columns:
        if c.column in seen:
            raise UsageError(
                f"{c.column!r} is declared twice: in {seen[c.column]} and in {c.origin}. "
                f"Keep one. {_FIX}"
            )
        seen[c.column] = c.origin
    return Domain(tuple(columns), tuple(examples))


def _column_key(key: object, origin: str) -> str:
    if not isinstance(key, str) or not re.fullmatch(r"[^.\s]+\.[^.\s]+", key.strip()):
        raise UsageError(
            f'{origin}: a key names one column as "table.column" (e.g. "items.ref"), '
            f"not {key!r}. {_FIX}"
        )
    return key.strip().lower()


def _project_columns(section: Mapping[str, Any]) -> list[ColumnDomain]:
    out: list[ColumnDomain] = []
    for key, spec in section.items():
        origin = f"[tool.migproof.columns] {key!r}"
        column = _column_key(key, origin)
        if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in COLUMN_KEYS:
            raise UsageError(
                f'{origin} must be {{ regex = "..." }} or {{ values = [...] }}, not {spec!r}. '
                f"For anything richer, give the target a column_values mapping of Hypothesis "
                f"strategies. {_FIX}"
            )
        if "regex" in spec:
            out.append(ColumnDomain(column, origin, strategy=_from_regex(spec["regex"], origin)))
        else:
            out.append(ColumnDomain(column, origin, values=_values(spec["values"], origin)))
    return out


def _from_regex(pattern: object, origin: str) -> SearchStrategy[str]:
    import hypothesis.strategies as st

    if not isinstance(pattern, str):
        raise UsageError(f"{origin}: regex must be a string, not {pattern!r}. {_FIX}")
    try:
        re.compile(pattern)
        strategy = st.from_regex(pattern, fullmatch=True)
        strategy.validate()
    except Exception as err:  # re.error, or Hypothesis's InvalidArgument
        raise UsageError(
            f"{origin}: regex {pattern!r} cannot be used: {err}. Fix the pattern (Python "
            f"`re` syntax; the whole value must match it). {_FIX}"
        ) from err
    return strategy


def _values(values: object, origin: str) -> tuple[object, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise UsageError(f"{origin}: values must be a non-empty list, not {values!r}. {_FIX}")
    for v in values:
        _scalar(v, origin)
    return tuple(values)


def _scalar(value: object, origin: str) -> object:
    """An SQLite value: NULL, an integer, a real, text or a blob (no bool, date or list)."""
    if value is None or (
        isinstance(value, int | float | str | bytes) and not isinstance(value, bool)
    ):
        return value
    hint = " (write 1 or 0)" if isinstance(value, bool) else " (quote it as text)"
    raise UsageError(
        f"{origin}: {value!r} is not an SQLite value{hint}; values are integers, reals, "
        f"text or blobs. {_FIX}"
    )


def _python_column(key: object, value: object, origin: str) -> ColumnDomain:
    from hypothesis.strategies import SearchStrategy

    column = _column_key(key, origin)
    if isinstance(value, SearchStrategy):
        return ColumnDomain(column, origin, strategy=value)
    return ColumnDomain(column, origin, values=_values(value, origin))


def _project_examples(section: Mapping[str, Any], head: int) -> list[ExampleRows]:
    out: list[ExampleRows] = []
    for key, tables in section.items():
        origin = f"[tool.migproof.examples.{key}]"
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= head):
            raise UsageError(
                f"{origin}: the key is the version the rows are at, a number from 1 to {head} "
                f"(e.g. [tool.migproof.examples.2]). {_FIX}"
            )
        out += _tables_of_rows(tables, int(key), origin)
    return out


def _tables_of_rows(tables: object, version: int, origin: str) -> list[ExampleRows]:
    shape = "{table: [{column: value, ...}, ...]}"
    if not isinstance(tables, Mapping):
        raise UsageError(f"{origin} must be {shape}, not {tables!r}. {_FIX}")
    out: list[ExampleRows] = []
    for table, rows in tables.items():
        where = f"{origin} {table}"
        if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
            raise UsageError(f"{where} must be a list of rows, {shape}, not {rows!r}. {_FIX}")
        checked: list[Mapping[str, object]] = []
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping) or not row:
                raise UsageError(f"{where}[{i}] must be a row {{column = value, ...}}. {_FIX}")
            checked.append({str(c): _scalar(v, f"{where}[{i}].{c}") for c, v in row.items()})
        out.append(ExampleRows(version, str(table).lower(), tuple(checked), where))
    return out


# --- pools from strategies -------------------------------------------------------------------


def examples_of(
    strategy: SearchStrategy[Any], *, seed: int, count: int = POOL_SIZE
) -> list[object]:
    """Up to ``count`` examples of ``strategy``, the same list for one seed in every process.

    Hypothesis's public API draws them: a ``@given`` run with ``@seed``, generate phase only,
    no database, every setting that steers generation given explicitly so a loaded profile
    (``ci``, a user's own) changes nothing. The first example is the strategy's simplest.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as seeded

    found: list[object] = []

    @seeded(seed)
    @settings(
        max_examples=count,
        phases=(Phase.generate,),
        database=None,
        deadline=None,
        derandomize=False,  # @seed decides; derandomize would hash this function instead
        backend="hypothesis",
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )
    @given(strategy)
    def collect(value: object) -> None:
        found.append(value)

    with _local_constants_off():
        collect()
    return found


@contextlib.contextmanager
def _local_constants_off() -> Iterator[None]:
    """Hypothesis mixes into its draws constants harvested from the *local* modules imported
    at that moment (a pytest session imports more of them than the CLI), so one seed would
    give different pools in two processes. No public setting turns that off, so this is the
    one Hypothesis internal migproof uses: ``providers._get_local_constants`` and the
    ``CONSTANTS_CACHE`` it fills, verified on the hypothesis range pyproject.toml allows and
    pinned by ``tests/sqlite/test_harness_domain.py`` (two processes, different local modules,
    the same pool). A release that moves them must not stop a user's certification: the pool
    is then drawn as Hypothesis draws it, with a warning that it may differ between processes
    (our CI turns the warning into an error, so we notice first)."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants

        saved: Callable[[], Any] = providers._get_local_constants
        cache = providers.CONSTANTS_CACHE.cache
    except (ImportError, AttributeError) as err:
        import warnings

        import hypothesis

        warnings.warn(
            f"hypothesis {hypothesis.__version__} moved an internal migproof uses to draw "
            f"column strategies identically in every process ({err}): the same seed may give "
            "other values in a process that imports other local modules (the CLI and pytest), "
            "so a reproduction line may not replay them. Give those columns a list of values "
            "in [tool.migproof.columns], or install a hypothesis release migproof was tested "
            "with.",
            stacklevel=3,
        )
        yield
        return
    providers._get_local_constants = Constants
    cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = saved
        cache.clear()  # entries computed without local constants must not serve later draws
