"""Correct: one transaction per step, the version stamped inside it, re-read under the lock."""

from __future__ import annotations

from ._common import PerStepTarget

TARGET = PerStepTarget("correct-per-step")
