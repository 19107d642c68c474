"""Pure parts of the fixture strategies: affinity, CHECK literals, defaults, seeds, shapes."""

from __future__ import annotations

import pytest
from migproof.engine.schema import Column, Table
from migproof.harness import seeded
from migproof.harness.strategies import (
    affinity,
    check_literals,
    constant_default,
    row_strategy,
    rows_for,
)


def col(
    name: str,
    type_: str = "TEXT",
    *,
    notnull: bool = False,
    default: str | None = None,
    pk: int = 0,
) -> Column:
    return Column(name, type_.lower(), notnull, default, pk, 0)


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("INTEGER", "integer"),
        ("BIGINT", "integer"),
        ("VARCHAR(10)", "text"),
        ("CLOB", "text"),
        ("BLOB", "blob"),
        ("", "blob"),
        ("REAL", "real"),
        ("DOUBLE PRECISION", "real"),
        ("DECIMAL(10,5)", "numeric"),
        ("BOOLEAN", "numeric"),
        ("CHARINT", "integer"),
    ],
)
def test_affinity_follows_sqlite_rules(declared: str, expected: str) -> None:
    assert affinity(declared) == expected


def test_check_literals_per_column() -> None:
    table = Table(
        "t",
        (col("state"), col("n", "INTEGER")),
        checks=("state in ( 'a' , 'it''s' )", "n between - 5 and 10", "length ( state ) > 0"),
    )
    found = check_literals(table)
    assert found["state"] == ("a", "it's", 0)
    assert found["n"] == (-5, 10)


@pytest.mark.parametrize(
    ("default", "constant"),
    [
        (None, True),
        ("0", True),
        ("'active'", True),
        ("current_timestamp", False),
        ("( strftime ( '%s' , 'now' ) )", False),
        ("- 1", True),
    ],
)
def test_clock_defaults_are_not_left_to_sqlite(default: str | None, constant: bool) -> None:
    assert constant_default(default) is constant


def test_rows_respect_not_null_and_leave_out_only_defaulted_columns() -> None:
    table = Table(
        "t",
        (
            col("id", "INTEGER", pk=1),
            col("must", notnull=True),
            col("stamped", notnull=True, default="current_timestamp"),
            col("maybe"),
        ),
    )
    for seed in range(30):
        row = seeded.draw(row_strategy(table), seed)
        assert row["must"] is not None
        assert "stamped" in row  # a clock default would make the fixture differ run to run


def test_rows_for_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="min_size <= max_size"):
        rows_for(Table("t", (col("a"),)), min_size=5, max_size=2)


def test_seeds_are_stable_and_distinct() -> None:
    assert seeded.derive_seed(1, "fixture", 3) == seeded.derive_seed(1, "fixture", 3)
    assert seeded.derive_seed(1, "fixture", 3) != seeded.derive_seed(1, "fixture", 4)
    strat = rows_for(Table("t", (col("a", "INTEGER"), col("b"))), max_size=10)
    assert seeded.draw(strat, 42) == seeded.draw(strat, 42)
    assert any(seeded.draw(strat, s) != seeded.draw(strat, 42) for s in range(5))
