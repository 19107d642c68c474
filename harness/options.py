"""The values certification options take, parsed in one place.

``migproof certify`` (argparse), the pytest plugin's ``--migproof-*`` options and its
``[tool.migproof]`` table all accept the same values; each front end wraps these parsers in
its own error type, so a value one of them refuses is refused by all. A parser raises
``ValueError`` with a message that reads after the option's name: "takes a number >= 1, got 0".

Pure: no I/O, imported by the plugin at pytest start-up.
"""

from __future__ import annotations

from typing import Final

JOURNAL_MODES: Final = ("delete", "wal")
CRASH_MODES: Final = ("snapshot", "kill")
CRASH_LEVELS: Final = ("statements", "writes")  # --crash-at
MIN_RACE_PROCS: Final = 2  # one process racing itself proves nothing


def whole_number(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"takes a whole number, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"takes a number >= {minimum}, got {value}")
    return value


def journal_modes(text: str) -> tuple[str, ...]:
    """``delete,wal`` -> ("delete", "wal"); each mode once, in the order given."""
    modes = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    if not modes or any(m not in JOURNAL_MODES for m in modes):
        raise ValueError(
            f"takes a list of {'/'.join(JOURNAL_MODES)} (comma-separated), got {text!r}"
        )
    return modes


def check_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError(f"takes one or more check names separated by commas, got {text!r}")
    return names


def crash_mode(text: str) -> str:
    if text not in CRASH_MODES:
        raise ValueError(f"takes {' or '.join(CRASH_MODES)}, got {text!r}")
    return text


def crash_at(text: str) -> str:
    if text not in CRASH_LEVELS:
        raise ValueError(f"takes {' or '.join(CRASH_LEVELS)}, got {text!r}")
    return text
