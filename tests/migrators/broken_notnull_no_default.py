"""Broken: step 3 adds ``users.status TEXT NOT NULL`` without a default.

SQLite accepts that on an empty table (so a test on a fresh DB passes) and refuses it once
the table has rows. Expected: ``fresh-equivalence`` (and ``step-by-step``) on populated fixtures.
"""

from __future__ import annotations

from ._common import STEPS, PerStepTarget

_STEPS = {**STEPS, 3: ("ALTER TABLE users ADD COLUMN status TEXT NOT NULL",)}

TARGET = PerStepTarget("broken-notnull-no-default", _STEPS)
