"""Declaring steps: validation, checksums, declarations the harness reads, rebuild SQL."""

from __future__ import annotations

import pytest
from migproof.engine import (
    AddColumn,
    CreateIndex,
    CreateTable,
    CreateTrigger,
    DataChange,
    InvalidDeclarationError,
    RebuildTable,
    Step,
    Steps,
)
from migproof.engine.examples.jobqueue import STEPS


def test_checksum_ignores_whitespace_comments_and_line_endings() -> None:
    a = Step(1, "t", [CreateTable("CREATE TABLE t (a INTEGER, b TEXT)")])
    b = Step(1, "t", [CreateTable("create table t (\r\n  a integer, -- note\r\n  b text\r\n)")])
    c = Step(1, "t", [CreateTable("CREATE TABLE t (a INTEGER, b BLOB)")])
    assert a.checksum == b.checksum
    assert a.checksum != c.checksum


def test_checksum_keeps_string_literal_case() -> None:
    a = Step(1, "t", [DataChange("UPDATE t SET s = 'A'")])
    b = Step(1, "t", [DataChange("UPDATE t SET s = 'a'")])
    assert a.checksum != b.checksum


@pytest.mark.parametrize(
    ("steps", "match"),
    [
        ([Step(2, "x", [CreateTable("CREATE TABLE t (a)")])], "without gaps"),
        ([Step(1, "x", [])], "no operations"),
        ([Step(1, "x", [AddColumn("nope", "a TEXT")])], "not created by an earlier step"),
        ([Step(1, "x", [CreateTable("CREATE TEMP TABLE t (a)")])], "TEMP"),
        ([Step(1, "x", [CreateTable("CREATE INDEX i ON t (a)")])], "expected CREATE TABLE"),
    ],
)
def test_invalid_declarations_are_refused_with_a_reason(steps: list[Step], match: str) -> None:
    with pytest.raises(InvalidDeclarationError, match=match):
        Steps(steps, name="bad")


def test_min_supported_outside_the_history_is_refused() -> None:
    with pytest.raises(InvalidDeclarationError, match="min_supported=5"):
        Steps([Step(1, "x", [CreateTable("CREATE TABLE t (a)")])], min_supported=5)


def test_declarations_the_harness_reads() -> None:
    assert STEPS.step(9).rebuilds == frozenset({"jobs"})
    assert STEPS.step(9).transforms == frozenset({"jobs.run_after"})
    assert STEPS.step(8).transforms == frozenset({"jobs.run_after", "jobs.kind"})
    assert len(STEPS.step(8).postconditions) == 2
    assert STEPS.step(1).rebuilds == frozenset()


def test_rebuild_recreates_indexes_and_triggers_and_keeps_foreign_keys_safe() -> None:
    steps = Steps(
        [
            Step(
                1,
                "a",
                [
                    CreateTable("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)"),
                    CreateIndex("CREATE INDEX t_s ON t (s)"),
                    CreateTrigger("CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN SELECT 1; END"),
                ],
            ),
            Step(
                2,
                "b",
                [
                    RebuildTable(
                        "t", "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT CHECK (s <> ''))"
                    )
                ],
            ),
        ]
    )
    stmts = steps.resolved(2)[0].statements
    assert stmts[0].startswith('CREATE TABLE "_migproof_new_t"')
    assert stmts[1] == 'INSERT INTO "_migproof_new_t" ("id", "s") SELECT "id", "s" FROM "t"'
    assert 'DROP TABLE "t"' in stmts
    assert "CREATE INDEX t_s ON t (s)" in stmts
    assert any(s.startswith("CREATE TRIGGER t_ins") for s in stmts)


def test_example_history_is_realistic() -> None:
    kinds = {op.kind.value for step in STEPS for op in step.ops}
    assert STEPS.head >= 10
    assert kinds >= {
        "create table",
        "add column",
        "create index",
        "create trigger",
        "create view",
        "data",
        "rebuild table",
    }
    partial_unique = [
        op
        for step in STEPS
        for op in step.ops
        if isinstance(op, CreateIndex) and "UNIQUE" in op.sql and "WHERE" in op.sql
    ]
    assert partial_unique
