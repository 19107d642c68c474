"""Broken: step 3 also drops ``users.name`` (both paths agree, so fresh-equivalence passes).

Expected: ``additive-only`` names the removed column (and data-preservation loses its values).
"""

from __future__ import annotations

from ._common import STEPS, PerStepTarget

_STEPS = {**STEPS, 3: (*STEPS[3], "ALTER TABLE users DROP COLUMN name")}

TARGET = PerStepTarget("broken-drops-column", _STEPS)
