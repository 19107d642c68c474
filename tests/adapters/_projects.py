"""The example projects under tests/projects, one per tool, and their targets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from migproof.adapters.alembic import AlembicTarget
from migproof.adapters.sqlite_utils import SqliteUtilsTarget, from_config
from migproof.adapters.yoyo import YoyoTarget

PROJECTS: Final = Path(__file__).resolve().parents[1] / "projects"
ALEMBIC: Final = PROJECTS / "alembic_app"
ALEMBIC_LOCKED: Final = PROJECTS / "alembic_app_locked"
YOYO: Final = PROJECTS / "yoyo_app"
SQLITE_UTILS: Final = PROJECTS / "sqlite_utils_app"


def alembic(project: Path = ALEMBIC) -> AlembicTarget:
    return AlembicTarget(project / "alembic.ini")


def yoyo(*, lock_timeout: float = 10.0) -> YoyoTarget:
    return YoyoTarget(YOYO / "migrations", lock_timeout=lock_timeout)


def sqlite_utils() -> SqliteUtilsTarget:
    if str(SQLITE_UTILS) not in sys.path:
        sys.path.insert(0, str(SQLITE_UTILS))  # the project's package, as the plugin does
    return from_config("app.migrations:MIGRATIONS")
