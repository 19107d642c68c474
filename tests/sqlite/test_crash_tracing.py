from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest
from migproof.harness import tracing
from migproof.harness.tracing import traced

from tests.migrators import crash_hooks

if TYPE_CHECKING:
    from pathlib import Path


def test_counts_every_statement_including_implicit_begin_and_commit(tmp_path: Path) -> None:
    seen: list[tuple[int, str]] = []
    with traced(lambda k, sql: seen.append((k, sql))) as trace:
        conn = sqlite3.connect(tmp_path / "a.db")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (?)", (1,))
        conn.executemany("INSERT INTO t VALUES (?)", [(2,), (3,)])
        conn.commit()
        conn.executescript("BEGIN; INSERT INTO t VALUES (4); COMMIT;")
        conn.close()
    texts = [sql.strip() for _k, sql in seen]
    assert [k for k, _ in seen] == list(range(len(seen)))
    assert texts == [
        "CREATE TABLE t (x)",
        "BEGIN",
        "INSERT INTO t VALUES (1)",
        "INSERT INTO t VALUES (2)",
        "INSERT INTO t VALUES (3)",
        "COMMIT",
        "BEGIN;",
        "INSERT INTO t VALUES (4);",
        "COMMIT;",
    ]
    assert trace.count == len(seen)
    assert trace.connections == 1


def test_connect_is_restored_after_the_block(tmp_path: Path) -> None:
    real = sqlite3.connect
    with traced():
        assert sqlite3.connect is not real
        assert crash_hooks.connect is not real
    assert sqlite3.connect is real
    assert crash_hooks.connect is real
    conn = sqlite3.connect(tmp_path / "b.db")
    assert type(conn) is sqlite3.Connection
    conn.close()


def test_chains_with_the_targets_own_callback_and_factory(tmp_path: Path) -> None:
    crash_hooks.SEEN.clear()
    with traced() as trace:
        conn = crash_hooks.open_audited(str(tmp_path / "c.db"))
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert isinstance(conn, crash_hooks.AuditedConnection)
        assert conn.label() == "audited"
        conn.close()
    assert (
        trace.statements == crash_hooks.SEEN == ["CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"]
    )
    assert trace.unchained == 0


def test_target_clearing_its_callback_keeps_ours(tmp_path: Path) -> None:
    crash_hooks.SEEN.clear()
    with traced() as trace:
        conn = crash_hooks.open_audited(str(tmp_path / "d.db"))
        conn.set_trace_callback(None)
        conn.execute("CREATE TABLE t (x)")
        conn.close()
    assert crash_hooks.SEEN == []
    assert trace.statements == ["CREATE TABLE t (x)"]


def test_positional_factory_and_module_alias_are_traced(tmp_path: Path) -> None:
    crash_hooks.SEEN.clear()
    with traced() as trace:
        a = crash_hooks.open_positional_factory(str(tmp_path / "e.db"))
        a.execute("CREATE TABLE t (x)")
        a.close()
        b = crash_hooks.open_aliased(str(tmp_path / "f.db"))
        b.execute("CREATE TABLE u (y)")
        b.close()
    assert trace.statements == ["CREATE TABLE t (x)", "CREATE TABLE u (y)"]
    assert crash_hooks.SEEN == ["CREATE TABLE t (x)"]
    assert trace.connections == 2


def test_a_factory_function_is_traced_but_counted_unchained(tmp_path: Path) -> None:
    with traced() as trace:
        conn = crash_hooks.open_by_function(str(tmp_path / "g.db"))
        conn.execute("CREATE TABLE t (x)")
        conn.close()
    assert trace.statements == ["CREATE TABLE t (x)"]
    assert trace.unchained == 1


def test_errors_in_our_callback_are_kept_not_swallowed(tmp_path: Path) -> None:
    def boom(k: int, _sql: str) -> None:
        if k == 1:
            raise OSError("disk full while copying")

    with traced(boom) as trace:
        conn = sqlite3.connect(tmp_path / "h.db", isolation_level=None)
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")  # sqlite3 swallows the raise: the insert runs
        conn.execute("INSERT INTO t VALUES (2)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
        conn.close()
    assert isinstance(trace.error, OSError)
    assert trace.count == 4


def test_blocks_do_not_nest() -> None:
    with traced(), pytest.raises(RuntimeError, match="nest"), traced():
        pass
    assert tracing._active is None


def test_watch_traces_only_the_watched_file(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with traced(watch=db) as trace:
        other = sqlite3.connect(":memory:")
        other.execute("SELECT 1")
        other.close()
        side = sqlite3.connect(tmp_path / "backup.db")
        side.execute("CREATE TABLE b (x)")
        assert type(side) is sqlite3.Connection  # left exactly as the target made it
        side.close()
        by_uri = sqlite3.connect(f"file:{db}?mode=rwc", uri=True)
        by_uri.execute("CREATE TABLE t (x)")
        by_uri.close()
        relative = sqlite3.connect(str(tmp_path / "." / "state.db"))
        relative.execute("SELECT * FROM t")
        relative.close()
    assert trace.statements == ["CREATE TABLE t (x)", "SELECT * FROM t"]
    assert trace.ignored == 2
    assert trace.connections == 2


def test_watch_sees_a_hard_link_to_the_file(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    sqlite3.connect(db).close()
    link = tmp_path / "alias.db"
    link.hardlink_to(db)
    with traced(watch=db) as trace:
        conn = sqlite3.connect(link)
        conn.execute("CREATE TABLE t (x)")
        conn.close()
    assert trace.count == 1
