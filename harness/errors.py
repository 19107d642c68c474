"""The harness's own refusal: a command line or project declaration that cannot be used."""

from __future__ import annotations

from migproof.engine.errors import MigproofError


class UsageError(MigproofError):
    """The command line or ``[tool.migproof]`` names something that cannot be used (a SPEC, a
    check, a case, a declaration). Exit 2, before anything runs."""

    exit_code = 2
