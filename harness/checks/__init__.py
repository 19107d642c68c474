"""Every check, in the order certify runs them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from migproof.harness.errors import UsageError

from .additive_only import CHECK as ADDITIVE_ONLY
from .corrupt_refused import CHECK as CORRUPT_REFUSED
from .crash_recovery import CHECK as CRASH_RECOVERY
from .data_preservation import CHECK as DATA_PRESERVATION
from .drift import CHECK as DRIFT
from .fresh_equivalence import CHECK as FRESH_EQUIVALENCE
from .frozen import FROZEN_FIXTURES, RELEASED_STEPS
from .idempotent_rerun import CHECK as IDEMPOTENT_RERUN
from .integrity import CHECK as INTEGRITY
from .newer_refused import CHECK as NEWER_REFUSED
from .power_loss import CHECK as POWER_LOSS
from .race import CHECK as RACE
from .step_by_step import CHECK as STEP_BY_STEP

if TYPE_CHECKING:
    from collections.abc import Sequence

    from migproof.harness.cases import Check

ALL_CHECKS: tuple[Check, ...] = (
    FRESH_EQUIVALENCE,
    STEP_BY_STEP,
    DATA_PRESERVATION,
    IDEMPOTENT_RERUN,
    ADDITIVE_ONLY,
    DRIFT,
    NEWER_REFUSED,
    CORRUPT_REFUSED,
    INTEGRITY,
    CRASH_RECOVERY,
    POWER_LOSS,
    RACE,
    FROZEN_FIXTURES,
    RELEASED_STEPS,
)


def by_name() -> dict[str, Check]:
    return {c.name: c for c in ALL_CHECKS}


def select(names: Sequence[str] | None) -> tuple[Check, ...]:
    """The named checks in run order (all when ``names`` is None); unknown names: usage error."""
    if not names:
        return ALL_CHECKS
    known = by_name()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"unknown check {', '.join(repr(n) for n in unknown)}; "
            f"the checks are: {', '.join(known)}"
        )
    wanted = set(names)
    return tuple(c for c in ALL_CHECKS if c.name in wanted)


__all__ = ["ALL_CHECKS", "by_name", "select"]
