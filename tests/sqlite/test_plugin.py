"""The pytest plugin, seen from a user project outside this repository."""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap

import pytest

STEPS_MODULE = textwrap.dedent(
    """
    from migproof.engine import AddColumn, CreateIndex, CreateTable, DataChange, Step, Steps

    STEPS = Steps(
        [
            Step(1, "notes", [CreateTable("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")]),
            Step(
                2,
                "tags",
                [
                    AddColumn("notes", "tag TEXT NOT NULL DEFAULT ''"),
                    CreateIndex("CREATE INDEX notes_tag ON notes (tag)"),
                ],
            ),
        ],
        name="notes",
    )
    """
)

# A target that forgets to refuse a database from a newer release.
BROKEN_TARGET = textwrap.dedent(
    """
    import os
    import sqlite3

    class Target:
        name = "accepts-newer"
        head = 1

        def migrate(self, db_path, target=None):
            conn = sqlite3.connect(db_path, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("PRAGMA user_version").fetchone()[0] < 1:
                    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
                    conn.execute("PRAGMA user_version = 1")
                conn.execute("COMMIT")
            finally:
                conn.close()

        def version(self, db_path):
            if not os.path.exists(db_path) or os.path.getsize(db_path) == 0:
                return 0
            conn = sqlite3.connect(db_path)
            try:
                return conn.execute("PRAGMA user_version").fetchone()[0]
            finally:
                conn.close()

    TARGET = Target()
    """
)


def make_project(pytester: pytest.Pytester, spec: str, extra: str = "") -> None:
    pytester.makepyprojecttoml(f'[tool.migproof]\nsteps = "{spec}"\nseed = 5\nrows = 6\n{extra}')
    pkg = pytester.mkpydir("myapp")
    (pkg / "migrations.py").write_text(STEPS_MODULE)
    (pkg / "broken.py").write_text(BROKEN_TARGET)


def test_a_user_project_is_certified_by_plain_pytest_with_xdist(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        "myapp.migrations:STEPS",
        'checks = ["fresh-equivalence", "step-by-step", "data-preservation", "newer-refused"]',
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(
        ["*migproof*", "*10 certification cases: 10 passed or skipped, 0 failed*"]
    )


def test_items_have_readable_ids(pytester: pytest.Pytester) -> None:
    make_project(pytester, "myapp.migrations:STEPS", 'journal_modes = ["wal"]')
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "--migproof-only", "step-by-step"
    )
    result.stdout.fnmatch_lines(
        [
            "pyproject.toml::step-by-step[[]v0->v1,wal[]]",
            "pyproject.toml::step-by-step[[]v1->v2,wal[]]",
        ]
    )


def test_since_keeps_only_what_the_new_step_touches(pytester: pytest.Pytester) -> None:
    make_project(pytester, "myapp.migrations:STEPS", 'journal_modes = ["delete"]')
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", "--migproof-only", "step-by-step", "--migproof-since", "1"
    )
    result.stdout.fnmatch_lines(["pyproject.toml::step-by-step[[]v1->v2,delete[]]"])
    result.stdout.no_fnmatch_line("*v0->v1*")


