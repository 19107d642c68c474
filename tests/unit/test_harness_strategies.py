"""Pure parts of fixture generation: affinity, CHECK literals, defaults, seeds, the value mix,
and the public Hypothesis strategies built on it."""

from __future__ import annotations

import random

import pytest
from hypothesis import find, given, settings
from migproof.engine.schema import Column, Table
from migproof.harness import values
from migproof.harness.seeded import derive_seed
from migproof.harness.strategies import (
    affinity,
    check_literals,
    constant_default,
    rows_for,
    values_for,
)
from migproof.harness.values import (
    EDGE_INTEGERS,
    EDGE_TEXTS,
    LONG_TEXT,
    PLAIN_TEXT_MAX,
    ColumnValues,
    RowValues,
    Storage,
    near,
    storage_of,
    unique_columns,
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


def draws(source: ColumnValues, n: int = 2000, *, seed: int = 0, **kw: object) -> list[object]:
    rnd = random.Random(seed)
    return [source.draw(rnd, **kw) for _ in range(n)]  # type: ignore[arg-type]


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


@pytest.mark.parametrize(
    ("declared", "strict", "expected"),
    [
        ("int", True, Storage.INTEGER),
        ("any", True, Storage.ANY),
        ("text", True, Storage.TEXT),
        ("", False, Storage.ANY),  # no declared type: anything goes
        ("blob", False, Storage.BLOB),
        ("boolean", False, Storage.NUMERIC),
    ],
)
def test_storage_is_the_strict_type_else_the_affinity(
    declared: str, strict: bool, expected: str
) -> None:
    assert storage_of(col("c", declared), strict=strict) == expected


def test_check_literals_per_column() -> None:
    table = Table(
        "t",
        (col("state"), col("n", "INTEGER")),
        checks=("state in ( 'a' , 'it''s' )", "n between - 5 and 10", "length ( state ) > 0"),
    )
    found = check_literals(table)
    assert found["state"] == ("a", "it's", 0)
    assert found["n"] == (-5, 10)


def test_near_offers_the_literals_and_a_bounded_range_around_numbers() -> None:
    assert near(("a", "b")) == ("a", "b")
    assert set(near((-1, 1))) == {-2, -1, 0, 1, 2}
    wide = near((-1000, 1000))
    assert -1001 in wide
    assert 1001 in wide
    assert len(wide) < 40


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
            col("defaulted", "INTEGER", notnull=True, default="0"),
        ),
    )
    row_values = RowValues.of(table)
    rows = [row_values.draw(random.Random(seed)) for seed in range(60)]
    assert all(r["must"] is not None for r in rows)
    assert all("stamped" in r for r in rows)  # a clock default would make fixtures differ
    assert any("defaulted" not in r for r in rows)  # a constant default is sometimes used
    assert any("id" in r for r in rows)
    assert any("id" not in r for r in rows)


def test_edge_values_appear_and_plain_values_dominate() -> None:
    ints = draws(ColumnValues(Storage.INTEGER))
    assert len(set(EDGE_INTEGERS) & set(ints)) >= len(EDGE_INTEGERS) - 1
    assert sum(v in EDGE_INTEGERS for v in ints) < len(ints) / 2
    texts = [v for v in draws(ColumnValues(Storage.TEXT), 4000) if isinstance(v, str)]
    assert len(set(EDGE_TEXTS) & set(texts)) >= len(EDGE_TEXTS) // 2
    assert any(len(t) >= LONG_TEXT[0] for t in texts)  # past a page: overflow pages
    assert any(any(ord(ch) > 0xFFFF for ch in t) for t in texts)  # 4-byte UTF-8
    assert any(any(0x7F < ord(ch) <= 0xFFFF for ch in t) for t in texts)
    assert not any("\x00" in t for t in texts)


def test_nulls_only_where_allowed() -> None:
    assert None not in draws(ColumnValues(Storage.TEXT, nullable=False))
    share = draws(ColumnValues(Storage.TEXT, nullable=True)).count(None) / 2000
    assert 0.05 < share < 0.15


def test_values_repeat_on_purpose_unless_the_column_is_unique() -> None:
    marker = "held-value"
    repeated = draws(ColumnValues(Storage.TEXT), held=[marker]).count(marker)
    assert 2000 / values.DUPLICATE_IN / 2 < repeated < 2000 / values.DUPLICATE_IN * 2
    assert marker not in draws(ColumnValues(Storage.TEXT, unique=True), held=[marker])


def test_preferred_values_dominate_and_safe_draws_are_plain() -> None:
    pool = ("gh:a/b#1", "gh:c/d#2")
    got = draws(ColumnValues(Storage.TEXT, preferred=pool))
    assert 0.6 < sum(v in pool for v in got) / len(got) < 0.9
    # Safe: no NULL, no repeat of a held value, nothing long (plain text never holds NUL).
    safe = draws(ColumnValues(Storage.TEXT, nullable=True), held=["\x00held"], safe=True)
    assert all(isinstance(v, str) and len(v) <= PLAIN_TEXT_MAX for v in safe)
    assert "\x00held" not in safe
    assert set(draws(ColumnValues(Storage.TEXT, preferred=pool), safe=True)) == set(pool)


def test_strict_types_get_exactly_their_storage_class() -> None:
    table = Table(
        "s",
        (col("i", "INTEGER", notnull=True), col("t", notnull=True), col("b", "BLOB", notnull=True)),
        strict=True,
    )
    rv = RowValues.of(table)
    for v in draws(rv.source("i")):
        assert type(v) is int
    for v in draws(rv.source("t")):
        assert type(v) is str
    for v in draws(rv.source("b")):
        assert type(v) is bytes


def test_unique_columns_cover_keys_constraints_and_unique_indexes() -> None:
    from migproof.engine.schema import Index, Schema

    table = Table(
        "t",
        (col("id", "INTEGER", pk=1), col("a"), col("b"), col("c"), col("d")),
        uniques=(("a",),),
    )
    schema = Schema.build(
        [table],
        [
            Index("ux", "t", ("lower ( b )",), True, "b is not null"),
            Index("ix", "t", ("c",), False, None),
        ],
        [],
        [],
    )
    assert unique_columns(table, schema) == {"id", "a", "b"}


def test_rows_for_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="min_size <= max_size"):
        rows_for(Table("t", (col("a"),)), min_size=5, max_size=2)


def test_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(1, "fixture", 3) == derive_seed(1, "fixture", 3)
    assert derive_seed(1, "fixture", 3) != derive_seed(1, "fixture", 4)


def test_public_strategies_shrink_through_hypothesis() -> None:
    # The same value mix, driven by st.randoms(): a failing value shrinks to a plain one.
    found = find(
        values_for(col("n", "INTEGER", notnull=True)),
        lambda v: isinstance(v, int) and v > 100,
        settings=settings(database=None, derandomize=True),
    )
    assert found == 101


@settings(max_examples=30, deadline=None, database=None)
@given(rows_for(Table("t", (col("id", "INTEGER", pk=1), col("a", notnull=True))), max_size=4))
def test_rows_for_is_usable_in_a_property_test(rows: list[dict[str, object]]) -> None:
    assert len(rows) <= 4
    assert all(r["a"] is not None for r in rows)
