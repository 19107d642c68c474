"""power-loss costs, as ratios measured in one run (print, never assert).

1. Power-loss images per second on the bundled example: choosing and building them from a
   record alone (pure), and end to end (recovered, observed, re-run and judged).
2. The cost of ``power-loss`` relative to ``crash-recovery`` on the bundled example: every
   start version in both journal modes, each check alone through ``certify``, crash-recovery
   at statements (the default) and at writes.
3. How often the broken migrators are caught, per images-per-barrier budget: the share of
   (seed, case) pairs that fail, over every case of ``tests/migrators/power_*``, and of seeds
   whose run fails at all.

Run: ``.venv/bin/python bench/bench_power.py [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from migproof.harness.cases import RunConfig
from migproof.harness.certify import Selection, run
from migproof.harness.checks import by_name
from migproof.harness.context import RunContext
from migproof.harness.crash import writes
from migproof.harness.crash.power import power_case
from migproof.harness.crash.power_images import DEFAULT_PER_BARRIER, build, images
from migproof.harness.spec import as_target, load_target

SPEC = "migproof.engine.examples.jobqueue:STEPS"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.migrators


def images_per_second(work: Path, starts: list[int]) -> None:
    ctx = RunContext(load_target(SPEC), RunConfig(spec=SPEC, seed=0, workdir=work))
    built = 0
    pure = 0.0
    judged = 0
    end_to_end = 0.0
    ops = 0
    for v in starts:
        for mode in ("delete", "wal"):
            record = writes.recorded_run(ctx, v, mode).record
            ops += len(record.ops)
            began = time.perf_counter()
            for image in images(record, seed=f"0:v{v}:{mode}"):  # power_case's seed
                build(record, image)
                built += 1
            pure += time.perf_counter() - began
            began = time.perf_counter()
            case, _ = power_case(ctx, v, mode)  # the record is cached: recovery and judging
            end_to_end += time.perf_counter() - began
            judged += len(case.images)
    print(
        f"1. images, bundled example v{starts} x both modes ({ops} recorded ops):\n"
        f"   chosen and built from the record: {built} images in {pure:.3f} s = "
        f"{built / pure:,.0f} images/s\n"
        f"   end to end (recover, observe, re-run, judge; record cached): {judged} images in "
        f"{end_to_end:.2f} s = {judged / end_to_end:.1f} images/s"
    )


def certify_time(work: Path, check: str, **config: object) -> tuple[float, int]:
    cfg = RunConfig(spec=SPEC, seed=0, workdir=work, **config)  # type: ignore[arg-type]
    began = time.perf_counter()
    report = run(load_target(SPEC), cfg, Selection((by_name()[check],)), out=io.StringIO())
    assert not report.failed, [r.detail for r in report.failed]
    return time.perf_counter() - began, len(report.results)


def relative_cost(work: Path, rounds: int) -> None:
    best: dict[str, float] = {}
    cases = 0
    for r in range(rounds):  # interleaved, best of: the machine is shared
        for label, check, config in (
            ("crash-recovery (statements)", "crash-recovery", {}),
            ("crash-recovery --crash-at writes", "crash-recovery", {"crash_at": "writes"}),
            ("power-loss", "power-loss", {}),
        ):
            took, cases = certify_time(work / f"{r}-{label[:5]}-{len(best)}", check, **config)
            best[label] = min(best.get(label, took), took)
    base = best["crash-recovery (statements)"]
    print(f"2. the bundled example, {cases} cases per check, best of {rounds} interleaved:")
    for label, took in best.items():
        print(f"   {label:34s} {took:6.2f} s  {took / base:5.2f}x crash-recovery")


def catch_rates(work: Path, seeds: int, budgets: list[int]) -> None:
    from tests.migrators import power_copy_rename, power_journal_memory, power_sync_off

    print(f"3. broken migrators, share of (seed, case) pairs caught, seeds 0..{seeds - 1}:")
    for module in (power_sync_off, power_journal_memory, power_copy_rename):
        target = as_target(module.TARGET)
        row = []
        for budget in budgets:
            caught = total = runs = 0
            for seed in range(seeds):
                before = caught
                spec = f"{module.__name__}:TARGET"
                ctx = RunContext(
                    target,
                    RunConfig(spec=spec, seed=seed, workdir=work / f"{module.__name__}-{seed}"),
                    rows=8,
                    reuse=budget != budgets[0],  # the same records for every budget
                )
                for v in range(target.head):
                    for mode in ("delete", "wal"):
                        case, _ = power_case(ctx, v, mode, per_barrier=budget)
                        total += 1
                        caught += bool(case.findings)
                runs += caught > before
            row.append(f"{budget}/barrier: cases {caught}/{total}, runs {runs}/{seeds}")
        print(f"   {target.name:22s} " + " | ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer starts, rounds and seeds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images_per_second(work / "ips", [0, 6, 11] if not args.quick else [11])
        relative_cost(work / "cost", 1 if args.quick else 2)
        budgets = sorted({2, 4, DEFAULT_PER_BARRIER, 16})
        catch_rates(work / "catch", 2 if args.quick else 5, budgets)


if __name__ == "__main__":
    main()