def test_a_failure_prints_a_line_that_reproduces_it(pytester: pytest.Pytester) -> None:
    make_project(
        pytester, "myapp/broken.py:TARGET", 'checks = ["newer-refused"]\njournal_modes = ["delete"]'
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    lines = [
        ln.split("reproduce: ", 1)[1]
        for ln in result.outlines
        if "reproduce: migproof certify" in ln
    ]
    assert lines, result.stdout.str()
    line = lines[0]
    assert "--case 'newer-refused[" in line
    assert "--seed 5" in line
    # Run the printed line as a user would, from the project folder: the same case fails.
    argv = shlex.split(line)
    assert argv[0] == "migproof"
    replay = subprocess.run(
        [sys.executable, "-m", "migproof", *argv[1:]],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 1, replay.stdout + replay.stderr
    case_id = line.split("--case '", 1)[1].split("'", 1)[0]
    assert f"FAIL {case_id}" in replay.stdout
    assert "fingerprint mismatch" not in replay.stdout


def test_migproof_db_at_gives_a_populated_private_copy(pytester: pytest.Pytester) -> None:
    make_project(pytester, "myapp.migrations:STEPS")
    pytester.makepyfile(
        test_mine=textwrap.dedent(
            """
            import sqlite3
            from migproof.engine import migrate
            from myapp.migrations import STEPS

            def test_tag_backfilled_with_default(migproof_db_at):
                path = migproof_db_at(1)
                before = sqlite3.connect(path).execute("SELECT count(*) FROM notes").fetchone()[0]
                assert before > 0
                migrate(path, STEPS)
                n, tagged = sqlite3.connect(path).execute(
                    "SELECT count(*), count(NULLIF(tag, '')) FROM notes").fetchone()
                assert (n, tagged) == (before, 0)

            def test_copies_are_private(migproof_db_at):
                assert migproof_db_at(1) != migproof_db_at(1)
            """
        )
    )
    result = pytester.runpytest_subprocess("--no-migproof", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_bad_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    make_project(pytester, "myapp.migrations:STEPS")
    result = pytester.runpytest_subprocess("--migproof-journal-modes", "memory")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--migproof-journal-modes takes a list of delete/wal*"])


def test_without_a_migproof_table_nothing_is_collected(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.other]\nx = 1\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*certification cases*")


def test_frozen_fixtures_beside_pyproject_are_replayed(pytester: pytest.Pytester) -> None:
    make_project(pytester, "myapp.migrations:STEPS", 'journal_modes = ["delete"]')
    frozen = subprocess.run(
        [sys.executable, "-m", "migproof", "freeze", "--rows", "4"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert frozen.returncode == 0, frozen.stderr
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--migproof-only", "frozen-fixtures,released-steps"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*3 certification cases: 3 passed*"])


UNBUILDABLE_TARGET = textwrap.dedent(
    """
    class Target:
        name = "unbuildable"
        head = 1

        def migrate(self, db_path, target=None):
            raise RuntimeError("step 1 is broken")

        def version(self, db_path):
            return 0

    TARGET = Target()
    """
)


def test_a_check_that_cannot_enumerate_is_a_failed_item(pytester: pytest.Pytester) -> None:
    # drift reads the reference DBs to list its cases; `certify` reports the failure to build
    # them as a failed `drift` case, and so must the plugin (not collect nothing).
    make_project(pytester, "myapp/unbuildable.py:TARGET", 'checks = ["drift"]')
    (pytester.path / "myapp" / "unbuildable.py").write_text(UNBUILDABLE_TARGET)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*migrate(empty, 1) in delete mode raised RuntimeError: step 1 is broken*"]
    )
    result.stdout.fnmatch_lines(["*reproduce: migproof certify *--only drift --case 'drift'*"])


@pytest.mark.parametrize(
    ("extra", "args", "message"),
    [
        ("rows = 0", [], "*rows*>= 1, got 0*"),
        ("", ["--migproof-rows", "0"], "*--migproof-rows takes a number >= 1, got 0*"),
        ("seed = -1", [], "*seed*>= 0, got -1*"),
        ("rows = 6.5", [], "*rows*whole number*"),
        ('crash_mode = "bogus"', [], "*crash_mode*snapshot*kill*"),
        ("case_timeout = 0", [], "*case_timeout*seconds > 0, got '0'*"),
        ("", ["--migproof-case-timeout", "soon"], "*--migproof-case-timeout takes a number*"),
        ("power_images = 0", [], "*power_images*>= 1, got 0*"),
        ("", ["--migproof-power-images", "0"], "*--migproof-power-images takes a number >= 1*"),
    ],
)
def test_bad_table_values_are_usage_errors_as_the_options_are(
    pytester: pytest.Pytester, extra: str, args: list[str], message: str
) -> None:
    # A value `migproof certify` would refuse must not reach the run (or a reproduction line).
    pytester.makepyprojecttoml(f'[tool.migproof]\nsteps = "myapp.migrations:STEPS"\n{extra}\n')
    (pytester.mkpydir("myapp") / "migrations.py").write_text(STEPS_MODULE)
    result = pytester.runpytest_subprocess("--collect-only", "-q", *args)
    # An option is refused by pytest's parser (usage error); a table value when the file is
    # collected (a collection error, which interrupts the run). Either way nothing runs.
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERRUPTED)
    assert "migproof" not in "".join(ln for ln in result.outlines if "::" in ln)
    pytest.LineMatcher(result.outlines + result.errlines).fnmatch_lines([message])


def test_each_pyproject_is_certified_with_its_own_table(pytester: pytest.Pytester) -> None:
    # A monorepo: two projects, each with its own [tool.migproof]. Each file's items are its
    # own target's cases, not the first collected file's.
    one_step = textwrap.dedent(
        """
        from migproof.engine import CreateTable, Step, Steps

        STEPS = Steps([Step(1, "t", [CreateTable("CREATE TABLE t (id INTEGER PRIMARY KEY)")])])
        """
    )
    for folder, module, text in (("a", "appa", STEPS_MODULE), ("b", "appb", one_step)):
        root = pytester.mkdir(folder)
        (root / "pyproject.toml").write_text(
            f'[tool.migproof]\nsteps = "{module}.migrations:STEPS"\n'
            'checks = ["step-by-step"]\njournal_modes = ["delete"]\n'
        )
        (root / module).mkdir()
        (root / module / "__init__.py").write_text("")
        (root / module / "migrations.py").write_text(text)
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "a/pyproject.toml::step-by-step[[]v0->v1,delete[]]",
            "a/pyproject.toml::step-by-step[[]v1->v2,delete[]]",
            "b/pyproject.toml::step-by-step[[]v0->v1,delete[]]",
        ]
    )
    result.stdout.no_fnmatch_line("b/pyproject.toml::step-by-step[[]v1->v2*")
    # And each runs against its own reference databases (the cache is per project).
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_plain_pytest_certifies_a_project_that_sets_testpaths(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    # Most projects set testpaths; pytest then walks only those folders, never reaching the
    # pyproject.toml at the root. The plugin adds it to what is collected.
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n'
        '[tool.migproof]\nsteps = "myapp.migrations:STEPS"\n'
        'checks = ["step-by-step"]\njournal_modes = ["delete"]\nrows = 4\n'
    )
    (pytester.mkpydir("myapp") / "migrations.py").write_text(STEPS_MODULE)
    (pytester.mkdir("tests") / "test_app.py").write_text("def test_app():\n    pass\n")
    result = pytester.runpytest_subprocess(*xdist, "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*2 certification cases: 2 passed or skipped, 0 failed*"])
    for item in ("v0->v1", "v1->v2"):  # in either order: xdist reports as workers finish
        result.stdout.fnmatch_lines([f"PASSED pyproject.toml::step-by-step[[]{item},delete[]]"])


