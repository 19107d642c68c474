from __future__ import annotations

import pytest
from migproof.harness.cases import Case, Shard

CASES = [Case("fresh-equivalence", v, 12) for v in range(12)] + [
    Case("crash-recovery", v, 12, mode, "k0-39") for v in range(12) for mode in ("delete", "wal")
]


def test_case_ids_are_readable() -> None:
    assert Case("crash-recovery", 3, 12, "wal", "k0-19").id == "crash-recovery[v3->v12,wal,k0-19]"
    assert Case("newer-refused").id == "newer-refused"


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_partition_the_cases(count: int) -> None:
    picked = [c for i in range(1, count + 1) for c in Shard(i, count).select(CASES)]
    assert sorted(picked, key=lambda c: c.id) == sorted(CASES, key=lambda c: c.id)


def test_adding_a_case_moves_no_other_case() -> None:
    shard = Shard(2, 3)
    before = shard.select(CASES)
    after = shard.select([*CASES, Case("fresh-equivalence", 12, 13)])
    assert [c for c in after if c in CASES] == before


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "2", "1/0"])
def test_bad_shard_specs_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="I/N"):
        Shard.parse(text)
