"""Race figures: a stress run of a target, and how reliably broken migrators are caught.

    python bench/bench_race.py                      # stress: the bundled example, 500 rounds
    python bench/bench_race.py --rounds 50 --versions all
    python bench/bench_race.py --catch-rate --trials 25 --procs 4

Stress: for each selected case (start version x journal mode) the ``race`` check's own
rounds run -- R plain rounds of P processes and ceil(R/4) mixed rounds with a live writer --
and the script prints rounds, processes, wall time and the cost per round and per process
start. Catch rate: each broken race_* migrator is raced ``--trials`` single rounds per case;
a round "catches" when it yields a finding. Both print plain text; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the race_* migrators live in tests/migrators

from migproof.harness.cases import RunConfig  # noqa: E402
from migproof.harness.checks.race import CHECK, CaseRace  # noqa: E402
from migproof.harness.context import RunContext  # noqa: E402
from migproof.harness.race import PAUSE_MAX  # noqa: E402
from migproof.harness.spec import load_target  # noqa: E402

BROKEN = (  # (module, plain or mixed rounds)
    ("race_stale_version", "r"),
    ("race_deferred_begin", "r"),
    ("race_deferred_timeout", "r"),
    ("race_swallow", "r"),
    ("race_ledger_stale", "r"),
    ("race_refuse_early", "r"),
    ("race_lost_writes", "m"),
)


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
            ctx.fixture_db(case.from_version or 0, case.journal_mode or "delete")
            began = time.monotonic()
            race = CaseRace.prepare(ctx, case)
            if isinstance(race, str):
                print(f"  {case.id}: {race}")
                failures += 1
                continue
            per_round: list[float] = []
            mixed_rows = 0
            for label in race.labels(args.rounds):
                result, findings = race.round(label, procs=args.procs, pause=args.pause)
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


def catch_rate(args: argparse.Namespace) -> None:
    print(
        f"catch rate: {args.trials} single rounds per case, {args.procs} processes per round, "
        f"pauses up to {args.pause * 1e6:.0f} us"
    )
    for module, kind in BROKEN:
        if args.only and module not in args.only:
            continue
        target = load_target(f"tests.migrators.{module}:TARGET")
        with tempfile.TemporaryDirectory() as tmp:
            ctx = RunContext(target, RunConfig(module, args.seed, Path(tmp)))
            rates: list[tuple[str, float]] = []
            began = time.monotonic()
            for case in CHECK.cases(ctx):
                race = CaseRace.prepare(ctx, case)
                if isinstance(race, str) or (kind == "m" and race.plan is None):
                    continue
                caught = sum(
                    bool(race.round(f"{kind}{k}", procs=args.procs, pause=args.pause)[1])
                    for k in range(args.trials)
                )
                rates.append((case.id, caught / args.trials))
            wall = time.monotonic() - began
        worst_id, worst = min(rates, key=lambda r: r[1])
        mean = statistics.mean(r for _, r in rates)
        # The chance a case with R rounds misses the bug, from the worst case's per-round rate.
        miss = {r: (1 - worst) ** r for r in (2, 4, 8)}
        print(
            f"  {module}: per-round catch rate mean {mean:.0%}, worst {worst:.0%} ({worst_id}); "
            f"worst case missed with 2/4/8 rounds: "
            + "/".join(f"{m:.1%}" for m in miss.values())
            + f" [{wall:.0f} s]"
        )


def _versions(text: str) -> set[int]:
    return {int(v) for v in text.split(",")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default="migproof.engine.examples.jobqueue:STEPS")
    parser.add_argument("--rounds", type=int, default=500, help="plain rounds per case")
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--versions", default="0", help="start versions to stress: 'all' or e.g. '0,11'"
    )
    parser.add_argument(
        "--pause", type=float, default=PAUSE_MAX, help="max seconds paused before a statement"
    )
    parser.add_argument("--catch-rate", action="store_true")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--only", nargs="*", help="catch-rate: these race_* modules only")
    args = parser.parse_args()
    if args.catch_rate:
        catch_rate(args)
    else:
        stress(args)


if __name__ == "__main__":
    main()
