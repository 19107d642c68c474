from __future__ import annotations

import pytest
from migproof.engine.schema import Column, Schema, Table
from migproof.harness.crash.oracle import (
    AFTER_LAST,
    Oracle,
    Point,
    Recovery,
    State,
    data_differences,
    judge,
)
from migproof.harness.crash.statements import parse_points
from migproof.harness.data import cell


def schema(*cols: str) -> Schema:
    return Schema.build([Table("t", tuple(Column(c, "INTEGER", False, None, 0, 0) for c in cols))])


S0 = State(0, Schema(), ())
S1 = State(1, schema("a"), (("t", ((cell(1),),)),))
S2 = State(2, schema("a", "b"), (("t", ((cell(1), cell(0)),)),))
REFS = {0: S0, 1: S1, 2: S2}


def ok(state: State, converged: State = S2) -> Recovery:
    return Recovery("ok", state, "", converged, "")


def points(*images: str) -> list[Point]:
    last = len(images) - 1
    return [Point(k, AFTER_LAST if k == last else f"stmt {k}", iid) for k, iid in enumerate(images)]


def run(images: tuple[str, ...], recoveries: dict[str, Recovery]) -> list[tuple[int, Oracle]]:
    found = judge(
        start=0, head=2, points=points(*images), recoveries=recoveries, references=REFS, final=S2
    )
    return [(f.k, f.oracle) for f in found]


def test_clean_states_in_order_pass() -> None:
    recs = {"a": ok(S0), "b": ok(S1), "c": ok(S2)}
    assert run(("a", "a", "b", "b", "c"), recs) == []


def test_integrity_failure_is_reported_and_nothing_else_is_judged_there() -> None:
    recs = {
        "a": ok(S0),
        "bad": Recovery("integrity_check reports page 2 is never used"),
        "c": ok(S2),
    }
    assert run(("a", "bad", "c"), recs) == [(1, Oracle.INTEGRITY)]


def test_half_applied_step_is_a_reference_state_failure() -> None:
    half = State(1, schema("a", "b"), (("t", ((cell(1), cell(0)),)),))  # v2's column, v1's stamp
    recs = {"a": ok(S0), "h": ok(half), "c": ok(S2)}
    found = judge(
        start=0, head=2, points=points("a", "h", "c"), recoveries=recs, references=REFS, final=S2
    )
    assert [(f.k, f.oracle) for f in found] == [(1, Oracle.REFERENCE)]
    assert "column t.b is unexpected" in found[0].found
    assert "clean state at v1" in found[0].expected


def test_bookkeeping_created_ahead_of_a_step_is_not_a_half_applied_step() -> None:
    # A tool that creates its (empty) version table in its own transaction before the first
    # step (Alembic, yoyo, sqlite-utils): the user's schema is v0's and the tool reads v0. An
    # internal table the clean state lacks is no step; convergence still judges it.
    ledger = Schema.build([Table("ledger", (Column("v", "INTEGER", False, None, 0, 0),))])
    with_ledger = State(0, Schema.build([*ledger.tables]), ())
    recs = {"a": ok(S0), "l": ok(with_ledger), "c": ok(S2)}
    found = judge(
        start=0,
        head=2,
        points=points("a", "l", "c"),
        recoveries=recs,
        references=REFS,
        final=S2,
        internal=frozenset({"ledger"}),
    )
    assert found == ()
    # Not excused: a table that is not internal, or an internal table the clean state has
    # in another shape.
    found = judge(
        start=0, head=2, points=points("a", "l", "c"), recoveries=recs, references=REFS, final=S2
    )
    assert [(f.k, f.oracle) for f in found] == [(1, Oracle.REFERENCE)]
    reshaped = State(
        0, Schema.build([Table("ledger", (Column("w", "TEXT", False, None, 0, 0),))]), ()
    )
    refs = {**REFS, 0: with_ledger}
    found = judge(
        start=0,
        head=2,
        points=points("a", "l", "c"),
        recoveries={"a": ok(with_ledger), "l": ok(reshaped), "c": ok(S2)},
        references=refs,
        final=S2,
        internal=frozenset({"ledger"}),
    )
    assert [(f.k, f.oracle) for f in found] == [(1, Oracle.REFERENCE)]


