"""Broken: default settings "ensured" with ``INSERT OR REPLACE`` on every start, which resets
any default the user edited. Only a fixture that edits the seeded rows shows it:
``idempotent-rerun`` (a restart at head changes data) and ``data-preservation`` (an upgrade
loses the user's value)."""

from __future__ import annotations

from .seeds_common import SETTINGS_STEPS, UserVersionTarget, ensure_defaults

TARGET = UserVersionTarget("seeds-or-replace", SETTINGS_STEPS, on_start=ensure_defaults("REPLACE"))
