"""The bookkeeping tables read defensively: every problem named, nothing raised (pure)."""

from __future__ import annotations

import dataclasses

import pytest
from migproof.engine.bookkeeping import (
    INTERNAL_TABLES,
    LEDGER_TABLE,
    META_TABLE,
    Bookkeeping,
    LedgerEntry,
    StoredText,
    app_id_tag,
    owns_app_id,
    read_bookkeeping,
)
from migproof.engine.reference import internal_schema
from migproof.engine.schema import Column, Schema

EXPECTED = internal_schema()
SHA = "ab" * 32


def text(s: str) -> StoredText:
    return StoredText(s.encode())


def row(version: object = 1, name: object = None, checksum: object = None) -> tuple[object, ...]:
    return (
        1,
        version,
        text("one") if name is None else name,
        text(SHA) if checksum is None else checksum,
        text("2024-01-01T00:00:00.000+00:00"),
        1.5,
    )


META_ROW = (1, 7, text("app"), text(SHA))


def test_sound_tables_give_the_ledger_and_the_recorded_cookie() -> None:
    found = read_bookkeeping(EXPECTED, EXPECTED, [row()], [META_ROW])
    assert found.damage == ()
    assert found.tables == INTERNAL_TABLES
    assert found.ledger == (LedgerEntry(1, "one", SHA, "2024-01-01T00:00:00.000+00:00", 1.5),)
    assert (found.recorded_cookie, found.recorded_fingerprint) == (7, SHA)


def test_no_tables_and_no_meta_row_are_not_damage() -> None:
    assert read_bookkeeping(Schema(), EXPECTED) == Bookkeeping()
    found = read_bookkeeping(EXPECTED, EXPECTED, [], [])
    assert (found.damage, found.recorded_cookie) == ((), None)


@pytest.mark.parametrize(
    ("ledger_row", "named"),
    [
        (row(version=text("abc")), "version is the text 'abc', not an integer"),
        (row(version=1.5), "version is the real 1.5, not an integer"),
        (row(version=b"\x01"), "version is a blob (01), not an integer"),
        (row(version=None), "version is NULL"),
        (row(name=StoredText(b"\xffA")), "name is text that is not valid UTF-8"),
        (row(checksum=text("edited")), "checksum 'edited' is not a SHA-256 in hex"),
        (row(checksum=42), "checksum is the integer 42, not text"),
    ],
)
def test_each_wrong_ledger_value_is_named_with_its_row(
    ledger_row: tuple[object, ...], named: str
) -> None:
    found = read_bookkeeping(EXPECTED, EXPECTED, [ledger_row], [META_ROW])
    assert found.ledger == ()
    assert len(found.damage) == 1
    assert found.damage[0].startswith(f"{LEDGER_TABLE} row seq=1: ")
    assert named in found.damage[0]


@pytest.mark.parametrize(
    ("meta_rows", "named"),
    [
        ([(1, text("abc"), text("app"), text(SHA))], "schema_cookie is the text 'abc'"),
        ([(1, 7, text("app"), 7)], "fingerprint is the integer 7, not text"),
        ([(1, 7, StoredText(b"\xc3("), text(SHA))], "steps is text that is not valid UTF-8"),
        ([META_ROW, (2, 1, text("x"), text("y"))], "must hold one row with id 1; it holds ids"),
    ],
)
def test_each_wrong_meta_value_is_named(meta_rows: list[tuple[object, ...]], named: str) -> None:
    found = read_bookkeeping(EXPECTED, EXPECTED, [], meta_rows)
    assert found.recorded_cookie is None
    assert named in " ".join(found.damage)


def test_a_table_of_another_shape_is_named_and_its_rows_are_not_read() -> None:
    ledger = EXPECTED.table(LEDGER_TABLE)
    assert ledger is not None
    renamed = tuple(
        dataclasses.replace(c, name="v") if c.name == "version" else c for c in ledger.columns
    )
    extra = (*renamed, Column("extra", "text", False, None, 0, 0))
    found_schema = Schema.build(
        [
            dataclasses.replace(ledger, columns=extra),
            *(t for t in EXPECTED.tables if t.name == META_TABLE),
        ]
    )
    found = read_bookkeeping(found_schema, EXPECTED, [("garbage",)], [META_ROW])
    assert found.ledger == ()
    joined = " ".join(found.damage)
    assert f"{LEDGER_TABLE}.version is missing" in joined
    assert f"{LEDGER_TABLE}.v is unexpected" in joined


def test_application_id_is_the_engine_s_only_when_unset_or_its_own_last_tag() -> None:
    recorded = Bookkeeping(INTERNAL_TABLES, recorded_cookie=7, recorded_fingerprint=SHA)
    assert owns_app_id(0, Bookkeeping())
    assert owns_app_id(app_id_tag(7, SHA), recorded)
    assert not owns_app_id(app_id_tag(8, SHA), recorded)  # a tag, but not the one recorded
    assert not owns_app_id(app_id_tag(7, SHA), Bookkeeping())  # never recorded: not provable
    assert not owns_app_id(1234, recorded)
