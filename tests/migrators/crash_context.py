"""A minimal ``Context`` for the crash tests, beside the runner's ``RunContext``.

The crash tests' expectations (which crash points fail, with which rows) are written against
these tiny hand-rolled fixtures, not the runner's generated ones.

Reference DBs are ``migrate(empty, version)``; fixtures add a few seeded rows to every user
table (a poor man's version of the harness's generated data, enough for backfills to matter).
Picklable, and safe to share between processes once ``prepare()`` has built every file.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from migproof.engine.introspect import read_schema
from migproof.harness.cases import RunConfig

if TYPE_CHECKING:
    from migproof.engine.schema import Schema
    from migproof.harness.target import Target

ROWS = 3


@dataclass(frozen=True)
class LocalContext:
    target: Target
    config: RunConfig

    @classmethod
    def make(cls, target: Target, workdir: Path, **config: object) -> LocalContext:
        cfg = RunConfig(
            spec=f"test:{target.name}", seed=int(str(config.pop("seed", 1))), workdir=workdir
        )
        if config:
            from dataclasses import replace

            cfg = replace(cfg, **config)  # type: ignore[arg-type]
        return cls(target, cfg)

    def scratch(self, label: str) -> Path:
        root = self.config.workdir / "scratch"
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root))

    def reference_db(self, version: int, journal_mode: str) -> Path:
        path = self.config.workdir / "ref" / journal_mode / f"v{version}.db"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            if journal_mode == "wal":
                conn = sqlite3.connect(tmp)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.close()
            if version:
                self.target.migrate(str(tmp), version)
            if tmp.exists():
                tmp.rename(path)
        return path

    def fixture_db(self, version: int, journal_mode: str) -> Path:
        path = self.config.workdir / "fixture" / journal_mode / f"v{version}.db"
        if not path.exists():
            ref = self.reference_db(version, journal_mode)
            path.parent.mkdir(parents=True, exist_ok=True)
            if ref.exists():
                tmp = path.with_suffix(".tmp")
                shutil.copyfile(ref, tmp)
                populate(tmp, random.Random(f"{self.config.seed}:{version}:{journal_mode}"))
                tmp.rename(path)
        return path

    def schema_of(self, path: Path) -> Schema:
        conn = sqlite3.connect(path)
        try:
            return read_schema(conn)
        finally:
            conn.close()

    def prepare(self, versions: range) -> None:
        for mode in self.config.journal_modes:
            for v in versions:
                self.fixture_db(v, mode)


def populate(path: Path, rng: random.Random) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        tables = [
            str(n)
            for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            cols = [
                (str(name), str(ctype).upper(), int(pk))
                for _cid, name, ctype, _nn, _d, pk in conn.execute(f'PRAGMA table_info("{table}")')
            ]
            filled = [(n, t) for n, t, pk in cols if not (pk == 1 and t == "INTEGER")]
            for _ in range(ROWS):
                values = [_value(t, rng) for _n, t in filled]
                names = ", ".join(f'"{n}"' for n, _t in filled)
                marks = ", ".join("?" for _ in filled)
                conn.execute(f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({marks})', values)
    finally:
        conn.close()


def _value(decl: str, rng: random.Random) -> object:
    if "INT" in decl:
        return rng.randint(-5, 99)
    if any(t in decl for t in ("CHAR", "CLOB", "TEXT")):
        return f"s{rng.randint(0, 999)}"
    if any(t in decl for t in ("REAL", "FLOA", "DOUB")):
        return rng.random()
    return rng.randint(0, 9)
