from __future__ import annotations

import pytest
from migproof.harness import lockfile
from migproof.harness.lockfile import Problem, Released

STEPS = [Released(1, "create_jobs", "a" * 64), Released(2, "add_priority", "b" * 64)]


def test_round_trip_and_a_clean_verify() -> None:
    entries = lockfile.append((), STEPS)
    assert lockfile.parse(lockfile.render(entries)) == entries
    assert lockfile.verify(entries, STEPS) == ()


def test_crlf_checkout_of_the_lock_file_is_not_a_change() -> None:
    text = lockfile.render(lockfile.append((), STEPS)).replace("\n", "\r\n")
    assert lockfile.verify(lockfile.parse(text), STEPS) == ()


def test_append_records_only_newer_steps_and_keeps_the_chain() -> None:
    first = lockfile.append((), STEPS[:1])
    both = lockfile.append(first, STEPS)
    assert both[0] == first[0]
    assert both == lockfile.append((), STEPS)


def test_an_edited_released_step_is_named() -> None:
    entries = lockfile.append((), STEPS)
    edited = [STEPS[0], Released(2, "add_priority", "c" * 64)]
    (problem,) = lockfile.verify(entries, edited)
    assert problem.problem is Problem.CHANGED
    assert problem.version == 2
    assert "add_priority" in problem.message


def test_a_removed_released_step_is_reported() -> None:
    entries = lockfile.append((), STEPS)
    (problem,) = lockfile.verify(entries, STEPS[:1])
    assert problem.problem is Problem.MISSING


def test_an_unreleased_step_may_change_freely() -> None:
    entries = lockfile.append((), STEPS[:1])
    assert lockfile.verify(entries, [STEPS[0], Released(2, "x", "d" * 64)]) == ()


def test_a_hand_edited_lock_file_breaks_the_chain() -> None:
    text = lockfile.render(lockfile.append((), STEPS))
    tampered = text.replace("a" * 64, "e" * 64)
    problems = lockfile.verify(
        lockfile.parse(tampered), [Released(1, "create_jobs", "e" * 64), STEPS[1]]
    )
    assert [p.problem for p in problems] == [Problem.BROKEN_CHAIN]


def test_a_malformed_line_is_a_clear_error() -> None:
    with pytest.raises(lockfile.LockFileError, match="line 3"):
        lockfile.parse(lockfile.HEADER + "v1 oops\n")
