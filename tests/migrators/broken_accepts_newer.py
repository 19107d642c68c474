"""Broken: a DB from a newer release (version > head) is opened as if it were current.

Expected: ``newer-refused``.
"""

from __future__ import annotations

from ._common import PerStepTarget

TARGET = PerStepTarget("broken-accepts-newer", refuse=False)
