"""Hypothesis strategies that populate a database at some version, for your own property tests.

The shapes follow Hypothesis's own API style: plural nouns, keyword-only options with
defaults, impossible combinations raise ``ValueError`` up front.

- ``values_for(column)``: values a column of that declared type can hold -- by SQLite type
  affinity (or the exact type of a STRICT table), with the edge values that break migrations
  (``harness.values``). Drawn through ``st.randoms()``, so they shrink toward plain values.
- ``rows_for(table)``: lists of rows (dicts of column to value; a column left out takes its
  default). Rows are not yet checked against UNIQUE, CHECK or foreign keys.
- ``databases_at(target, version)`` / ``populations_of(path)``: a ``Population`` -- the
  statements that fill every user table of a database at that version, every row vetted by
  SQLite (``harness.seeded``). A population is decided by one drawn seed, exactly as the
  runner's fixtures are, so it scales to any schema; a failing example shrinks only as far as
  its seed (use ``rows_for`` on one table for rows that shrink).

``Population.write(path)`` replays a population into a copy of the same clean database and
gives the same file for the same population.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import hypothesis.strategies as st

from . import dbfiles, values
from .context import DEFAULT_ROWS
from .contract import internal_tables
from .population import Insert, Population, Row, Update, apply, template_of
from .seeded import ATTEMPTS_PER_ROW, populate
from .values import (
    EDGE_BLOBS,
    EDGE_FLOATS,
    EDGE_INTEGERS,
    EDGE_TEXTS,
    LONG_TEXT,
    ROWID_EDGES,
    ColumnValues,
    RowValues,
    affinity,
    check_literals,
    constant_default,
    is_rowid_alias,
    near,
    storage_of,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hypothesis.strategies import SearchStrategy
    from migproof.engine.schema import Column, Table

    from .target import Target

__all__ = [
    "ATTEMPTS_PER_ROW",
    "DEFAULT_MAX_ROWS",
    "EDGE_BLOBS",
    "EDGE_FLOATS",
    "EDGE_INTEGERS",
    "EDGE_TEXTS",
    "LONG_TEXT",
    "ROWID_EDGES",
    "Insert",
    "Population",
    "Row",
    "Update",
    "affinity",
    "apply",
    "blobs_for",
    "build_reference",
    "check_literals",
    "constant_default",
    "databases_at",
    "floats_for",
    "integers_for",
    "is_rowid_alias",
    "populations_of",
    "reference_at",
    "rows_for",
    "texts_for",
    "values_for",
]

# "A few dozen rows per table": enough to hit collisions, cheap to copy. The runner's default.
DEFAULT_MAX_ROWS: Final = DEFAULT_ROWS
_SEEDS: Final = st.integers(0, 2**64 - 1)


def integers_for(*, edge_values: bool = True) -> SearchStrategy[int]:
    return st.randoms().map(partial(values.integer, edge_values=edge_values))


def floats_for(*, edge_values: bool = True) -> SearchStrategy[float]:
    return st.randoms().map(partial(values.real, edge_values=edge_values))


def texts_for(*, edge_values: bool = True) -> SearchStrategy[str]:
    return st.randoms().map(partial(values.text, edge_values=edge_values))


def blobs_for(*, edge_values: bool = True) -> SearchStrategy[bytes]:
    return st.randoms().map(partial(values.blob, edge_values=edge_values))


def values_for(
    column: Column,
    *,
    strict: bool = False,
    edge_values: bool = True,
    candidates: Sequence[object] = (),
) -> SearchStrategy[object]:
    """Values for one column, by its declared type; NULL when the column allows it.

    ``candidates`` (literals a CHECK constraint names) are offered three times in four.
    """
    source = ColumnValues(
        storage=storage_of(column, strict=strict),
        nullable=not column.notnull and not column.pk,
        preferred=near(candidates),
        edge_values=edge_values,
    )
    return st.randoms().map(source.draw)


def rows_for(
    table: Table,
    *,
    min_size: int = 0,
    max_size: int = DEFAULT_MAX_ROWS,
    edge_values: bool = True,
) -> SearchStrategy[list[Row]]:
    """Lists of rows for ``table``, not yet checked against its constraints."""
    if not 0 <= min_size <= max_size:
        raise ValueError(f"rows_for: need 0 <= min_size <= max_size, got {min_size} and {max_size}")
    row = RowValues.of(table, edge_values=edge_values)
    return st.lists(st.randoms().map(row.draw), min_size=min_size, max_size=max_size)


def populations_of(
    path: Path,
    *,
    exclude: frozenset[str] = frozenset(),
    min_rows: int = 0,
    max_rows: int = DEFAULT_MAX_ROWS,
    many_rows: int | None = None,
    edge_values: bool = True,
) -> SearchStrategy[Population]:
    """Populations for the clean database at ``path`` (its tables less ``exclude``).

    Each table gets ``min_rows..max_rows`` rows (fewer when constraints reject candidates
    ``ATTEMPTS_PER_ROW`` times in a row); one table drawn at random gets ``many_rows``
    (default ``4 * max_rows``) when that is larger. Rows the clean database already holds
    (seeded by the migration) are edited as a user would.
    """
    if not 0 <= min_rows <= max_rows:
        raise ValueError(
            f"populations_of: need 0 <= min_rows <= max_rows, got {min_rows} and {max_rows}"
        )
    template = template_of(path, exclude=exclude)
    return _SEEDS.map(
        partial(
            populate,
            template,
            min_rows=min_rows,
            max_rows=max_rows,
            many_rows=many_rows,
            edge_values=edge_values,
        )
    )


def databases_at(
    target: Target,
    version: int,
    *,
    min_rows: int = 0,
    max_rows: int = DEFAULT_MAX_ROWS,
    many_rows: int | None = None,
    edge_values: bool = True,
    journal_mode: str = "delete",
) -> SearchStrategy[Population]:
    """Populations of ``target``'s clean database at ``version`` (its internal tables left alone).

    The clean database is built once, here, by ``target.migrate(empty, version)``; write a
    drawn population into a copy of ``reference_at(target, version)`` (or the runner's
    ``Context.reference_db``) to get a fixture file.
    """
    if not 0 <= version <= target.head:
        raise ValueError(
            f"databases_at: version {version} is outside 0..{target.head} for {target.name}"
        )
    return populations_of(
        reference_at(target, version, journal_mode=journal_mode),
        exclude=internal_tables(target),
        min_rows=min_rows,
        max_rows=max_rows,
        many_rows=many_rows,
        edge_values=edge_values,
    )


_REFERENCES: dict[tuple[int, int, str], Path] = {}


def reference_at(target: Target, version: int, *, journal_mode: str = "delete") -> Path:
    """``target``'s clean database at ``version``, built once per process in a temp directory."""
    key = (id(target), version, journal_mode)
    found = _REFERENCES.get(key)
    if found is None or not found.exists():
        folder = Path(tempfile.mkdtemp(prefix="migproof-ref-"))
        found = build_reference(target, version, folder / f"v{version}.db", journal_mode)
        _REFERENCES[key] = found
    return found


def build_reference(target: Target, version: int, path: Path, journal_mode: str) -> Path:
    dbfiles.create_empty(path, journal_mode)
    if version > 0:
        target.migrate(str(path), version)
    dbfiles.checkpoint(path)
    return path