def test_changed_data_at_a_clean_schema_is_a_reference_state_failure() -> None:
    bumped = State(1, schema("a"), (("t", ((cell(2),),)),))
    recs = {"a": ok(S0), "x": ok(bumped), "c": ok(S2)}
    found = judge(
        start=0, head=2, points=points("a", "x", "c"), recoveries=recs, references=REFS, final=S2
    )
    assert [(f.k, f.oracle) for f in found] == [(1, Oracle.REFERENCE)]
    assert "expected row (integer 1) is absent" in found[0].found


def test_rows_in_a_finding_read_as_values_with_their_storage_class() -> None:
    expected = (("t", ((cell(1), cell(1.5), cell("x"), cell(None)),)),)
    found = (("t", ((cell(1), cell(2.5), cell("x"), cell(None)),)),)
    (what,) = data_differences(expected, found)
    assert what == (
        "data of t: 1 rows (expected 1), "
        "e.g. expected row (integer 1, real 1.5, text 'x', NULL) is absent, "
        "e.g. row (integer 1, real 2.5, text 'x', NULL) is unexpected"
    )


def test_version_out_of_range() -> None:
    recs = {"a": ok(S0), "x": ok(State(7, Schema(), ())), "c": ok(S2)}
    assert run(("a", "x", "c"), recs) == [(1, Oracle.REFERENCE)]


def test_going_back_after_a_commit_is_a_durability_failure() -> None:
    recs = {"a": ok(S0), "b": ok(S1), "c": ok(S2)}
    found = judge(
        start=0,
        head=2,
        points=points("a", "b", "a", "c"),
        recoveries=recs,
        references=REFS,
        final=S2,
    )
    assert [(f.k, f.oracle) for f in found] == [(2, Oracle.DURABILITY)]
    assert "k=1" in found[0].expected


def test_the_finished_run_must_be_at_head() -> None:
    recs = {"a": ok(S0), "b": ok(S1)}
    assert run(("a", "b"), recs) == [(1, Oracle.DURABILITY)]


def test_rerun_error_and_divergence_are_convergence_failures() -> None:
    recs = {
        "a": ok(S0),
        "e": Recovery("ok", S1, "", None, "OperationalError: duplicate column name: b"),
        "d": ok(S1, converged=State(2, schema("a", "b"), (("t", ((cell(1), cell(1)),)),))),
        "c": ok(S2),
    }
    found = judge(
        start=0,
        head=2,
        points=points("a", "e", "d", "c"),
        recoveries=recs,
        references=REFS,
        final=S2,
    )
    assert [(f.k, f.oracle) for f in found] == [(1, Oracle.CONVERGENCE), (2, Oracle.CONVERGENCE)]
    assert "duplicate column" in found[0].found
    assert "row (integer 1, integer 1) is unexpected" in found[1].found


def test_a_finding_names_start_k_and_sql() -> None:
    recs = {"a": ok(S0), "x": ok(State(7, Schema(), ())), "c": ok(S2)}
    (f,) = judge(
        start=0, head=2, points=points("a", "x", "c"), recoveries=recs, references=REFS, final=S2
    )
    assert f.describe(0).startswith("v0 k=1 before `stmt 1`: reference-state: found version 7")


@pytest.mark.parametrize(
    ("point", "expected"),
    [(None, None), ("k7", range(7, 8)), ("k0-39", range(40)), ("k3-3", range(3, 4))],
)
def test_parse_points(point: str | None, expected: range | None) -> None:
    assert parse_points(point) == expected


@pytest.mark.parametrize("point", ["7", "k", "k5-2", "r3"])
def test_parse_points_refuses_nonsense(point: str) -> None:
    with pytest.raises(ValueError, match="crash-point group"):
        parse_points(point)
