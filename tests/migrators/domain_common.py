"""Reference values rewritten into a canonical form, then de-duplicated: a data step that
misbehaves only on rows of a particular shape.

v1: ``items`` with a UNIQUE ``ref``, as users typed it: ``gh:owner/name#12`` or
``https://github.com/owner/name/issues/12``. v2 rewrites every ref into
``github.com:owner/name#12`` and keeps one item per canonical ref. Two refs that differ as
typed but name the same issue must be merged *before* the rewrite, or the rewrite makes two
equal refs and the UNIQUE constraint refuses it (``domain_dedup_wrong``).

Generated text never looks like a reference, so without domain data the rewrite touches no
row and both twins pass: ``REFS`` is the user's strategy that makes the difference.
"""

from __future__ import annotations

from typing import Final

import hypothesis.strategies as st

from .seeds_common import UserVersionTarget

CANONICAL: Final = (
    "CASE WHEN ref LIKE 'gh:%' THEN 'github.com:' || substr(ref, 4) "
    "WHEN ref LIKE 'https://github.com/%/issues/%' "
    "THEN 'github.com:' || replace(substr(ref, 20), '/issues/', '#') ELSE ref END"
)
TYPED: Final = "ref LIKE 'gh:%' OR ref LIKE 'https://github.com/%/issues/%'"
REWRITE: Final = f"UPDATE items SET ref = {CANONICAL} WHERE {TYPED}"
DEDUPLICATE: Final = (
    f"DELETE FROM items WHERE id NOT IN (SELECT min(id) FROM items GROUP BY {CANONICAL})"
)
V1: Final = ("CREATE TABLE items (id INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE, title TEXT)",)


def _typed(owner: str, name: str, number: int, url: bool) -> str:
    if url:
        return f"https://github.com/{owner}/{name}/issues/{number}"
    return f"gh:{owner}/{name}#{number}"


# The user's strategy for items.ref: both spellings over a small space of issues, so two rows
# often name the same issue differently.
REFS: Final = st.builds(
    _typed,
    st.sampled_from(("octo", "cat")),
    st.sampled_from(("app", "lib")),
    st.integers(1, 3),
    st.booleans(),
)


class WithRefs(UserVersionTarget):
    """The same migrator, with the user's domain data: the ``column_values`` capability."""

    column_values: Final = {"items.ref": REFS}


def target(name: str, step2: tuple[str, ...], *, with_refs: bool) -> UserVersionTarget:
    return (WithRefs if with_refs else UserVersionTarget)(name, {1: V1, 2: step2})
