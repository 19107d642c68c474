"""Broken: rewrites refs into canonical form *before* de-duplicating, so two spellings of one
issue collide on the UNIQUE ref (``fresh-equivalence``/``step-by-step``: the upgrade raises
"UNIQUE constraint failed"). Caught only with the user's strategy for items.ref
(``TARGET_WITH_REFS``); ``TARGET`` passes vacuously."""

from __future__ import annotations

from .domain_common import DEDUPLICATE, REWRITE, target

STEP2 = (REWRITE, DEDUPLICATE)
TARGET = target("domain-dedup-wrong", STEP2, with_refs=False)
TARGET_WITH_REFS = target("domain-dedup-wrong", STEP2, with_refs=True)
