"""A certificate as Markdown, fit for a CI job summary (``$GITHUB_STEP_SUMMARY``).

It renders the certificate dictionary -- the same data ``--json`` writes -- so the two
reports can never disagree, and it counts cases per check exactly as the command line's
summary does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_ICONS = {"PASS": "✅", "FAIL": "❌", "SKIPPED": "⚠️"}


def render_certificate(cert: Mapping[str, Any]) -> str:
    counts: Mapping[str, int] = cert.get("counts", {})
    per_check: Sequence[Mapping[str, Any]] = cert.get("checks", [])
    cases: Sequence[Mapping[str, Any]] = cert.get("cases", [])
    verdict = str(cert.get("verdict", "?")).upper()
    title = "NOT CERTIFIED (every case skipped)" if verdict == "SKIPPED" else verdict
    partial = cert.get("partial_because") or []
    settings: Mapping[str, Any] = cert.get("settings", {})
    lines = [
        f"## {_ICONS.get(verdict, '?')} migproof certificate: {title}",
        "",
        f"**Target** `{cert.get('target')}` · **head** v{cert.get('head')} · **seed** "
        f"{settings.get('seed')} · **fingerprint** `{cert.get('fingerprint')}` · migproof "
        f"{cert.get('migproof_version')} · SQLite {cert.get('sqlite_version')} · Python "
        f"{cert.get('python_version')}",
        "",
    ]
    if partial:
        lines += [f"**Partial run**: {'; '.join(map(str, partial))}.", ""]
    lines += [
        f"{counts.get('cases', 0)} cases: {counts.get('pass', 0)} passed, "
        f"{counts.get('fail', 0)} failed, {counts.get('skip', 0)} skipped"
        + (f", {counts['waived']} waived by the baseline" if counts.get("waived") else ""),
        "",
        "| check | pass | fail | skip | waived | time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in per_check:
        name = _cell(row.get("check"))
        if row.get("fail"):
            name = f"**{name}**"
        lines.append(
            f"| {name} | {row.get('pass', 0)} | {row.get('fail', 0)} | {row.get('skip', 0)} "
            f"| {row.get('waived', 0)} | {float(row.get('time', 0.0)):.1f} s |"
        )
    skipped = [c for c in cases if c.get("status") == "skip"]
    if skipped:
        reasons: dict[tuple[str, str], int] = {}
        for c in skipped:
            reason = (str(c.get("detail") or "no reason given").splitlines() or [""])[0]
            key = (str(c.get("check")), reason)
            reasons[key] = reasons.get(key, 0) + 1
        lines += ["", "### Skipped (not checked)", ""]
        lines += [
            f"- **{_cell(check)}** ({n}): {_cell(why)}" for (check, why), n in reasons.items()
        ]
    failed = [c for c in cases if c.get("status") == "fail"]
    if failed:
        lines += ["", "### Failures", ""]
        for c in failed:
            lines += [
                f"**{_cell(c.get('id'))}**",
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


def _cell(v: object) -> str:
    return str(v).replace("|", "\\|")
