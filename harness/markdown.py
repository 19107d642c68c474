"""A certificate as Markdown, fit for a CI job summary (``$GITHUB_STEP_SUMMARY``).

It renders the certificate dictionary -- the same data ``--json`` writes -- so the two
reports can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def render_certificate(cert: Mapping[str, Any]) -> str:
    checks: Sequence[Mapping[str, Any]] = cert.get("checks", [])
    failed = [c for c in checks if c.get("status") == "fail"]
    counts = {s: sum(1 for c in checks if c.get("status") == s) for s in ("pass", "fail", "skip")}
    verdict = str(cert.get("verdict", "?")).upper()
    icon = "✅" if verdict == "PASS" else "❌"
    lines = [
        f"## {icon} migproof certificate: {verdict}",
        "",
        f"**Target** `{cert.get('target')}` · **head** v{cert.get('head')} · **seed** "
        f"{cert.get('seed')} · migproof {cert.get('migproof_version')} · SQLite "
        f"{cert.get('sqlite_version')} · Python {cert.get('python_version')}",
        "",
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped",
        "",
        "| check | from | to | status |",
        "|---|---|---|---|",
    ]
    for c in checks:
        status = {"pass": "pass", "fail": "**FAIL**", "skip": "skip"}.get(str(c.get("status")), "?")
        lines.append(
            f"| {_cell(c.get('check'))} | {_v(c.get('from_version'))} "
            f"| {_v(c.get('to_version'))} | {status} |"
        )
    if failed:
        lines += ["", "### Failures", ""]
        for c in failed:
            lines += [
                f"**{_cell(c.get('check'))}** "
                f"v{_v(c.get('from_version'))} → v{_v(c.get('to_version'))}",
                "",
                "```text",
                str(c.get("detail", "")).strip(),
                "```",
                "Reproduce locally:",
                "```sh",
                str(c.get("reproduce", "")),
                "```",
                "",
            ]
    return "\n".join(lines) + "\n"


def _v(v: object) -> str:
    return "-" if v is None else str(v)


def _cell(v: object) -> str:
    return str(v).replace("|", "\\|")
