"""Broken: step 3 rebuilds ``users`` (12-step style) instead of ALTER, and the copy leaves
out ``name``: same schema on every path, every row still there, one column's values gone.

Expected: ``data-preservation`` names the table, the row and the column.
"""

from __future__ import annotations

from ._common import STEPS, USERS_V3, PerStepTarget

_STEPS = {
    **STEPS,
    3: (
        USERS_V3,
        "INSERT INTO users_new (id, email) SELECT id, email FROM users",
        "DROP TABLE users",
        "ALTER TABLE users_new RENAME TO users",
        STEPS[2][2],  # the trigger went with the old table; recreated
    ),
}

TARGET = PerStepTarget("broken-rebuild-loses-values", _STEPS)
