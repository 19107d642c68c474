"""The engine's subcommands (``migrate``, ``status``, ``plan``), thin over the library."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the engine's subcommands to the ``migproof`` parser."""
