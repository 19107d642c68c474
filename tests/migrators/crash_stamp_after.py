"""The ``stamp_after`` style of ``crash_base.Migrator`` as a target (see crash_base for what it does)."""

from __future__ import annotations

from .crash_base import Migrator

TARGET = Migrator("stamp_after")
