from __future__ import annotations

from typing import Any

from migproof.harness.markdown import render_certificate


def _cert(**over: Any) -> dict[str, Any]:
    cert: dict[str, Any] = {
        "verdict": "fail",
        "partial": False,
        "partial_because": [],
        "target": "jobqueue",
        "head": 3,
        "fingerprint": "0.1.0:abc",
        "settings": {"seed": 7},
        "counts": {"cases": 3, "pass": 1, "fail": 1, "skip": 1},
        "checks": [
            {"check": "fresh-equivalence", "pass": 1, "fail": 0, "skip": 0, "time": 0.5},
            {"check": "drift", "pass": 0, "fail": 1, "skip": 0, "time": 0.2},
            {"check": "race", "pass": 0, "fail": 0, "skip": 1, "time": 0.0},
        ],
        "cases": [
            {
                "id": "fresh-equivalence[v1->v3,delete]",
                "check": "fresh-equivalence",
                "status": "pass",
            },
            {
                "id": "drift[v2->v3]",
                "check": "drift",
                "status": "fail",
                "detail": "column jobs.prio kept type TEXT",
                "reproduce": "migproof certify x:STEPS --seed 7 --only drift --case 'drift[v2->v3]'",
            },
            {
                "id": "race[v0->v3,delete]",
                "check": "race",
                "status": "skip",
                "detail": "cannot see the target's writes; give it ledger(db_path)",
            },
        ],
    }
    cert.update(over)
    return cert


def test_markdown_counts_cases_per_check_as_the_command_line_does() -> None:
    md = render_certificate(_cert())
    assert "FAIL" in md
    assert "3 cases: 1 passed, 1 failed, 1 skipped" in md
    assert "| fresh-equivalence | 1 | 0 | 0 | 0 | 0.5 s |" in md
    assert "| **drift** | 0 | 1 | 0 | 0 | 0.2 s |" in md
    assert "column jobs.prio kept type TEXT" in md
    assert "--case 'drift[v2->v3]'" in md


def test_markdown_lists_skips_with_their_reason_and_never_says_pass_when_nothing_ran() -> None:
    md = render_certificate(_cert())
    assert "- **race** (1): cannot see the target's writes; give it ledger(db_path)" in md
    nothing = render_certificate(
        _cert(verdict="skipped", counts={"cases": 1, "pass": 0, "fail": 0, "skip": 1})
    )
    assert "NOT CERTIFIED" in nothing
    assert "PASS" not in nothing


def test_markdown_says_when_a_run_is_partial() -> None:
    md = render_certificate(_cert(verdict="pass", partial=True, partial_because=["only drift"]))
    assert "**Partial run**: only drift." in md
