"""Power-loss images of a recorded run: what the disk may hold when the machine dies. Pure.

A killed process leaves every write that returned in the kernel's page cache, so its crash
images are prefixes of the run's writes (``write_record``). A power cut, a kernel panic or a
VM reset keeps only what reached the disk, and only ``fsync``/``fdatasync`` says what did.
This module builds those states offline from the same record, the way ALICE (Pillai et al.,
OSDI 2014, "All File Systems Are Not Created Equal") and CrashMonkey (Mohan et al., OSDI 2018)
do: record once, then enumerate the states a crash may leave, as data.

Theory of operation
===================

The model is POSIX's promise, which is also what SQLite assumes of the disk
(sqlite.org/atomiccommit.html, section 2, "Hardware Assumptions"), made concrete:

1. **A write is durable once its file is synced.** ``fsync`` or ``fdatasync`` of a file makes
   every earlier write, truncation and copy into *that file* durable (fdatasync keeps the size
   too: it is needed to read the data back). Nothing else is promised: writes not yet synced
   may be lost, and the page cache writes them back in any order ("SQLite further assumes that
   write operations will be reordered by the operating system", atomiccommit.html 2), so any
   subset of them may survive -- independently per file.
2. **A write may tear at a sector boundary.** SQLite does not assume a sector write is atomic,
   only that it is *linear* (atomiccommit.html 2) and, by default, that power loss does not
   damage bytes outside the write (``SQLITE_IOCAP_POWERSAFE_OVERWRITE``). So a torn write keeps
   its first sectors and loses the rest: a tear at a 512-byte boundary (``SECTOR``) inside it.
3. **A name is durable once its directory is synced.** Creating, unlinking and renaming a
   file changes the directory, which only an ``fsync`` of the directory makes durable (ALICE
   3.1; SQLite syncs the directory after creating a journal or WAL, and after deleting a
   journal only with ``synchronous=EXTRA`` -- which is why DELETE + ``FULL`` can roll back a
   committed transaction, CONTEXT.md section 3). Directory operations persist in the order
   they were made (ALICE's model of ext4's ordered metadata journal): a *prefix* of those not
   yet synced. A file created and never dir-synced may vanish; one unlinked may come back,
   with whatever of its data was durable; a rename may be undone.

Files are inodes under names: writes land on the inode a name pointed to when they were made,
so a dropped rename leaves the old file under the name and the new one's data nowhere.

A **barrier** is the moment just before a sync (and the end of the run): there, the most
writes are unsynced. A power cut anywhere between two syncs leaves a state that some choice
at the next barrier also leaves (the writes after the cut are among the ones that choice
drops), so barriers lose no state and are far fewer than writes. At each barrier ``images``
chooses, deterministically from a seed and the barrier's number:

============  ==============================================================================
variant       what reaches the disk besides what was synced
============  ==============================================================================
keep-all      every unsynced write and directory operation -- the write-level crash image
              at the same point (a test proves it)
drop-all      nothing: the synced state alone
names-only    every directory operation, no unsynced write: a journal created but empty, a
              rename that landed before the data it renames (ext4's zero-length files)
torn          everything, except that the last unsynced write that spans a sector boundary
              keeps only its first sectors (or the last write is lost, if none spans one)
prefix        per file, its first j unsynced writes (j seeded), and a seeded prefix of the
              directory operations
subset        per write, a seeded coin; a seeded prefix of the directory operations
============  ==============================================================================

``per_barrier`` bounds the variants (the four fixed ones first, then prefix and subset in
turn); identical choices are made once. Not modelled: bit flips, garbage in space a file
grew into (SQLite's journal and WAL checksums guard against it), lying disks that ignore
``fsync``, and file systems that persist less than POSIX's ``fsync`` (ext2, or ``nobarrier``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .write_record import DIRECTORY, Files, Op, OpKind, Record, apply, copied

SECTOR: Final = 512  # bytes: the unit a write tears at (the smallest sector size in use)
VARIANTS: Final = ("keep-all", "drop-all", "names-only", "torn", "prefix", "subset")
DEFAULT_PER_BARRIER: Final = 8  # the four fixed variants, two seeded prefixes, two subsets
# What the certificate records as the model (docs/certify.md, "Power loss").
MODEL: Final = (
    "a cut before every sync and at the end; up to power_images images per cut: "
    "unsynced writes all kept, all lost, only the directory's changes kept, the last write "
    f"torn at a {SECTOR}-byte sector, seeded prefixes and subsets per file; file names durable "
    "only after a directory sync"
)
_DATA: Final = (OpKind.WRITE, OpKind.TRUNCATE, OpKind.COPY)
_SHOWN: Final = 3  # ops named per finding; the rest are counted


@dataclass(frozen=True, slots=True)
class Barrier:
    """Just before ``ops[op]``, a sync (``op == len(ops)``: the run has ended)."""

    number: int  # b<number> in case ids and findings
    op: int  # ops[:op] have been made
    k: int  # the write-level crash point whose image shows the same files
    unsynced: tuple[tuple[int, ...], ...]  # per file (inode): its data ops not yet synced
    unsynced_names: tuple[int, ...]  # directory ops (create, unlink, rename) not yet synced
    last: bool = False  # the end of the run: the migrator has returned

    @property
    def unsynced_ops(self) -> tuple[int, ...]:
        return tuple(sorted(i for group in self.unsynced for i in group))

    def where(self, record: Record) -> str:
        if self.last:
            return f"b{self.number} (after the run ended, k={self.k})"
        return f"b{self.number} (before {record.ops[self.op].describe()}, k={self.k})"


@dataclass(frozen=True, slots=True)
class Tear:
    op: int  # the write torn
    kept: int  # its first bytes that reach the disk, up to a sector boundary


@dataclass(frozen=True, slots=True)
class PowerImage:
    """One choice of what survives a power cut at a barrier (``build`` makes its files)."""

    barrier: Barrier
    variant: str  # one of VARIANTS
    kept: frozenset[int]  # unsynced data ops that reach the disk (the torn one excluded)
    kept_names: int  # how many of the unsynced directory ops reach the disk, in order
    tear: Tear | None = None

    @property
    def dropped(self) -> tuple[int, ...]:
        torn = self.tear.op if self.tear is not None else -1
        return tuple(i for i in self.barrier.unsynced_ops if i not in self.kept and i != torn)

    @property
    def lost_names(self) -> tuple[int, ...]:
        return self.barrier.unsynced_names[self.kept_names :]

    def describe(self, record: Record) -> str:
        """``b3 (before (fdatasync db, pid 7), k=17) subset: lost 2 of 5 unsynced writes: ...``"""
        parts = [f"{self.barrier.where(record)} {self.variant}"]
        total = len(self.barrier.unsynced_ops)
        if self.dropped:
            parts.append(
                f"lost {len(self.dropped)} of {total} unsynced writes: {_ops(record, self.dropped)}"
            )
        if self.tear is not None:
            op = record.ops[self.tear.op]
            parts.append(f"torn: {op.describe()} kept its first {self.tear.kept} bytes")
        if self.lost_names:
            parts.append(f"not in the directory yet: {_ops(record, self.lost_names)}")
        if len(parts) == 1:
            parts.append("nothing lost" if total or self.barrier.unsynced_names else "all synced")
        return "; ".join(parts)


def _ops(record: Record, indexes: Sequence[int]) -> str:
    shown = ", ".join(record.ops[i].describe() for i in indexes[:_SHOWN])
    more = len(indexes) - _SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


# --- barriers -------------------------------------------------------------------------------------


class _Names:
    """Names -> inodes as the run changes them; inodes are numbered in order of appearance."""

    def __init__(self, start: Files) -> None:
        self.names = {name: n for n, name in enumerate(sorted(start))}
        self.count = len(self.names)

    def apply(self, op: Op) -> tuple[int | None, bool]:
        """(the inode a non-sync op acts on, whether it changed the directory)."""
        if op.kind is OpKind.UNLINK:
            gone = self.names.pop(op.file, None)
            return gone, gone is not None
        if op.kind is OpKind.RENAME:
            moved = self.names.pop(op.file, None)
            if moved is not None:
                self.names[op.to] = moved
            return moved, moved is not None
        known = self.names.get(op.file)
        if known is not None:
            return known, False
        # A create -- or a write to a name not seen yet, which ``apply`` creates too.
        self.names[op.file] = self.count
        self.count += 1
        return self.count - 1, True


def barriers(record: Record) -> tuple[Barrier, ...]:
    """Every barrier of the run: before each sync that follows a change, and the end."""
    ops = record.ops
    names = _Names(record.start)
    pending: dict[int, list[int]] = {}  # inode -> data ops since its last sync
    pending_names: list[int] = []
    out: list[Barrier] = []
    k = 0
    changed = False

    def barrier(at: int, *, last: bool = False) -> Barrier:
        groups = tuple(sorted((tuple(g) for g in pending.values() if g), key=lambda g: g[0]))
        return Barrier(len(out), at, k, groups, tuple(pending_names), last)

    for i, op in enumerate(ops):
        if op.kind is OpKind.SYNC:
            if changed:
                out.append(barrier(i))
                changed = False
            if op.file == DIRECTORY:
                pending_names.clear()
            elif op.file in names.names:
                pending.pop(names.names[op.file], None)
            continue
        k += 1
        changed = True
        inode, renamed = names.apply(op)
        if renamed:
            pending_names.append(i)
        if op.kind in _DATA and inode is not None:
            pending.setdefault(inode, []).append(i)
    out.append(barrier(len(ops), last=True))
    return tuple(out)


# --- choosing images ------------------------------------------------------------------------------


def images(
    record: Record,
    *,
    seed: int | str,
    per_barrier: int = DEFAULT_PER_BARRIER,
    only: Sequence[int] | None = None,
) -> list[PowerImage]:
    """Up to ``per_barrier`` distinct images at each barrier (``only``: those numbers).

    Deterministic: the choices at barrier b depend on ``seed``, b and the record alone, so one
    barrier replayed alone gets the images it got in the whole run.
    """
    if per_barrier < 1:
        raise ValueError("per_barrier must be at least 1")
    out: list[PowerImage] = []
    for b in barriers(record):
        if only is None or b.number in only:
            out.extend(_at(record, b, random.Random(f"{seed}:b{b.number}"), per_barrier))
    return out


def _at(record: Record, b: Barrier, rng: random.Random, budget: int) -> list[PowerImage]:
    every = frozenset(b.unsynced_ops)
    names = len(b.unsynced_names)
    choices: list[PowerImage] = [PowerImage(b, "keep-all", every, names)]
    if every or names:
        choices.append(PowerImage(b, "drop-all", frozenset(), 0))
        choices.append(PowerImage(b, "names-only", frozenset(), names))
        choices.append(_torn(record, b, rng))
        for n in range(budget):
            if n % 2 == 0:
                kept = frozenset(i for g in b.unsynced for i in g[: rng.randint(0, len(g))])
                choices.append(PowerImage(b, "prefix", kept, rng.randint(0, names)))
            else:
                kept = frozenset(i for i in b.unsynced_ops if rng.random() < 0.5)
                choices.append(PowerImage(b, "subset", kept, rng.randint(0, names)))
    out: list[PowerImage] = []
    seen: set[tuple[frozenset[int], int, Tear | None]] = set()
    for c in choices:
        key = (c.kept, c.kept_names, c.tear)
        if key not in seen and len(out) < budget:
            seen.add(key)
            out.append(c)
    return out


def _torn(record: Record, b: Barrier, rng: random.Random) -> PowerImage:
    writes = [i for i in b.unsynced_ops if record.ops[i].kind in (OpKind.WRITE, OpKind.COPY)]
    every = frozenset(b.unsynced_ops)
    names = len(b.unsynced_names)
    for i in reversed(writes):
        op = record.ops[i]
        start = max(op.offset, 0)
        length = len(op.data) if op.kind is OpKind.WRITE else op.size
        first = (start // SECTOR + 1) * SECTOR  # the first boundary after the write's start
        cuts = range(first - start, length, SECTOR)
        if cuts:
            return PowerImage(b, "torn", every - {i}, names, Tear(i, rng.choice(cuts)))
    if writes:  # no write spans a boundary: the last one is lost whole
        return PowerImage(b, "torn", every - {writes[-1]}, names)
    return PowerImage(b, "torn", every, names)


# --- building an image ----------------------------------------------------------------------------


def build(record: Record, image: PowerImage) -> dict[str, bytes]:
    """The files on disk after the power cut ``image`` describes."""
    b = image.barrier
    unsynced = set(b.unsynced_ops)
    lost_names = set(image.lost_names)
    names = _Names(record.start)
    # The directory ops that reach the disk are a prefix of them all (every one before the last
    # directory sync, then the kept ones), so the disk's names are the visible names as they
    # were after the last of them.
    disk_names = dict(names.names)
    seen = {n: bytearray(record.start[name]) for name, n in names.names.items()}
    disk = {n: bytearray(buf) for n, buf in seen.items()}
    for i, op in enumerate(record.ops[: b.op]):
        if op.kind is OpKind.SYNC:
            continue
        if op.kind is OpKind.COPY:  # what the page cache held then, not the disk
            data = copied({name: seen[n] for name, n in names.names.items()}, op)
        else:
            data = op.data
        inode, renamed = names.apply(op)
        if renamed and i not in lost_names:
            disk_names = dict(names.names)
        if inode is not None and inode not in seen:
            seen[inode], disk[inode] = bytearray(), bytearray()
        if inode is None or op.kind not in _DATA:
            continue
        _put(seen[inode], op, data)
        if i not in unsynced or i in image.kept:
            _put(disk[inode], op, data)
        elif image.tear is not None and image.tear.op == i:
            _put(disk[inode], op, data[: image.tear.kept])
    return {name: bytes(disk[n]) for name, n in sorted(disk_names.items())}


def _put(buf: bytearray, op: Op, data: bytes) -> None:
    """``op`` made on one file's bytes, with ``data`` as what it writes (a copy's, a tear's)."""
    if op.kind is not OpKind.TRUNCATE:
        op = Op(OpKind.WRITE, op.file, offset=op.offset, data=data)
    apply({op.file: buf}, op)
