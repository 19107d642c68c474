"""migproof's pytest plugin (registered through the ``pytest11`` entry point).

Kept light at import: pytest loads it in every session of an environment where migproof is
installed, so it imports nothing heavy until a migproof option or fixture is used.
"""

from __future__ import annotations
