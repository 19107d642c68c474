"""The ``migproof`` command: one argparse parser whose subcommands live beside their library.

``migrate``, ``status`` and ``plan`` come from ``migproof.engine.cli``; ``certify`` and
``freeze`` from ``migproof.harness.cli``, which imports Hypothesis only when one of them runs,
so the engine's commands stay fast. Every refusal leaves through ``MigproofError.exit_code``;
nothing reaches the user as a bare traceback. A closed output pipe (``| head``) ends a command
quietly; ``certify`` goes on to its verdict and exits with its code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Final

from migproof import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

EXIT_INTERNAL: Final = 70  # EX_SOFTWARE: a bug in migproof itself, never a verdict on the DB
EXIT_INTERRUPTED: Final = 130
EXIT_PIPE_CLOSED: Final = 141  # 128 + SIGPIPE, what a shell reports for a command ended by it


def build_parser() -> argparse.ArgumentParser:
    from migproof.engine import cli as engine_cli
    from migproof.harness import cli as harness_cli

    parser = argparse.ArgumentParser(
        prog="migproof",
        description="Migrate SQLite state files safely, and certify migrations before they ship.",
    )
    parser.add_argument("--version", action="version", version=f"migproof {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    engine_cli.register(sub)
    harness_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from migproof.engine.errors import MigproofError
    from migproof.harness.cli import Terminated

    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except MigproofError as err:
        print(f"migproof: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("migproof: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as err:
        print(f"migproof: terminated ({err}).", file=sys.stderr)
        return 128 + err.signum
    except BrokenPipeError:
        # The reader went away (``| head``): not an error of ours, and nothing more to say.
        # Later writes (the interpreter's flush at exit) go to /dev/null instead of failing.
        with contextlib.suppress(OSError, ValueError):  # io.UnsupportedOperation: no fd
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
        return EXIT_PIPE_CLOSED
    except Exception as err:
        print(
            f"migproof: internal error: {type(err).__name__}: {err}\n"
            "This is a bug in migproof, not a verdict on your database; please report it "
            "with the command you ran. Set MIGPROOF_DEBUG=1 to see the traceback.",
            file=sys.stderr,
        )
        if os.environ.get("MIGPROOF_DEBUG"):
            raise
        return EXIT_INTERNAL
    return code