def test_paths_on_the_command_line_are_collected_as_given(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n'
        '[tool.migproof]\nsteps = "myapp.migrations:STEPS"\n'
    )
    (pytester.mkpydir("myapp") / "migrations.py").write_text(STEPS_MODULE)
    (pytester.mkdir("tests") / "test_app.py").write_text("def test_app():\n    pass\n")
    result = pytester.runpytest_subprocess("tests", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*certification cases*")


def test_testpaths_that_include_the_root_collect_each_item_once(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\ntestpaths = ["."]\n\n'
        '[tool.migproof]\nsteps = "myapp.migrations:STEPS"\n'
        'checks = ["step-by-step"]\njournal_modes = ["delete"]\n'
    )
    (pytester.mkpydir("myapp") / "migrations.py").write_text(STEPS_MODULE)
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert [ln for ln in result.outlines if "::" in ln] == [
        "pyproject.toml::step-by-step[v0->v1,delete]",
        "pyproject.toml::step-by-step[v1->v2,delete]",
    ]


HANGING_TARGET = textwrap.dedent(
    """
    import time

    from myapp.broken import Target

    class Hangs(Target):
        name = "hangs"

        def migrate(self, db_path, target=None):
            if target is None and self.version(db_path) == 1:
                while True:
                    time.sleep(3600)
            super().migrate(db_path, target)

    TARGET = Hangs()
    """
)


def test_a_hung_target_fails_its_item_at_the_case_timeout(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        "myapp/hangs.py:TARGET",
        'checks = ["idempotent-rerun", "step-by-step"]\njournal_modes = ["delete"]',
    )
    (pytester.path / "myapp" / "hangs.py").write_text(HANGING_TARGET)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--migproof-case-timeout", "3")
    # idempotent-rerun[v1->v1]: migrate() on a file at head hangs; step-by-step[v0->v1] names
    # its target version, so it does not.
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*migrate('.../*/db.sqlite', None)*",
            "*reproduce: migproof certify *--case-timeout 3*",
        ]
    )
    assert "the case's deadline ran out" in result.stdout.str()


def test_a_finding_recorded_in_the_baseline_is_an_xfail_under_pytest(
    pytester: pytest.Pytester,
) -> None:
    make_project(
        pytester, "myapp/broken.py:TARGET", 'checks = ["newer-refused"]\njournal_modes = ["delete"]'
    )
    written = subprocess.run(
        [
            *(sys.executable, "-m", "migproof", "certify", "--seed", "5", "--rows", "6"),
            *("--journal-modes", "delete", "--only", "newer-refused"),
            *("--write-baseline", "migproof-baseline.json"),
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert written.returncode == 0, written.stdout + written.stderr
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*waived by the baseline*"])
