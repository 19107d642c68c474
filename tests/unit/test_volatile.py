from __future__ import annotations

from migproof.engine.schema import Column, Schema, Table
from migproof.harness import data
from migproof.harness.volatile import MASKED, default_volatile, differing, mask


def _col(name: str, default: str | None = None, pk: int = 0) -> Column:
    return Column(name, "text", False, default, pk, 0)


def test_clock_and_expression_defaults_are_volatile_constants_are_not() -> None:
    schema = Schema(
        tables=(
            Table(
                "t",
                (
                    _col("id", pk=1),
                    _col("a", "current_timestamp"),
                    _col("b", "( strftime ( '%s' , 'now' ) )"),
                    _col("c", "'fixed'"),
                    _col("d", "0"),
                ),
            ),
        )
    )
    assert default_volatile(schema) == {"t.a", "t.b"}


def _snap(
    rows: dict[int, tuple[str, str]], kind: data.KeyKind = data.KeyKind.PRIMARY_KEY
) -> data.DataSnapshot:
    cells: dict[data.Key, tuple[data.Cell, ...]] = {
        (data.cell(k),): (data.cell(k), data.cell(a), data.cell(b)) for k, (a, b) in rows.items()
    }
    return data.DataSnapshot({"t": data.TableData("t", ("id", "at", "name"), kind, ("id",), cells)})


def test_masking_makes_two_runs_that_differ_only_in_the_clock_equal() -> None:
    one = _snap({1: ("1700000000", "x"), 2: ("1700000000", "y")})
    two = _snap({1: ("1700000001", "x"), 2: ("1700000001", "y")})
    assert differing(one, two) == {"t.at"}
    assert data.compare(mask(one, ["t.at"]), mask(two, ["t.at"])) == ()
    # A difference elsewhere is still one.
    three = _snap({1: ("1700000001", "x"), 2: ("1700000001", "z")})
    (diff,) = data.compare(mask(one, ["t.at"]), mask(three, ["t.at"]))
    assert diff.column == "name"
    assert mask(one, ["t.at"]).tables["t"].rows[(data.cell(1),)][1] == MASKED


def test_a_table_keyed_by_its_whole_row_is_rekeyed_by_the_masked_row() -> None:
    def whole(rows: list[tuple[str, str]]) -> data.DataSnapshot:
        cells: dict[data.Key, tuple[data.Cell, ...]] = {}
        for n, (a, b) in enumerate(rows):
            row = (data.cell(n), data.cell(a), data.cell(b))
            cells[(*row, ("integer", 0))] = row
        return data.DataSnapshot(
            {
                "t": data.TableData(
                    "t", ("id", "at", "name"), data.KeyKind.ROW, ("id", "at", "name"), cells
                )
            }
        )

    one = whole([("1", "x"), ("1", "y")])
    two = whole([("2", "x"), ("2", "y")])
    assert data.compare(one, two)
    assert data.compare(mask(one, ["t.at"]), mask(two, ["t.at"])) == ()
