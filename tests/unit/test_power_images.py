"""Power-loss images from hand-made records: barriers, what each variant keeps, and builds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from migproof.harness.crash.power_images import (
    SECTOR,
    Barrier,
    PowerImage,
    Tear,
    barriers,
    build,
    images,
)
from migproof.harness.crash.write_record import DIRECTORY, Op, OpKind, Record, replay

A, B, J = b"A" * 1024, b"B" * 1024, b"J" * 512

# A rollback-journal commit as SQLite makes it with synchronous=FULL (not EXTRA): the journal
# is synced and so is its name, the database is written and synced, the journal is unlinked
# and the directory is *not* synced again.
COMMIT = Record(
    {"": A},
    (
        Op(OpKind.CREATE, "-journal"),  # 0
        Op(OpKind.WRITE, "-journal", offset=0, data=J),  # 1
        Op(OpKind.SYNC, "-journal"),  # 2
        Op(OpKind.SYNC, DIRECTORY),  # 3
        Op(OpKind.WRITE, "", offset=0, data=B),  # 4
        Op(OpKind.SYNC, ""),  # 5
        Op(OpKind.UNLINK, "-journal"),  # 6
    ),
    {"": B},
)


def variant(record: Record, barrier: Barrier, name: str) -> PowerImage:
    [found] = [i for i in images(record, seed=0, only=[barrier.number]) if i.variant == name]
    return found


def test_a_barrier_stands_before_each_sync_that_follows_a_change_and_at_the_end() -> None:
    assert barriers(COMMIT) == (
        Barrier(0, op=2, k=2, unsynced=((1,),), unsynced_names=(0,)),
        Barrier(1, op=5, k=3, unsynced=((4,),), unsynced_names=()),
        Barrier(2, op=7, k=4, unsynced=(), unsynced_names=(6,), last=True),
    )


def test_keep_all_is_the_crash_image_and_drop_all_the_synced_state() -> None:
    b0, b1, b2 = barriers(COMMIT)
    for b in (b0, b1, b2):
        assert build(COMMIT, variant(COMMIT, b, "keep-all")) == replay(
            COMMIT.start, COMMIT.ops[: b.op]
        )
    # Before the journal's sync its name is not durable either: it may vanish.
    assert build(COMMIT, variant(COMMIT, b0, "drop-all")) == {"": A}
    # The database write before its sync is lost; the synced journal stays.
    assert build(COMMIT, variant(COMMIT, b1, "drop-all")) == {"": A, "-journal": J}
    # After the run: the unlink was never made durable, so the journal comes back -- hot. This
    # is how DELETE + synchronous=FULL rolls back a committed transaction.
    assert build(COMMIT, variant(COMMIT, b2, "drop-all")) == {"": B, "-journal": J}


def test_a_torn_write_keeps_its_first_sectors() -> None:
    _, b1, _ = barriers(COMMIT)
    torn = variant(COMMIT, b1, "torn")
    assert torn.tear == Tear(4, SECTOR)
    assert build(COMMIT, torn) == {"": B[:SECTOR] + A[SECTOR:], "-journal": J}
    assert "kept its first 512 bytes" in torn.describe(COMMIT)


def test_a_write_within_one_sector_is_lost_whole_when_torn() -> None:
    ops = (Op(OpKind.WRITE, "", offset=0, data=b"x"), Op(OpKind.WRITE, "", offset=600, data=b"y"))
    record = Record({"": A}, ops, {})
    [end] = barriers(record)
    torn = variant(record, end, "torn")
    assert (torn.tear, torn.dropped) == (None, (1,))
    assert build(record, torn) == {"": b"x" + A[1:]}


def test_a_tear_falls_on_an_absolute_sector_boundary() -> None:
    record = Record({}, (Op(OpKind.WRITE, "", offset=100, data=b"x" * 1500),), {})
    for seed in range(20):
        [torn] = [i for i in images(record, seed=seed) if i.variant == "torn"]
        assert torn.tear is not None
        assert (100 + torn.tear.kept) % SECTOR == 0
        assert 0 < torn.tear.kept < 1500


RENAME = Record(
    {"": b"old"},
    (
        Op(OpKind.CREATE, ".tmp"),  # 0
        Op(OpKind.WRITE, ".tmp", offset=0, data=b"new"),  # 1
        Op(OpKind.RENAME, ".tmp", to=""),  # 2
    ),
    {"": b"new"},
)


def test_a_rename_without_syncs_may_be_undone_or_land_without_its_data() -> None:
    [end] = barriers(RENAME)
    assert (end.unsynced, end.unsynced_names) == (((1,),), (0, 2))
    everything = frozenset({1})
    assert build(RENAME, PowerImage(end, "keep-all", everything, 2)) == {"": b"new"}
    assert build(RENAME, PowerImage(end, "drop-all", frozenset(), 0)) == {"": b"old"}
    # The rename reached the disk, the copy's data did not: the database is an empty file.
    lost = variant(RENAME, end, "names-only")
    assert (lost.kept, lost.kept_names) == (frozenset(), 2)
    assert build(RENAME, lost) == {"": b""}
    assert "lost 1 of 1 unsynced writes" in lost.describe(RENAME)
    # Only the create: the old database, and an empty temporary file beside it.
    assert build(RENAME, PowerImage(end, "prefix", everything, 1)) == {"": b"old", ".tmp": b"new"}


def test_a_copy_takes_what_the_page_cache_held_not_what_reached_the_disk() -> None:
    record = Record(
        {"": b"abcdef"},
        (
            Op(OpKind.CREATE, ".tmp"),  # 0
            Op(OpKind.COPY, ".tmp", offset=0, size=6, source=""),  # 1
            Op(OpKind.WRITE, "", offset=0, data=b"XY"),  # 2
            Op(OpKind.SYNC, ".tmp"),  # 3
            Op(OpKind.SYNC, DIRECTORY),  # 4
        ),
        {"": b"XYcdef", ".tmp": b"abcdef"},
    )
    end = barriers(record)[-1]
    assert (end.unsynced, end.unsynced_names) == (((2,),), ())
    assert build(record, PowerImage(end, "drop-all", frozenset(), 0)) == {
        "": b"abcdef",
        ".tmp": b"abcdef",
    }


def test_a_sync_of_one_file_leaves_the_others_unsynced() -> None:
    record = Record(
        {"": b"a", "-wal": b""},
        (
            Op(OpKind.WRITE, "-wal", offset=0, data=b"w"),  # 0
            Op(OpKind.WRITE, "", offset=0, data=b"d"),  # 1
            Op(OpKind.SYNC, "-wal"),  # 2
        ),
        {"": b"d", "-wal": b"w"},
    )
    end = barriers(record)[-1]
    assert end.unsynced == ((1,),)
    assert build(record, PowerImage(end, "drop-all", frozenset(), 0)) == {"": b"a", "-wal": b"w"}


def test_images_are_bounded_distinct_and_deterministic_per_barrier() -> None:
    ops = tuple(Op(OpKind.WRITE, "", offset=i * 4096, data=b"p" * 4096) for i in range(8))
    record = Record({"": b""}, ops, {})
    first = images(record, seed=3, per_barrier=5)
    assert len(first) == 5
    assert len({(i.kept, i.kept_names, i.tear) for i in first}) == 5
    # No directory op is unsynced here: names-only is drop-all, made once.
    assert [i.variant for i in first[:3]] == ["keep-all", "drop-all", "torn"]
    assert images(record, seed=3, per_barrier=5) == first
    assert images(record, seed=4, per_barrier=5) != first
    assert images(record, seed=3, per_barrier=1) == first[:1]


def test_a_barrier_replayed_alone_gets_the_images_it_got_in_the_whole_run() -> None:
    whole = images(COMMIT, seed="s")
    for b in barriers(COMMIT):
        assert images(COMMIT, seed="s", only=[b.number]) == [
            i for i in whole if i.barrier.number == b.number
        ]


def test_a_budget_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        images(COMMIT, seed=0, per_barrier=0)


# --- properties over generated runs -------------------------------------------------------------

NAMES = ("", "-journal", ".tmp")


@st.composite
def runs(draw: st.DrawFn) -> Record:
    ops: list[Op] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(list(OpKind)))
        name = draw(st.sampled_from(NAMES))
        if kind is OpKind.WRITE:
            data = draw(st.binary(min_size=1, max_size=1200))
            ops.append(Op(kind, name, offset=draw(st.integers(0, 2000)), data=data))
        elif kind is OpKind.TRUNCATE:
            ops.append(Op(kind, name, size=draw(st.integers(0, 3000))))
        elif kind is OpKind.RENAME:
            ops.append(Op(kind, name, to=draw(st.sampled_from(NAMES))))
        elif kind is OpKind.COPY:
            source = draw(st.sampled_from(NAMES))
            ops.append(Op(kind, name, offset=draw(st.integers(0, 100)), size=50, source=source))
        elif kind is OpKind.SYNC:
            ops.append(Op(kind, draw(st.sampled_from((*NAMES, DIRECTORY)))))
        else:
            ops.append(Op(kind, name))
    start = {"": draw(st.binary(max_size=600))}
    return Record(start, tuple(ops), replay(start, ops))


@given(runs(), st.integers(0, 3))
def test_keep_all_at_every_barrier_is_the_replay_up_to_it(record: Record, seed: int) -> None:
    for image in images(record, seed=seed):
        if image.variant == "keep-all":
            assert build(record, image) == replay(record.start, record.ops[: image.barrier.op])


@given(runs(), st.integers(0, 3))
def test_a_run_that_ends_fully_synced_loses_nothing_at_its_end(record: Record, seed: int) -> None:
    ops = (*record.ops, *(Op(OpKind.SYNC, n) for n in NAMES), Op(OpKind.SYNC, DIRECTORY))
    synced = Record(record.start, ops, record.end)
    for image in images(synced, seed=seed):
        if image.barrier.last:
            assert build(synced, image) == dict(record.end)
