from __future__ import annotations

from migproof.harness.markdown import render_certificate


def test_markdown_lists_every_case_and_each_failure_with_its_reproduction() -> None:
    cert = {
        "verdict": "fail",
        "target": "jobqueue",
        "head": 3,
        "seed": 7,
        "checks": [
            {"check": "fresh-equivalence", "status": "pass", "from_version": 1, "to_version": 3},
            {
                "check": "drift",
                "status": "fail",
                "from_version": 2,
                "to_version": 3,
                "detail": "column jobs.prio kept type TEXT",
                "reproduce": "migproof certify x:STEPS --seed 7 --only drift --case 'drift[v2->v3]'",
            },
        ],
    }
    md = render_certificate(cert)
    assert "FAIL" in md
    assert "| fresh-equivalence | 1 | 3 | pass |" in md
    assert "| drift | 2 | 3 | **FAIL** |" in md
    assert "column jobs.prio kept type TEXT" in md
    assert "--case 'drift[v2->v3]'" in md
    assert "1 passed, 1 failed, 0 skipped" in md
