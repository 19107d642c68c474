"""Domain data (column values, example rows) and edited seeded rows, proved on hand-written
migrators through the certify runner."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import hypothesis.strategies as st
import pytest
from migproof.harness.cases import RunConfig, Status
from migproof.harness.certify import Report, Selection, run
from migproof.harness.checks import ALL_CHECKS, by_name
from migproof.harness.context import RunContext
from migproof.harness.domain import examples_of
from migproof.harness.errors import UsageError
from migproof.harness.project import NO_PROJECT, Project

from tests.migrators import (
    domain_dedup_correct,
    domain_dedup_wrong,
    seeds_or_ignore,
    seeds_or_replace,
)
from tests.migrators.domain_common import REFS, WithRefs
from tests.migrators.seeds_common import DEFAULTS

if TYPE_CHECKING:
    from migproof.harness.target import Target

ROOT = Path(__file__).parents[2]
# The upgrade checks; data-preservation, which needs the dedup declared, has tests of its own.
UPGRADE_CHECKS = ("fresh-equivalence", "step-by-step", "idempotent-rerun", "integrity")


def project(**table: Any) -> Project:
    return Project(ROOT, MappingProxyType(table))


def certify(
    target: Target,
    tmp_path: Path,
    checks: tuple[str, ...],
    *,
    proj: Project = NO_PROJECT,
    rows: int = 8,
) -> Report:
    config = RunConfig(
        spec=f"{target.name}:TARGET",
        seed=0,
        workdir=tmp_path / "work",
        project=proj,
        race_procs=4,
        race_rounds=1,
    )
    selection = Selection(tuple(by_name()[c] for c in checks))
    return run(target, config, selection, rows=rows, out=io.StringIO())


def failures(report: Report) -> dict[str, str]:
    return {r.case.id: r.detail for r in report.failed}


def rows_of(path: Path, table: str) -> list[dict[str, object]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def context(target: Target, tmp_path: Path, proj: Project = NO_PROJECT) -> RunContext:
    config = RunConfig(spec="x", seed=0, workdir=tmp_path / "ctx", project=proj)
    return RunContext(target, config, rows=8)


# --- B: domain data makes a canonicalising dedup meet its real duplicates ---------------------


def test_the_wrong_dedup_passes_vacuously_without_the_users_strategy(tmp_path: Path) -> None:
    # Generated text never looks like 'gh:owner/name#12': the rewrite touches no row. This is
    # why domain data matters.
    report = certify(domain_dedup_wrong.TARGET, tmp_path, UPGRADE_CHECKS)
    assert report.verdict == "pass", failures(report)


def test_the_wrong_dedup_is_caught_with_the_users_strategy(tmp_path: Path) -> None:
    report = certify(domain_dedup_wrong.TARGET_WITH_REFS, tmp_path, UPGRADE_CHECKS)
    failed = failures(report)
    assert {"fresh-equivalence[v1->v2,delete]", "step-by-step[v1->v2,delete]"} <= set(failed)
    assert all("UNIQUE constraint failed: items.ref" in d for d in failed.values()), failed


def test_the_correct_dedup_passes_with_the_users_strategy(tmp_path: Path) -> None:
    report = certify(domain_dedup_correct.TARGET_WITH_REFS, tmp_path, UPGRADE_CHECKS)
    assert report.verdict == "pass", failures(report)
    # Not vacuous: the fixture holds refs of both spellings, the upgrade merged some.
    ctx = context(domain_dedup_correct.TARGET_WITH_REFS, tmp_path)
    refs = [r["ref"] for r in rows_of(ctx.fixture_db(1, "delete"), "items")]
    assert any(str(r).startswith("gh:") for r in refs)
    assert any(str(r).startswith("https://github.com/") for r in refs)
    after = rows_of(ctx.upgraded(1, "delete").path, "items")
    assert len(after) < len(refs)


def test_the_correct_dedup_preserves_data_once_its_intent_is_declared(tmp_path: Path) -> None:
    # Deleting duplicates and rewriting refs is the step's purpose: undeclared, data-preservation
    # fails and prints the declaration; declared, the rows it keeps are still compared.
    undeclared = certify(
        domain_dedup_correct.TARGET_WITH_REFS, tmp_path / "a", ("data-preservation",)
    )
    detail = undeclared.failed[0].detail
    assert "step 2 (v1 -> v2) changed what it found:" in detail
    assert 'transforms = ["items.ref"]' in detail
    assert 'deletes = ["items"]' in detail
    declared = project(
        changes={
            "2": {
                "transforms": ["items.ref"],
                "deletes": ["items"],
                "postconditions": ["SELECT id FROM items WHERE ref LIKE 'gh:%'"],
            }
        }
    )
    report = certify(
        domain_dedup_correct.TARGET_WITH_REFS, tmp_path / "b", ("data-preservation",), proj=declared
    )
    assert report.verdict == "pass", failures(report)


def test_a_pyproject_regex_catches_it_too(tmp_path: Path) -> None:
    regex = r"gh:(octo|cat)/app#[1-3]|https://github\.com/(octo|cat)/app/issues/[1-3]"
    proj = project(columns={"items.ref": {"regex": regex}})
    report = certify(domain_dedup_wrong.TARGET, tmp_path, ("fresh-equivalence",), proj=proj)
    assert report.verdict == "fail"


def test_column_values_are_mixed_with_generated_ones_and_repeat_where_no_key_forbids(
    tmp_path: Path,
) -> None:
    proj = project(
        columns={"items.title": {"values": ["alpha", "beta"]}, "items.ref": {"values": ["r1"]}}
    )
    ctx = context(domain_dedup_wrong.TARGET, tmp_path, proj)
    rows = ctx.population(1).rows("items")
    titles = [r["title"] for r in rows]
    assert titles.count("alpha") > 1 and titles.count("beta") > 1  # noqa: PT018
    assert 0 < sum(t not in ("alpha", "beta") for t in titles) < len(titles) / 2
    assert [r["ref"] for r in rows].count("r1") == 1  # UNIQUE: the value goes in once


def test_example_rows_are_inserted_as_given(tmp_path: Path) -> None:
    given = {"id": 7, "ref": "gh:octo/app#1", "title": "as given"}
    proj = project(examples={"1": {"items": [given]}})
    ctx = context(domain_dedup_wrong.TARGET, tmp_path, proj)
    assert given in rows_of(ctx.fixture_db(1, "delete"), "items")
    assert ctx.population(1).rows("items")[0] == given  # before any generated row


class _ExampleTarget(WithRefs):
    def example_rows(self, version: int) -> dict[str, list[dict[str, object]]]:
        return {"items": [{"ref": f"gh:octo/lib#{version}"}]} if version == 2 else {}


def test_the_python_capabilities_feed_the_fixtures(tmp_path: Path) -> None:
    target = _ExampleTarget("py-domain", domain_dedup_correct.TARGET.steps)
    ctx = context(target, tmp_path)
    refs = [r["ref"] for r in rows_of(ctx.fixture_db(2, "delete"), "items")]
    assert "gh:octo/lib#2" in refs
    assert sum(str(r).startswith(("gh:", "https://github.com/")) for r in refs) > len(refs) / 2


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"columns": {"items": {"values": [1]}}}, 'names one column as "table.column"'),
        ({"columns": {"items.ref": {"regexp": "x"}}}, "must be { regex"),
        ({"columns": {"items.ref": {"regex": "("}}}, "cannot be used"),
        ({"columns": {"items.ref": {"values": []}}}, "non-empty list"),
        ({"columns": {"items.ref": {"values": [True]}}}, "write 1 or 0"),
        ({"columns": {"items.reff": {"values": ["x"]}}}, "its columns: id, ref, title"),
        ({"columns": {"itms.ref": {"values": ["x"]}}}, "tables: items"),
        ({"examples": {"9": {"items": [{"ref": "x"}]}}}, "a number from 1 to 2"),
        ({"examples": {"1": {"items": [{"reff": "x"}]}}}, "'reff', not columns of items"),
        ({"examples": {"1": {"item": [{"ref": "x"}]}}}, "no table 'item' at version 1"),
        (
            {"examples": {"1": {"items": [{"ref": "x"}, {"ref": "x"}]}}},
            "[tool.migproof.examples.1] items[1] = {'ref': 'x'} is refused by the clean "
            "database at version 1: UNIQUE constraint failed: items.ref",
        ),
        ({"examples": {"1": {"items": [{"id": 1}]}}}, "NOT NULL constraint failed: items.ref"),
    ],
)
def test_bad_declarations_are_usage_errors_before_anything_runs(
    tmp_path: Path, table: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as err:
        context(domain_dedup_wrong.TARGET, tmp_path, project(**table))
    assert message in str(err.value)
    assert "Nothing was run" in str(err.value)


def test_a_column_declared_in_python_and_in_pyproject_is_refused(tmp_path: Path) -> None:
    proj = project(columns={"items.ref": {"values": ["x"]}})
    with pytest.raises(UsageError, match="declared twice"):
        context(domain_dedup_wrong.TARGET_WITH_REFS, tmp_path, proj)


def test_the_cli_exits_2_on_a_bad_declaration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from migproof.cli import main

    (tmp_path / "pyproject.toml").write_text(
        '[tool.migproof.columns]\n"items.nope" = { values = ["a"] }\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    spec = str(ROOT / "tests/migrators/domain_dedup_wrong.py") + ":TARGET"
    assert main(["certify", spec, "--only", "integrity"]) == 2
    assert "[tool.migproof.columns] 'items.nope'" in capsys.readouterr().err


# --- pools from a user's strategy: the same in every process ----------------------------------

_POOL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    if sys.argv[2] == "with":
        import lots_of_constants  # a local module: Hypothesis would harvest its constants
    import hypothesis.strategies as st
    from migproof.harness.domain import examples_of
    from tests.migrators.domain_common import REFS, WithRefs
    text = st.from_regex(r"gh:[a-z]+/[a-z]+#[0-9]{1,4}", fullmatch=True)
    print(json.dumps([examples_of(s, seed=7) for s in (REFS, text, st.integers(0, 100))]))
    """
)


