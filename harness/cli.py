"""The harness's subcommands (``certify``, ``freeze``); each imports its library lazily."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the harness's subcommands to the ``migproof`` parser."""
