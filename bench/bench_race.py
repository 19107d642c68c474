"""Race figures: a stress run of a target, how reliably broken migrators are caught, and how
fair the live writer is to a correct one.

    python bench/bench_race.py                      # stress: the bundled example, 500 rounds
    python bench/bench_race.py --rounds 50 --versions all
    python bench/bench_race.py --catch-rate --trials 25 --procs 4 [--load 2] [--handoff 0]
    python bench/bench_race.py --fairness --rounds 40 [--load 2] [--legacy-writer]

Stress: for each selected case (start version x journal mode) the ``race`` check's own
rounds run -- R plain rounds of P processes and ceil(R/4) mixed rounds with a live writer --
and the script prints rounds, processes, wall time and the cost per round and per process
start. Catch rate: each broken migrator is raced ``--trials`` single rounds per case where its
bug can show; a round "catches" when it yields a finding. Fairness: R mixed rounds of a
correct migrator from v1 (the live writer inserting throughout); it prints the writer's duty
cycle (the share of the time it held the write lock), the slowest migrator per round and any
failing round; ``--legacy-writer`` restores the writer's old pacing (0.5 ms between rows, no
row in flight at the release) for comparison. ``--load N`` runs N CPU hogs
(``python3 -c 'while True: pass'``) throughout. All print plain text; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the race_* migrators live in tests/migrators

from migproof.harness.cases import RunConfig, Status  # noqa: E402
from migproof.harness.checks.race import CHECK, CaseRace, NotRaced  # noqa: E402
from migproof.harness.context import RunContext  # noqa: E402
from migproof.harness.race import writer  # noqa: E402
from migproof.harness.race.rounds import HANDOFF_PAUSE_MAX, PAUSE_MAX  # noqa: E402
from migproof.harness.spec import load_target  # noqa: E402
from migproof.harness.starts import start_db  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

# (module, plain or mixed rounds, the cases where its bug can show: None for all of them)
BROKEN: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    ("race_stale_version", "r", None),
    ("race_deferred_begin", "r", None),
    ("race_deferred_timeout", "r", None),
    ("race_swallow", "r", None),
    ("race_ledger_stale", "r", None),
    ("race_refuse_early", "r", None),
    # Only the start at v1 runs step 2, the rebuild from a stale snapshot.
    ("race_lost_writes", "m", frozenset({"race[v1->v4,delete]", "race[v1->v4,wal]"})),
    ("style_implicit_stale", "r", None),
    ("wal_late_timeout", "r", None),
    # Only a file that is not WAL yet can be switched: every later version is WAL already.
    (
        "wal_unguarded",
        "r",
        frozenset({"race[v0->v3,missing]", "race[v0->v3,zero-length]", "race[v0->v3,delete]"}),
    ),
)


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def cpu_hogs(n: int) -> Iterator[list[int]]:
    """``n`` busy loops pinning the CPUs for the block; always killed and reaped.

    SIGTERM and SIGINT end the block like an exception, so the loops die with the script even
    when it runs in the background (where a shell starts it with SIGINT ignored).
    """
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        hogs += [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
        yield [h.pid for h in hogs]
    finally:
        for h in hogs:
            h.kill()
        for h in hogs:
            h.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stress(args: argparse.Namespace) -> None:
    target = load_target(args.spec)
    with tempfile.TemporaryDirectory() as tmp:
        config = RunConfig(
            args.spec, args.seed, Path(tmp), race_procs=args.procs, race_rounds=args.rounds
        )
        ctx = RunContext(target, config)
        cases = [
            c
            for c in CHECK.cases(ctx)
            if args.versions == "all" or c.from_version in _versions(args.versions)
        ]
        print(
            f"stress: {target.name} (head {target.head}), {len(cases)} cases, "
            f"{args.rounds} plain rounds (+ mixed) x {args.procs} processes each"
        )
        total_rounds = total_starts = failures = 0
        total_wall = 0.0
        for case in cases:
            start_db(ctx, case.from_version or 0, case.journal_mode or "delete")  # not timed
            began = time.monotonic()
            race = CaseRace.prepare(ctx, case)
            if isinstance(race, NotRaced):
                print(f"  {case.id}: {race.status.value}: {race.detail}")
                failures += race.status is not Status.SKIP
                continue
            per_round: list[float] = []
            mixed_rows = 0
            for label in race.labels(args.rounds):
                result, findings = race.round(
                    label, procs=args.procs, pause=args.pause, handoff=args.handoff
                )
                per_round.append(result.wall)
                if result.writer is not None:
                    mixed_rows += len(result.writer.committed)
                if findings:
                    failures += 1
                    print(f"  {case.id} {label}: FAIL: {findings[0].message}")
            wall = time.monotonic() - began
            total_rounds += len(per_round)
            total_starts += len(per_round) * args.procs
            total_wall += wall
            print(
                f"  {case.id}: {len(per_round)} rounds in {wall:.1f} s; per round median "
                f"{statistics.median(per_round) * 1000:.0f} ms, max {max(per_round) * 1000:.0f} ms; "
                f"writer rows {mixed_rows}"
            )
        print(
            f"total: {total_rounds} rounds, {total_starts} process starts, {total_wall:.1f} s wall; "
            f"{total_wall / max(total_rounds, 1) * 1000:.0f} ms per round, "
            f"{total_wall / max(total_starts, 1) * 1000:.1f} ms per process start; "
            f"{failures} failing rounds"
        )


def catch_rate(
    *,
    trials: int,
    procs: int,
    seed: int = 0,
    pause: float = PAUSE_MAX,
    handoff: float = HANDOFF_PAUSE_MAX,
    only: list[str] | None = None,
) -> dict[str, float]:
    """Print each broken migrator's per-round catch rate; return the worst case's, per module."""
    print(
        f"catch rate: {trials} single rounds per case, {procs} processes per round, pauses up "
        f"to {pause * 1e6:.0f} us ({handoff * 1e3:g} ms at a lock hand-off)"
    )
    worst_of: dict[str, float] = {}
    for module, kind, where in BROKEN:
        if only and module not in only:
            continue
        target = load_target(f"tests.migrators.{module}:TARGET")
        with tempfile.TemporaryDirectory() as tmp:
            ctx = RunContext(target, RunConfig(module, seed, Path(tmp)))
            rates: list[tuple[str, float]] = []
            began = time.monotonic()
            for case in CHECK.cases(ctx):
                if where is not None and case.id not in where:
                    continue
                race = CaseRace.prepare(ctx, case)
                if isinstance(race, NotRaced) or (kind == "m" and race.plan is None):
                    continue
                caught = sum(
                    bool(race.round(f"{kind}{k}", procs=procs, pause=pause, handoff=handoff)[1])
                    for k in range(trials)
                )
                rates.append((case.id, caught / trials))
            wall = time.monotonic() - began
        worst_id, worst = min(rates, key=lambda r: r[1])
        worst_of[module] = worst
        mean = statistics.mean(r for _, r in rates)
        # The chance a case with R rounds misses the bug, from the worst case's per-round rate.
        miss = {r: (1 - worst) ** r for r in (2, 4, 8)}
        print(
            f"  {module}: per-round catch rate mean {mean:.0%}, worst {worst:.0%} ({worst_id}); "
            f"worst case missed with 2/4/8 rounds: "
            + "/".join(f"{m:.1%}" for m in miss.values())
            + f" [{wall:.0f} s]",
            flush=True,
        )
        print(
            "    per case: " + ", ".join(f"{cid.removeprefix('race')} {r:.0%}" for cid, r in rates)
        )
    return worst_of


def fairness(args: argparse.Namespace) -> None:
    """Mixed rounds of a correct migrator: the writer's duty cycle and the migrators' waits."""
    if args.legacy_writer:  # the forked writer reads these module globals when it runs
        writer.WRITER_GAP_MIN = 0.0005  # type: ignore[misc]
        writer.WRITER_GAP_FACTOR = 0.0  # type: ignore[misc]
        writer.WRITER_HOLD = (0.0, 0.0)  # type: ignore[misc]
    target = load_target(args.spec)
    print(
        f"fairness: {target.name}, {args.rounds} mixed rounds x {args.procs} processes from v1, "
        f"{'legacy' if args.legacy_writer else 'paced'} writer"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(target, RunConfig(args.spec, args.seed, Path(tmp)))
        for case in CHECK.cases(ctx):
            if case.from_version != 1:
                continue
            race = CaseRace.prepare(ctx, case)
            if isinstance(race, NotRaced) or race.plan is None:
                print(f"  {case.id}: no mixed round")
                continue
            slowest: list[float] = []
            duty: list[float] = []
            rows: list[int] = []
            failing = 0
            for k in range(args.rounds):
                result, findings = race.round(f"m{k}", procs=args.procs)
                slowest.append(max(o.elapsed for o in result.outcomes))
                if result.writer is not None:
                    rows.append(len(result.writer.committed))
                    duty.append(result.writer.held / max(result.writer.span, 1e-9))
                if findings:
                    failing += 1
                    print(f"    m{k}: FAIL: {findings[0].message[:300]}")
            slowest.sort()
            print(
                f"  {case.id}: writer duty cycle median {statistics.median(duty):.0%} "
                f"(max {max(duty):.0%}), {statistics.median(rows):.0f} rows per round; slowest "
                f"migrator per round median {statistics.median(slowest) * 1e3:.0f} ms, p90 "
                f"{slowest[int(len(slowest) * 0.9)] * 1e3:.0f} ms, max {slowest[-1] * 1e3:.0f} ms; "
                f"{failing} failing rounds",
                flush=True,
            )


def _versions(text: str) -> set[int]:
    return {int(v) for v in text.split(",")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default=None, help="stress / fairness: the target")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per case")
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--versions", default="0", help="start versions to stress: 'all' or e.g. '0,11'"
    )
    parser.add_argument(
        "--pause", type=float, default=PAUSE_MAX, help="max seconds paused before a statement"
    )
    parser.add_argument(
        "--handoff",
        type=float,
        default=HANDOFF_PAUSE_MAX,
        help="max seconds paused around the end of a transaction",
    )
    parser.add_argument("--load", type=int, default=0, help="CPU hogs running throughout")
    parser.add_argument("--catch-rate", action="store_true")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--only", nargs="*", help="catch-rate: these modules only")
    parser.add_argument("--fairness", action="store_true")
    parser.add_argument("--legacy-writer", action="store_true")
    args = parser.parse_args()
    with cpu_hogs(args.load):
        if args.catch_rate:
            catch_rate(
                trials=args.trials,
                procs=args.procs,
                seed=args.seed,
                pause=args.pause,
                handoff=args.handoff,
                only=args.only,
            )
        elif args.fairness:
            args.spec = args.spec or "tests.migrators.race_correct:TARGET"
            args.rounds = args.rounds or 40
            fairness(args)
        else:
            args.spec = args.spec or "migproof.engine.examples.jobqueue:STEPS"
            args.rounds = args.rounds or 500
            stress(args)


if __name__ == "__main__":
    main()
