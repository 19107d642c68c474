"""Broken: step 3 rebuilds ``users`` and forgets to recreate its trigger (sqlite-utils#849).

A fresh install goes through the same steps, so fresh and upgraded agree -- both lost it.
Expected: ``additive-only`` (a trigger present at v2 is gone at v3).
"""

from __future__ import annotations

from ._common import STEPS, USERS_V3, PerStepTarget

_STEPS = {
    **STEPS,
    3: (
        USERS_V3,
        "INSERT INTO users_new (id, email, name) SELECT id, email, name FROM users",
        "DROP TABLE users",
        "ALTER TABLE users_new RENAME TO users",
    ),
}

TARGET = PerStepTarget("broken-rebuild-forgets-trigger", _STEPS)
