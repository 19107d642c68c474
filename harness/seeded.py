"""One draw from a Hypothesis strategy, decided entirely by a seed.

Fixture files must be byte-identical for the same seed, in the CLI, under pytest, in a
crash-matrix worker. Hypothesis's public ways to get a value do not give that:
``strategy.example()`` cannot be seeded; ``find`` and ``@given`` with ``@seed`` run a test
loop whose first input is always the simplest one (an empty database) and whose size limit
of 8K choices a populated database overruns. So the harness feeds a seeded ``random.Random``
straight into a ``ConjectureData`` and draws once: no loop, no shrinking, no example
database, the very strategies a property test uses.

One more source of variation is closed here. Hypothesis mixes into its draws constants it
harvests from whatever *local* modules are imported at that moment (a pytest session imports
more than the CLI), so the same seed could give different data in two processes. The
provider below draws only from Hypothesis's fixed, global pool of interesting constants.

These are Hypothesis internals (``ConjectureData``, ``BuildContext``, the provider); the
surface used is small and ``tests/unit/test_harness_seeded.py`` pins its behaviour.
"""

from __future__ import annotations

import hashlib
import inspect
import random
from typing import TYPE_CHECKING, Any, Final, TypeVar

from hypothesis.control import BuildContext
from hypothesis.errors import StopTest
from hypothesis.internal.conjecture import providers
from hypothesis.internal.conjecture.choice import choice_constraints_key
from hypothesis.internal.conjecture.data import ConjectureData

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

T = TypeVar("T")

MAX_CHOICES: Final = (
    10_000_000  # a populated database takes tens of thousands; Hypothesis's own cap is 8K
)


def derive_seed(seed: int, *labels: object) -> int:
    """A sub-seed for one purpose (``derive_seed(7, "fixture", 3)``), stable across processes."""
    text = ":".join([str(seed), *(str(x) for x in labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def draw(strategy: SearchStrategy[T], seed: int) -> T:
    """The value ``strategy`` gives when every random choice comes from ``Random(seed)``."""
    for attempt in range(20):
        data = ConjectureData(**_data_kwargs(random.Random(derive_seed(seed, "attempt", attempt))))
        try:
            with BuildContext(data, is_final=True, wrapped_test=_no_test):
                return data.draw(strategy)
        except StopTest:
            continue  # a filter gave up on this stream; the next attempt is just as seeded
    raise RuntimeError(
        f"could not draw from {strategy!r} with seed {seed} (every attempt was rejected)"
    )


def _no_test() -> None:  # BuildContext wants the test it serves; there is none
    return None


def _data_kwargs(rnd: random.Random) -> dict[str, Any]:
    params = inspect.signature(ConjectureData.__init__).parameters
    kwargs: dict[str, Any] = {"random": rnd}
    if "max_choices" in params:
        kwargs["max_choices"] = MAX_CHOICES
    if "provider" in params:
        kwargs["provider"] = _provider_class()
    return kwargs


_PROVIDER: type | None = None


def _provider_class() -> type:
    global _PROVIDER  # noqa: PLW0603 - built once, on first use
    if _PROVIDER is not None:
        return _PROVIDER
    base = providers.HypothesisProvider
    if not hasattr(base, "_maybe_draw_constant"):
        _PROVIDER = base
        return base
    global_constants = getattr(providers, "GLOBAL_CONSTANTS", None)
    permitted = getattr(providers, "choice_permitted", None)
    pools: dict[tuple[object, ...], tuple[object, ...]] = {}

    def _maybe_draw_constant(
        self: Any, choice_type: Any, constraints: Any, *, p: float = 0.05
    ) -> object:
        if global_constants is None or permitted is None or self._random.random() > p:
            return None
        key = (choice_type, choice_constraints_key(choice_type, constraints))
        pool = pools.get(key)
        if pool is None:
            pool = tuple(
                c for c in global_constants.set_for_type(choice_type) if permitted(c, constraints)
            )
            pools[key] = pool
        return self._random.choice(pool) if pool else None

    _PROVIDER = type("SeededProvider", (base,), {"_maybe_draw_constant": _maybe_draw_constant})
    return _PROVIDER
