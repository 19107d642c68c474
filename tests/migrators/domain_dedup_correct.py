"""Correct: keeps one item per canonical ref first, then rewrites the refs."""

from __future__ import annotations

from .domain_common import DEDUPLICATE, REWRITE, target

STEP2 = (DEDUPLICATE, REWRITE)
TARGET = target("domain-dedup-correct", STEP2, with_refs=False)
TARGET_WITH_REFS = target("domain-dedup-correct", STEP2, with_refs=True)
