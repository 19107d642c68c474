"""Waivers: accepted findings, recorded once, so one known difference does not hide new ones.

A team adopting migproof on an old migrator may find a difference it accepts for now (the
column order of a table differs from a fresh install, say). Skipping the whole check would
hide the next finding in the same case too. Instead, ``migproof certify --write-baseline``
records every finding of the run in a baseline file kept in the repository, and later runs
judge each failing case against it:

- every finding of the case is recorded for that case: the case is WAIVED (reported, not
  failed);
- any finding that is not recorded -- a new one, or a recorded one that changed -- fails the
  case, and the detail says which lines are new;
- a recorded case that now passes is reported as stale, so the baseline shrinks as fixes land.

A *finding* is one line of a failing case's detail, stripped, with decimal numbers (timings,
the only run-to-run noise in a seeded run) masked. Findings depend on the seed and the row
count; a baseline records both and is only applied to runs with the same ones.

The file is JSON (the standard library writes it), sorted, one entry per case::

    {"format": 1, "target": "jobqueue", "seed": 0, "rows": 24,
     "waived": {"additive-only[v3->v4]": ["table tasks: columns reordered (...)"]}}
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .cases import CheckResult, Status
from .errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

FORMAT: Final = 1
DEFAULT_NAME: Final = "migproof-baseline.json"
_DECIMAL: Final = re.compile(r"\d+\.\d+")


def findings(detail: str) -> tuple[str, ...]:
    """The lines of a failure's detail that make up its findings, normalised."""
    lines = (_DECIMAL.sub("#", line.strip()) for line in detail.splitlines())
    return tuple(dict.fromkeys(line for line in lines if line))


@dataclass(frozen=True, slots=True)
class Baseline:
    target: str
    seed: int
    rows: int
    waived: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(
                f"baseline {path} does not exist; write one with `migproof certify "
                f"--write-baseline {path}`. Nothing was run."
            ) from None
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot read baseline {path}: {err}. Nothing was run.") from err
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise UsageError(
                f"{path} is not a migproof baseline (format {FORMAT}); rewrite it with "
                "--write-baseline. Nothing was run."
            )
        waived = doc.get("waived", {})
        if not isinstance(waived, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in waived.values()
        ):
            raise UsageError(f"{path}: 'waived' must map case ids to lists of findings")
        return cls(
            str(doc.get("target", "")),
            int(doc.get("seed", 0)),
            int(doc.get("rows", 0)),
            {case: frozenset(lines) for case, lines in waived.items()},
        )

    def save(self, path: Path) -> None:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "target": self.target,
            "seed": self.seed,
            "rows": self.rows,
            "waived": {case: sorted(lines) for case, lines in sorted(self.waived.items())},
        }
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def of(cls, target: str, seed: int, rows: int, results: Iterable[CheckResult]) -> Baseline:
        """Every finding of every failed (or waived) case of a run."""
        waived = {
            r.case.id: frozenset(findings(r.detail))
            for r in results
            if r.status in (Status.FAIL, Status.WAIVED)
        }
        return cls(target, seed, rows, waived)

    def check_applies(self, target: str, seed: int, rows: int, path: Path) -> None:
        """A baseline recorded with another seed or row count would waive nothing reliably."""
        if (self.target, self.seed, self.rows) != (target, seed, rows):
            raise UsageError(
                f"baseline {path} was recorded for {self.target} with --seed {self.seed} "
                f"--rows {self.rows}; this run is {target} with --seed {seed} --rows {rows}. "
                "Run with the baseline's settings, or rewrite it with --write-baseline. "
                "Nothing was run."
            )

    def judge(self, result: CheckResult) -> CheckResult:
        """A failing case whose every finding is recorded becomes WAIVED; otherwise the new
        findings are named. A passing case with an entry says the entry is stale."""
        accepted = self.waived.get(result.case.id)
        if accepted is None:
            return result
        if result.status is Status.PASS:
            note = "baseline entry is stale: the case passes now; rewrite the baseline"
            detail = f"{result.detail}\n{note}" if result.detail else note
            return dataclasses.replace(result, detail=detail)
        if result.status is not Status.FAIL:
            return result
        found = findings(result.detail)
        new = [f for f in found if f not in accepted]
        if not new:
            return dataclasses.replace(
                result,
                status=Status.WAIVED,
                detail=f"waived by the baseline ({len(found)} recorded findings):\n"
                + result.detail,
            )
        return dataclasses.replace(
            result,
            detail="findings not in the baseline (new, or changed since it was written):\n"
            + "\n".join(f"  {f}" for f in new)
            + "\n"
            + result.detail,
        )
