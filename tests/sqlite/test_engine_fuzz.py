"""The seeded fuzz corpus of damaged state files (tests/fuzz_corpus.py), judged on the promises.

For every case: no internal error (exit 70); ``status`` exits with exactly the code ``migrate``
exits with; ``status`` changes, adds and removes nothing; a refusal leaves the folder (file
and sidecars) byte-identical; a file that is not a database is never migrated; a success
leaves a file that passes ``integrity_check`` (with ``--check full``; by default, when it
passed before: the default does not compare the indexes of tables the plan does not write).

The whole corpus (about 1,500 cases, in the default mode and with ``--check full``) runs with
``-m slow``, one test per family and mode; every run runs a slice (each family's every 10th
case, default mode). A failure lists the cases with the line that replays each one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.fuzz_corpus import FAMILIES, Case, ci_slice, corpus, reproduce, run_case

if TYPE_CHECKING:
    from pathlib import Path

CASES = corpus()
SLICE = ci_slice(CASES)


@pytest.fixture(scope="session")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The populated base files, built once per worker."""
    return tmp_path_factory.mktemp("fuzz-bases")


def _problems(cases: list[Case], folder: Path, bases: Path, check: str) -> list[str]:
    out: list[str] = []
    for i, case in enumerate(cases):
        outcome = run_case(case, folder / f"c{i}", bases, check=check)
        out.extend(
            f"{case.id}: {problem}\n    reproduce: {reproduce(case, check)}"
            for problem in outcome.problems()
        )
    return out


def test_the_corpus_is_seeded_and_covers_every_family() -> None:
    assert [c.id for c in corpus()] == [c.id for c in CASES]
    assert {c.family for c in CASES} == set(FAMILIES)
    assert {c.family for c in SLICE} == set(FAMILIES)
    assert 1400 <= len(CASES) <= 1700
    assert len(SLICE) <= len(CASES) // 8


@pytest.mark.parametrize("case", SLICE, ids=lambda c: c.id)
def test_a_slice_of_the_corpus(case: Case, tmp_path: Path, bases: Path) -> None:
    problems = _problems([case], tmp_path, bases, "")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("check", ["", "full"], ids=["default", "full"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_whole_corpus(family: str, check: str, tmp_path: Path, bases: Path) -> None:
    cases = [c for c in CASES if c.family == family]
    problems = _problems(cases, tmp_path, bases, check)
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)
