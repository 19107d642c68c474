"""Correct: default settings ensured with ``INSERT OR IGNORE`` on every start; a user's edit
of a default survives restarts and upgrades."""

from __future__ import annotations

from .seeds_common import SETTINGS_STEPS, UserVersionTarget, ensure_defaults

TARGET = UserVersionTarget("seeds-or-ignore", SETTINGS_STEPS, on_start=ensure_defaults("IGNORE"))
