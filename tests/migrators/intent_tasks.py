"""A to-do daemon's migrator, written as its authors would: a list of migration functions,
``PRAGMA user_version`` as the version, all pending steps in one ``BEGIN IMMEDIATE``.

Its history has two steps that change data on purpose, as real histories do:

- step 2 is a backfill: every task's ``rank`` is shifted up by one (0-based ranks became
  1-based), and tasks with no rank get 1;
- step 3 is a 12-step table rebuild (https://sqlite.org/lang_altertable.html#otheralter)
  that only *widens* a CHECK: ``state`` gains the value 'doing'. Indexes and triggers are
  re-created, every row is copied.

Only the backfill needs declaring, and only in pyproject.toml (no Python): the tests write

    [tool.migproof.changes.2]
    transforms = ["tasks.rank"]
    postconditions = ["SELECT id FROM tasks WHERE rank IS NULL"]

The broken twins differ in step 3 only: ``LOSSY`` forgets to copy ``notes`` in the rebuild
(every row survives, a column's values do not); ``NARROWING`` drops 'blocked' from the CHECK
and, so that the copy succeeds, quietly rewrites blocked tasks to 'todo' first.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def _v1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, notes TEXT, "
        "state TEXT NOT NULL DEFAULT 'todo' CHECK (state IN ('todo', 'blocked', 'done')), "
        "rank INTEGER)"
    )
    db.execute("CREATE INDEX tasks_state ON tasks (state)")


def _v2(db: sqlite3.Connection) -> None:
    db.execute("UPDATE tasks SET rank = coalesce(rank, 0) + 1")
    db.execute(
        "CREATE TRIGGER tasks_done AFTER UPDATE OF state ON tasks WHEN new.state = 'done' "
        "BEGIN UPDATE tasks SET rank = 1 WHERE id = new.id AND rank IS NULL; END"
    )


def _rebuild(states: str, copy_columns: str, before_copy: str | None = None) -> Migration:
    def step(db: sqlite3.Connection) -> None:
        if before_copy:
            db.execute(before_copy)
        db.execute(
            "CREATE TABLE tasks_new (id INTEGER PRIMARY KEY, title TEXT NOT NULL, notes TEXT, "
            f"state TEXT NOT NULL DEFAULT 'todo' CHECK (state IN ({states})), rank INTEGER)"
        )
        db.execute(f"INSERT INTO tasks_new ({copy_columns}) SELECT {copy_columns} FROM tasks")
        db.execute("DROP TABLE tasks")
        db.execute("ALTER TABLE tasks_new RENAME TO tasks")
        db.execute("CREATE INDEX tasks_state ON tasks (state)")
        db.execute(
            "CREATE TRIGGER tasks_done AFTER UPDATE OF state ON tasks WHEN new.state = 'done' "
            "BEGIN UPDATE tasks SET rank = 1 WHERE id = new.id AND rank IS NULL; END"
        )

    return step


def _v4(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE tasks ADD COLUMN due TEXT")


ALL_COLUMNS = "id, title, notes, state, rank"
WIDEN = _rebuild("'todo', 'doing', 'blocked', 'done'", ALL_COLUMNS)


class TodoMigrator:
    """``migrate`` applies every pending migration in one transaction, version re-read under
    the lock; a database newer than this code is refused."""

    def __init__(self, name: str, migrations: list[Migration]) -> None:
        self.name = name
        self.migrations = migrations
        self.head = len(migrations)

    def version(self, db_path: str) -> int:
        if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
            return 0
        db = sqlite3.connect(db_path)
        try:
            return int(db.execute("PRAGMA user_version").fetchone()[0])
        finally:
            db.close()

    def migrate(self, db_path: str, target: int | None = None) -> None:
        goal = self.head if target is None else target
        db = sqlite3.connect(db_path, isolation_level=None, timeout=10)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                current = int(db.execute("PRAGMA user_version").fetchone()[0])
                if current > self.head:
                    raise RuntimeError(f"state file is at v{current}, newer than this build")
                for number in range(current + 1, goal + 1):
                    self.migrations[number - 1](db)
                db.execute(f"PRAGMA user_version = {max(current, goal)}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        finally:
            db.close()


CORRECT = TodoMigrator("todo", [_v1, _v2, WIDEN, _v4])
LOSSY = TodoMigrator(
    "todo-lossy-rebuild",
    [_v1, _v2, _rebuild("'todo', 'doing', 'blocked', 'done'", "id, title, state, rank"), _v4],
)
NARROWING = TodoMigrator(
    "todo-narrowing-check",
    [
        _v1,
        _v2,
        _rebuild(
            "'todo', 'doing', 'done'",
            ALL_COLUMNS,
            before_copy="UPDATE tasks SET state = 'todo' WHERE state = 'blocked'",
        ),
        _v4,
    ],
)