def test_pools_are_the_same_in_processes_that_import_different_local_modules(
    tmp_path: Path,
) -> None:
    (tmp_path / "lots_of_constants.py").write_text(
        "WORDS = ['octo', 'cat', 'app', 'lib', 'gh', 'issue', 'abc', 'xyz', 'q']\n"
        "NUMBERS = [1, 2, 3, 7, 42, 99, 1234]\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def pools(mode: str) -> Any:
        out = subprocess.run(
            [sys.executable, "-c", _POOL_SCRIPT, str(tmp_path), mode],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=tmp_path,
            env=env,
        )
        return json.loads(out.stdout)

    text = st.from_regex(r"gh:[a-z]+/[a-z]+#[0-9]{1,4}", fullmatch=True)
    here = [examples_of(s, seed=7) for s in (REFS, text, st.integers(0, 100))]
    assert pools("without") == pools("with") == json.loads(json.dumps(here))
    assert len(here[0]) > 10
    assert examples_of(REFS, seed=8) != here[0]


# --- C: rows the migrator seeded are edited as users edit them ---------------------------------


def test_fixtures_edit_seeded_rows_deterministically(tmp_path: Path) -> None:
    target = seeds_or_ignore.TARGET
    ctx = context(target, tmp_path / "a")
    fixture = rows_of(ctx.fixture_db(2, "delete"), "settings")
    defaults = {k: v for pairs in DEFAULTS.values() for k, v in pairs}
    seeded = {r["key"]: r["value"] for r in fixture if r["key"] in defaults}
    assert set(seeded) == set(defaults)  # keys are never edited
    assert any(seeded[k] != defaults[k] for k in defaults)  # some values are
    again = context(target, tmp_path / "b").fixture_db(2, "delete")
    assert again.read_bytes() == ctx.fixture_db(2, "delete").read_bytes()


def test_ensuring_defaults_with_insert_or_ignore_passes_every_check(tmp_path: Path) -> None:
    report = certify(seeds_or_ignore.TARGET, tmp_path, tuple(c.name for c in ALL_CHECKS))
    assert report.verdict == "pass", failures(report)
    assert {r.case.check for r in report.results if r.status is Status.PASS} >= {
        "idempotent-rerun",
        "data-preservation",
    }


def test_resetting_defaults_with_insert_or_replace_is_caught(tmp_path: Path) -> None:
    report = certify(seeds_or_replace.TARGET, tmp_path, ("idempotent-rerun", "data-preservation"))
    failed = failures(report)
    assert {r.case.check for r in report.failed} == {"idempotent-rerun", "data-preservation"}
    assert all("settings" in d for d in failed.values()), failed


def test_migproof_db_at_uses_the_projects_domain_data(pytester: pytest.Pytester) -> None:
    from tests.sqlite.test_plugin import make_project

    make_project(
        pytester,
        "myapp.migrations:STEPS",
        '[tool.migproof.columns]\n"notes.body" = { values = ["hello", "world"] }\n'
        '[tool.migproof.examples.1]\nnotes = [{ id = 1, body = "given" }]\n',
    )
    pytester.makepyfile(
        test_mine=textwrap.dedent(
            """
            import sqlite3

            def test_domain_data(migproof_db_at):
                rows = sqlite3.connect(migproof_db_at(1)).execute(
                    "SELECT id, body FROM notes").fetchall()
                assert (1, "given") in rows
                bodies = [b for _, b in rows]
                assert bodies.count("hello") + bodies.count("world") > len(rows) / 2
            """
        )
    )
    result = pytester.runpytest_subprocess("--no-migproof", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
