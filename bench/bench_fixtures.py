"""Fixture generation: draw time per table, how it grows with tables, and what the rows hold
(print, never assert).

1. Scale: for synthetic histories (``tests/synthetic.py``, the bundled example's operation
   mix) of 10, 20 and 40 tables, the time to draw one population of the head version with
   the default row count (median of ``--seeds`` seeds), per table and as a ratio to 10 tables;
   the share of requested rows SQLite accepted (the rest were redrawn ``ATTEMPTS_PER_ROW``
   times and given up) and the candidate rows drawn per accepted one.
2. Variety, on the 40-table population: edge values (share of cells, distinct ones out of
   ``EDGE_*``), NULLs in nullable columns, values past a page, non-ASCII text, non-UNIQUE
   columns that hold a repeated value.
3. The runner's whole job on a 40-table, 30-version history: every version's fixture file
   through ``RunContext.fixture_db`` (references included), wall clock.

Run: ``.venv/bin/python bench/bench_fixtures.py [--seeds N] [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (the synthetic histories)

from migproof.engine import INTERNAL_TABLES
from migproof.engine.introspect import read_schema
from migproof.harness import dbfiles, seeded
from migproof.harness.cases import RunConfig
from migproof.harness.context import DEFAULT_ROWS, RunContext
from migproof.harness.engine_target import EngineTarget
from migproof.harness.population import template_of
from migproof.harness.strategies import build_reference
from migproof.harness.values import EDGE_BLOBS, EDGE_FLOATS, EDGE_INTEGERS, EDGE_TEXTS, LONG_TEXT

from tests.synthetic import synthetic_steps


def _key(v: object) -> tuple[str, object]:
    return ("real", struct.pack(">d", v)) if isinstance(v, float) else (type(v).__name__, v)


EDGES = {_key(v) for v in (*EDGE_INTEGERS, *EDGE_FLOATS, *EDGE_TEXTS, *EDGE_BLOBS)}


def history(tables: int) -> EngineTarget:
    return EngineTarget(synthetic_steps(tables=tables, versions=min(30, tables), seed=0))


def draw_times(tables: int, seeds: int, workdir: Path) -> tuple[float, float, float, Path]:
    """Median draw time of one head population; the share of rows accepted and the candidates
    drawn per accepted row; one fixture written from it."""
    target = history(tables)
    ref = build_reference(target, target.head, workdir / f"ref-{tables}.db", "delete")
    template = template_of(ref, exclude=INTERNAL_TABLES)
    times = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        population = seeded.populate(template, seed, min_rows=1, max_rows=DEFAULT_ROWS)
        times.append(time.perf_counter() - t0)
    # Counted on a separate draw, so the counting costs no timed run anything.
    asked = accepted = candidates = 0
    fill, candidate = seeded._TableValues.fill, seeded._TableValues.candidate

    def counting_fill(self: seeded._TableValues, rnd: object, n: int) -> list[seeded.Insert]:
        nonlocal asked, accepted
        out = fill(self, rnd, n)  # type: ignore[arg-type]
        asked, accepted = asked + n, accepted + len(out)
        return out

    def counting_candidate(self: seeded._TableValues, rnd: object, *, safe: bool) -> object:
        nonlocal candidates
        candidates += 1
        return candidate(self, rnd, safe=safe)  # type: ignore[arg-type]

    seeded._TableValues.fill = counting_fill  # type: ignore[method-assign]
    seeded._TableValues.candidate = counting_candidate  # type: ignore[assignment,method-assign]
    try:
        seeded.populate(template, 0, min_rows=1, max_rows=DEFAULT_ROWS)
    finally:
        seeded._TableValues.fill = fill  # type: ignore[method-assign]
        seeded._TableValues.candidate = candidate  # type: ignore[method-assign]
    fixture = dbfiles.copy(ref, workdir / f"fixture-{tables}.db")
    population.write(fixture)
    return statistics.median(times), accepted / asked, candidates / accepted, fixture


def variety(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        schema = read_schema(conn, exclude=INTERNAL_TABLES)
        unique = {(i.table, k) for i in schema.indexes if i.unique for k in i.keys}
        cells = edges = nulls = nullable = long_values = texts = non_ascii = 0
        hit: set[tuple[str, object]] = set()
        repeated = candidates = 0
        for t in schema.tables:
            unique |= {(t.name, c.name) for c in t.columns if c.pk}
            unique |= {(t.name, c) for u in t.uniques for c in u}
            rows = conn.execute(f'SELECT * FROM "{t.name}"').fetchall()
            for j, col in enumerate(t.columns):
                values = [r[j] for r in rows]
                if not col.notnull and not col.pk:
                    nullable += len(values)
                    nulls += values.count(None)
                present = [v for v in values if v is not None]
                cells += len(present)
                for v in present:
                    if _key(v) in EDGES:
                        edges += 1
                        hit.add(_key(v))
                    if isinstance(v, str):
                        texts += 1
                        non_ascii += any(ord(ch) > 127 for ch in v)
                    long_values += isinstance(v, str | bytes) and len(v) >= LONG_TEXT[0]
                if (t.name, col.name) not in unique and len(present) >= 5:
                    candidates += 1
                    repeated += len({_key(v) for v in present}) < len(present)
    finally:
        conn.close()
    return {
        "edge values (share of non-NULL cells)": f"{edges / cells:.1%}",
        "distinct edge values": f"{len(hit)} of {len(EDGES)}",
        "NULL in nullable columns": f"{nulls / nullable:.1%}",
        "values past a page": str(long_values),
        "non-ASCII text values": f"{non_ascii / texts:.1%}",
        "non-UNIQUE columns holding a repeated value": f"{repeated} of {candidates}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=7, help="populations drawn per size")
    parser.add_argument("--quick", action="store_true", help="sizes 10 and 20 only, 3 seeds")
    args = parser.parse_args()
    sizes = (10, 20) if args.quick else (10, 20, 40)
    seeds = 3 if args.quick else args.seeds
    with tempfile.TemporaryDirectory(prefix="bench-fixtures-") as tmp:
        work = Path(tmp)
        print(f"1. one population of the head version, rows={DEFAULT_ROWS}, median of {seeds}")
        print(
            f"{'tables':>7} {'draw':>9} {'per table':>10} {'vs 10':>6} {'rows accepted':>14} "
            f"{'candidates/row':>15}"
        )
        base = math.nan
        fixture = work
        for n in sizes:
            t, share, tries, fixture = draw_times(n, seeds, work)
            base = t if n == sizes[0] else base
            print(
                f"{n:>7} {t * 1000:>7.1f}ms {t / n * 1000:>8.2f}ms {t / base:>5.2f}x "
                f"{share:>13.1%} {tries:>15.2f}"
            )
        print(f"\n2. what the {sizes[-1]}-table population holds")
        for name, figure in variety(fixture).items():
            print(f"   {name}: {figure}")
        if args.quick:
            return
        target = EngineTarget(synthetic_steps(tables=40, versions=30, seed=0))
        config = RunConfig(spec="bench", seed=0, workdir=work / "run", journal_modes=("delete",))
        ctx = RunContext(target, config)
        t0 = time.perf_counter()
        for v in range(1, target.head + 1):
            ctx.fixture_db(v, "delete")
        wall = time.perf_counter() - t0
        print(
            f"\n3. RunContext: the fixture of every version of a 40-table, 30-version history, "
            f"references included: {wall:.1f} s ({wall / 30 * 1000:.0f} ms per version)"
        )


if __name__ == "__main__":
    main()
