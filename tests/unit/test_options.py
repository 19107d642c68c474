"""One set of rules for option values, whichever front end reads them."""

from __future__ import annotations

import pytest
from migproof.harness import options
from migproof.harness.plugin import _PARSERS


def test_journal_modes_keep_order_and_drop_repeats() -> None:
    assert options.journal_modes(" WAL, delete,wal ") == ("wal", "delete")


@pytest.mark.parametrize(
    ("option", "text"),
    [
        ("--migproof-journal-modes", "memory"),
        ("--migproof-journal-modes", ""),
        ("--migproof-only", " , "),
        ("--migproof-rows", "0"),
        ("--migproof-seed", "-1"),
        ("--migproof-race-procs", "1"),
        ("--migproof-crash-mode", "bogus"),
        ("--migproof-since", "x"),
    ],
)
def test_the_plugin_refuses_what_certify_refuses(option: str, text: str) -> None:
    from migproof.cli import main

    with pytest.raises(pytest.UsageError, match=f"^{option} takes"):
        _PARSERS[option](text)
    cli_option = option.replace("--migproof-", "--")
    with pytest.raises(SystemExit) as exc:
        main(["certify", cli_option, text])
    assert exc.value.code == 2
