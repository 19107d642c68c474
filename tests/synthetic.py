"""Real-size histories on demand: engine ``Steps`` for T tables over V versions, from a seed.

The operation mix is the bundled example's (``engine/examples/jobqueue.py``): tables created
over the whole history, columns added (nullable, ``NOT NULL DEFAULT``, with a CHECK, a foreign
key), plain and partial UNIQUE indexes, audit triggers, views, backfills with a declared
transform and postcondition, lookup rows seeded by a data statement, and rebuilds that widen
a CHECK. Column shapes cover what the fixture generator must satisfy: NOT NULL, CHECK with IN
lists, comparisons and ``length()``, UNIQUE, foreign keys (nullable or not, to rowid and
WITHOUT ROWID parents), STRICT tables, clock defaults.

Every choice comes from ``random.Random(seed)``; the same arguments give the same steps.
Every history is valid by construction: a UNIQUE index is only put on a column added in the
same step, a rebuild only widens, a backfill only fills NULLs (so any populated old database
upgrades). ``bench/`` imports it too.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from migproof.engine import (
    AddColumn,
    CreateIndex,
    CreateTable,
    CreateTrigger,
    CreateView,
    DataChange,
    RebuildTable,
    Step,
    Steps,
)

if TYPE_CHECKING:
    from migproof.engine.steps import Operation

EVENTS = "t01"  # the audit log every trigger writes to; the first table of every history
STATES = ("new", "open", "closed")  # a widenable CHECK (... IN (...)); rebuilds add one more
STRICT_TYPES = {"text": "TEXT", "int": "INTEGER", "real": "REAL", "blob": "BLOB", "any": "ANY"}
LOOSE_TYPES = {
    "text": "TEXT",
    "int": "INTEGER",
    "real": "REAL",
    "blob": "BLOB",
    "any": "NUMERIC",
}


@dataclass(slots=True)
class _Table:
    name: str
    key: str  # the primary-key column ("id" INTEGER, or "code" TEXT for WITHOUT ROWID)
    strict: bool
    without_rowid: bool
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, definition)
    states: dict[str, tuple[str, ...]] = field(default_factory=dict)  # widenable CHECK IN lists
    text_columns: list[str] = field(default_factory=list)  # plain TEXT, for triggers and views

    def create_sql(self) -> str:
        cols = ",\n    ".join(f"{n} {d}" for n, d in self.columns)
        options = [
            o for o, on in (("WITHOUT ROWID", self.without_rowid), ("STRICT", self.strict)) if on
        ]
        return f"CREATE TABLE {self.name} (\n    {cols}\n) {', '.join(options)}".rstrip()

    def type(self, kind: str) -> str:
        return (STRICT_TYPES if self.strict else LOOSE_TYPES)[kind]


class _Builder:
    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.tables: list[_Table] = []
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:03d}"

    # --- tables ---------------------------------------------------------------------------

    def create_events(self) -> list[Operation]:
        t = _Table(EVENTS, "id", strict=False, without_rowid=False)
        t.columns = [
            ("id", "INTEGER PRIMARY KEY"),
            ("at", "TEXT NOT NULL DEFAULT '2000-01-01'"),
            ("what", "TEXT NOT NULL CHECK (length(what) > 0)"),
        ]
        self.tables.append(t)
        return [CreateTable(t.create_sql())]

    def create_table(self, number: int) -> list[Operation]:
        rnd = self.rnd
        name = f"t{number:02d}"
        without_rowid = rnd.random() < 0.15
        strict = rnd.random() < 0.2
        t = _Table(name, "code" if without_rowid else "id", strict, without_rowid)
        t.columns.append(
            ("code", f"{t.type('text')} PRIMARY KEY NOT NULL")
            if without_rowid
            else ("id", "INTEGER PRIMARY KEY")
        )
        for _ in range(rnd.randint(2, 5)):
            self._column(t)
        ops: list[Operation] = [CreateTable(t.create_sql())]
        if without_rowid and rnd.random() < 0.5:
            # Lookup rows the migration seeds itself (jobqueue's 'default' queue).
            ops.append(
                DataChange(
                    f"INSERT OR IGNORE INTO {name} (code) VALUES ('default');\n"
                    f"INSERT OR IGNORE INTO {name} (code) VALUES ('archive');"
                )
            )
        self.tables.append(t)
        return ops

    def _column(self, t: _Table) -> None:
        rnd, c = self.rnd, self.fresh("c")
        shape = rnd.choice(
            ["text", "text", "bounded", "state", "count", "real", "blob", "any", "unique", "clock"]
            + (["parent"] if len(self.tables) > 1 else [])
        )
        if shape == "text":
            t.columns.append((c, f"{t.type('text')}{rnd.choice(['', ' NOT NULL'])}"))
            t.text_columns.append(c)
        elif shape == "bounded":
            t.columns.append((c, f"{t.type('text')} CHECK (length({c}) <= 40)"))
        elif shape == "state":
            t.columns.append((c, self._state(c, STATES)))
            t.states[c] = STATES
        elif shape == "count":
            t.columns.append((c, f"{t.type('int')} NOT NULL DEFAULT 0 CHECK ({c} >= 0)"))
        elif shape == "real":
            t.columns.append((c, f"{t.type('real')} CHECK ({c} BETWEEN -1000 AND 1000)"))
        elif shape == "blob":
            t.columns.append((c, t.type("blob")))
        elif shape == "any":
            t.columns.append((c, t.type("any")))
        elif shape == "unique":
            t.columns.append((c, f"{t.type('text')} UNIQUE"))
        elif shape == "clock":
            t.columns.append((c, f"{t.type('text')} NOT NULL DEFAULT (strftime('%s', 'now'))"))
        else:
            parent = rnd.choice(self.tables[1:])
            kind = "text" if parent.without_rowid else "int"
            null = rnd.choice(["", " NOT NULL"])
            t.columns.append(
                (
                    c,
                    f"{t.type(kind)}{null} REFERENCES {parent.name} ({parent.key}) "
                    f"ON DELETE {'CASCADE' if null else 'SET NULL'}",
                )
            )

    @staticmethod
    def _state(column: str, values: tuple[str, ...]) -> str:
        listed = ", ".join(f"'{v}'" for v in values)
        return f"TEXT NOT NULL DEFAULT '{values[0]}' CHECK ({column} IN ({listed}))"

    # --- changes to existing tables ---------------------------------------------------------

    def change(self) -> list[Operation]:
        kinds = ["add", "add", "index", "trigger", "view", "backfill", "unique", "rebuild"]
        for kind in self.rnd.sample(kinds, len(kinds)):
            ops = getattr(self, f"_{kind}")()
            if ops:
                return list(ops)
        return self._add()

    def _user_tables(self) -> list[_Table]:
        return self.tables[1:] or self.tables

    def _add(self) -> list[Operation]:
        rnd = self.rnd
        t = rnd.choice(self._user_tables())
        c = self.fresh("a")
        shape = rnd.choice(["null", "default", "check", "fk"] if len(self.tables) > 1 else ["null"])
        if shape == "null":
            definition = t.type(rnd.choice(["text", "int", "real"]))
            if definition == t.type("text"):
                t.text_columns.append(c)
        elif shape == "default":
            definition = f"{t.type('int')} NOT NULL DEFAULT {rnd.randint(-3, 3)}"
        elif shape == "check":
            definition = f"{t.type('text')} NOT NULL DEFAULT '' CHECK (length({c}) <= 64)"
        else:
            parent = rnd.choice(self._user_tables())
            kind = "text" if parent.without_rowid else "int"
            definition = (
                f"{t.type(kind)} REFERENCES {parent.name} ({parent.key}) ON DELETE SET NULL"
            )
        t.columns.append((c, definition))
        return [AddColumn(t.name, f"{c} {definition}")]

    def _index(self) -> list[Operation]:
        t = self.rnd.choice(self._user_tables())
        col = self.rnd.choice([n for n, _ in t.columns[1:]] or [t.key])
        return [CreateIndex(f"CREATE INDEX {self.fresh('ix')} ON {t.name} ({col}, {t.key})")]

    def _unique(self) -> list[Operation]:
        # UNIQUE only on a column this step adds: an old database cannot hold duplicates of it.
        t = self.rnd.choice(self._user_tables())
        c = self.fresh("u")
        t.columns.append((c, t.type("text")))
        return [
            AddColumn(t.name, f"{c} {t.type('text')}"),
            CreateIndex(
                f"CREATE UNIQUE INDEX {self.fresh('ux')} ON {t.name} ({c}) WHERE {c} IS NOT NULL"
            ),
        ]

    def _trigger(self) -> list[Operation]:
        candidates = [t for t in self._user_tables() if t.text_columns]
        if not candidates:
            return []
        t = self.rnd.choice(candidates)
        col = self.rnd.choice(t.text_columns)
        return [
            CreateTrigger(
                f"CREATE TRIGGER {self.fresh('tr')} AFTER UPDATE OF {col} ON {t.name} "
                f"WHEN old.{col} IS NOT new.{col} BEGIN "
                f"INSERT INTO {EVENTS} (what) VALUES ('{t.name}.{col} changed'); END"
            )
        ]

    def _view(self) -> list[Operation]:
        t = self.rnd.choice(self._user_tables())
        cols = ", ".join(n for n, _ in t.columns[: self.rnd.randint(1, len(t.columns))])
        return [CreateView(f"CREATE VIEW {self.fresh('vw')} AS SELECT {cols} FROM {t.name}")]

    def _backfill(self) -> list[Operation]:
        t = self.rnd.choice(self._user_tables())
        c = self.fresh("b")
        source = self.rnd.choice([n for n, _ in t.columns])
        t.columns.append((c, t.type("text")))
        t.text_columns.append(c)
        return [
            AddColumn(t.name, f"{c} {t.type('text')}"),
            DataChange(
                f"UPDATE {t.name} SET {c} = typeof({source}) WHERE {c} IS NULL",
                transforms=[f"{t.name}.{c}"],
                postcondition=f"SELECT {t.key} FROM {t.name} WHERE {c} IS NULL",
            ),
        ]

    def _rebuild(self) -> list[Operation]:
        candidates = [t for t in self._user_tables() if t.states]
        if not candidates:
            return []
        t = self.rnd.choice(candidates)
        col = self.rnd.choice(sorted(t.states))
        wider = (*t.states[col], self.fresh("s"))
        t.states[col] = wider
        t.columns = [(n, self._state(n, wider) if n == col else d) for n, d in t.columns]
        return [RebuildTable(t.name, t.create_sql())]


def synthetic_steps(*, tables: int, versions: int, seed: int = 0) -> Steps:
    """A valid history of ``versions`` steps that creates ``tables`` tables, from ``seed``.

    Table creations are spread evenly over the versions (version 1 creates the audit table
    and at least one more); every step also changes something that already exists.
    """
    if tables < 2:
        raise ValueError(
            f"synthetic_steps: need tables >= 2 (the audit table and one), got {tables}"
        )
    if versions < 1:
        raise ValueError(f"synthetic_steps: need versions >= 1, got {versions}")
    b = _Builder(random.Random(seed))
    created_at = [1 + (i * versions) // (tables - 1) for i in range(tables - 1)]
    steps: list[Step] = []
    number = 2
    for v in range(1, versions + 1):
        ops: list[Operation] = b.create_events() if v == 1 else []
        for _ in range(created_at.count(v)):
            ops += b.create_table(number)
            number += 1
        if v > 1:
            for _ in range(b.rnd.randint(1, 2)):
                ops += b.change()
        steps.append(Step(v, f"synthetic step {v}", ops))
    return Steps(steps, name=f"synthetic-{tables}t-{versions}v-s{seed}")


def fixture_files(workdir: Path, *, tables: int, versions: int, seed: int = 0) -> dict[int, Path]:
    """The populated fixture at every version of a synthetic history, built by the runner's
    ``RunContext`` (as ``certify`` builds them, with the default row count)."""
    from migproof.harness.cases import RunConfig
    from migproof.harness.context import RunContext
    from migproof.harness.engine_target import EngineTarget

    target = EngineTarget(synthetic_steps(tables=tables, versions=versions, seed=seed))
    config = RunConfig(
        spec="tests.synthetic", seed=seed, workdir=workdir, journal_modes=("delete",)
    )
    ctx = RunContext(target, config)
    return {v: ctx.fixture_db(v, "delete") for v in range(1, versions + 1)}


def digests(files: dict[int, Path]) -> dict[int, str]:
    return {v: hashlib.sha256(p.read_bytes()).hexdigest() for v, p in files.items()}
