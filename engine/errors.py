"""migproof's exceptions: one root, one subclass per decision an operator makes."""

from __future__ import annotations


class MigproofError(Exception):
    """Root of every error migproof raises on purpose."""

    exit_code: int = 1
