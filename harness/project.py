"""The project a run certifies: its ``[tool.migproof]`` table and the folder it lives in.

``certify`` and ``freeze`` read ``./pyproject.toml``; the pytest plugin reads the
``pyproject.toml`` it collected. Whatever a project declares beside its SPEC -- intended
changes per step (``[tool.migproof.changes.N]``), what its columns' values look like, example
rows -- is read from here by the module that owns that declaration, so one table travels with
the run instead of one field per key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Project:
    """``[tool.migproof]`` as read (``table``) and the folder of its pyproject.toml (``root``).

    A run without a pyproject.toml (a SPEC given on the command line in a bare folder) has an
    empty table; every declaration is then absent.
    """

    root: Path = Path()
    # A plain dict (read only by convention): the run's config is pickled into worker processes.
    table: Mapping[str, Any] = field(default_factory=dict)

    def section(self, key: str) -> Mapping[str, Any]:
        """A sub-table (``changes``, ``columns``...), empty when absent or not a table."""
        found = self.table.get(key)
        return found if isinstance(found, Mapping) else {}


NO_PROJECT = Project()
