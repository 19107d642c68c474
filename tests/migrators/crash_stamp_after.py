"""The ``stamp_after`` style of ``crash_base.Migrator`` as a target."""

from __future__ import annotations

from .crash_base import Migrator

TARGET = Migrator("stamp_after")
