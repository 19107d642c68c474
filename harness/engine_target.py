"""The engine's declared ``Steps`` as a target, with every optional capability filled in.

Written against the engine's public API (``migproof.engine``): ``migrate(path, steps, *,
to_version=None, clock=...)``, ``read_version``, ``read_ledger``, ``INTERNAL_TABLES``, ``Steps``
with ``head``/``name``/``min_supported`` and ``Step`` with ``version``/``name``/``checksum`` and
the declarations ``rebuilds``/``transforms``/``postconditions``. ``journal_mode`` is left at None
so the engine keeps the mode of the file the harness prepared.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from migproof.engine.errors import LockTimeoutError, MigproofError

from migproof import engine

from .declared import DeclaredChanges

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


class FixedClock:
    """The ledger's clock under certification: always the same instant, every step 0 ms.

    The engine stamps each ledger row with when it ran and how long it took. Under the
    harness those are the only bytes that differ between two runs from one seed, so fixture
    files are byte-identical only with a fixed clock. Deadlines (busy timeout, preflight)
    never read this clock.
    """

    def now(self) -> datetime:
        return datetime(2000, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0


FIXED_CLOCK: Final = FixedClock()


def is_engine_steps(obj: object) -> bool:
    return isinstance(obj, engine.Steps)


class EngineTarget:
    """``Target`` over the engine: ``migrate`` runs ``migproof.engine.migrate(path, steps)``."""

    refusal_error: type[BaseException] = MigproofError
    # The race check's yardstick for "waited, then refused": the engine's own lock-timeout
    # refusal, raised no sooner than its busy timeout (migrate()'s default, 5 s).
    lock_timeout_errors: tuple[type[BaseException], ...] = (LockTimeoutError,)
    lock_timeout: float = 5.0
    # It commits with synchronous=EXTRA (engine/script.py): a returned migration is on disk.
    durable: bool = True

    def __init__(self, steps: Any) -> None:
        self.steps = steps
        self.name: str = str(steps.name)
        self.head: int = int(steps.head)
        self.min_supported: int = int(steps.min_supported)
        self.internal_tables: frozenset[str] = frozenset(
            str(n).lower() for n in engine.INTERNAL_TABLES
        )
        self._by_version = {int(s.version): s for s in steps}

    def __repr__(self) -> str:
        return f"EngineTarget({self.name!r}, head={self.head})"

    def migrate(self, db_path: str, target: int | None = None) -> None:
        engine.migrate(db_path, self.steps, to_version=target, clock=FIXED_CLOCK)

    def version(self, db_path: str) -> int:
        return int(engine.read_version(db_path))

    def ledger(self, db_path: str) -> Sequence[int]:
        return tuple(int(e.version) for e in engine.read_ledger(db_path))

    def declared_changes(self, version: int) -> DeclaredChanges:
        step = self._by_version.get(version)
        if step is None:
            return DeclaredChanges()
        return DeclaredChanges(
            rebuilds=frozenset(_lower(getattr(step, "rebuilds", ()))),
            transforms=frozenset(_lower(getattr(step, "transforms", ()))),
            postconditions=tuple(str(p) for p in getattr(step, "postconditions", ()) or ()),
        )

    def released_steps(self) -> Sequence[tuple[int, str, str]]:
        return [(int(s.version), str(s.name), str(s.checksum)) for s in self.steps]


def _lower(names: Iterable[object] | None) -> Iterable[str]:
    return (str(n).lower() for n in (names or ()))
