"""The declared history run on an empty in-memory database: the schema after every operation.

The core compares a file with these schemas, so "what version N looks like" is defined by the
declarations themselves, as SQLite resolves them, never by a second hand-written model that
could drift from the steps (CONTEXT.md section 1, item 7). Built once per ``Steps`` object and
cached; a declaration whose SQL does not run fails here, before any file is opened.
"""

from __future__ import annotations

import functools
import sqlite3
from weakref import WeakKeyDictionary

from .bookkeeping import INTERNAL_DDL
from .core import OpEffect, Reference
from .errors import InvalidDeclarationError
from .introspect import read_schema
from .schema import Schema
from .steps import DataChange, Steps

_CACHE: WeakKeyDictionary[Steps, Reference] = WeakKeyDictionary()


def reference_for(steps: Steps) -> Reference:
    cached = _CACHE.get(steps)
    if cached is None:
        cached = _CACHE[steps] = _build(steps)
    return cached


def _build(steps: Steps) -> Reference:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        versions: list[Schema] = [Schema()]
        effects: list[tuple[OpEffect, ...]] = []
        before = Schema()
        for step in steps:
            per_op: list[OpEffect] = []
            for rop in steps.resolved(step.version):
                where = f"step {step.version} ({step.name}), {rop.op.describe()}"
                for sql in rop.statements:
                    try:
                        conn.execute(sql)
                    except sqlite3.Error as err:
                        raise InvalidDeclarationError(
                            source=steps.name, reason=f"{where}: {err} in {sql[:80]!r}"
                        ) from err
                if isinstance(rop.op, DataChange) and rop.op.postcondition:
                    try:
                        conn.execute(rop.op.postcondition).fetchall()
                    except sqlite3.Error as err:
                        raise InvalidDeclarationError(
                            source=steps.name, reason=f"{where}: postcondition: {err}"
                        ) from err
                after = read_schema(conn)
                per_op.append(OpEffect(before, after))
                before = after
            versions.append(before)
            effects.append(tuple(per_op))
    finally:
        conn.close()
    return Reference(tuple(versions), tuple(effects), internal_schema())


@functools.cache
def internal_schema() -> Schema:
    """The bookkeeping tables as ``INTERNAL_DDL`` creates them (the shape files must have)."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for sql in INTERNAL_DDL.values():
            conn.execute(sql)
        return read_schema(conn)
    finally:
        conn.close()
