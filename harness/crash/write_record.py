"""A recorded run's writes to a database's files, and the crash images they imply. Pure.

One uninterrupted migration is recorded once (``writes`` runs it under ``strace``); crash
states are then built offline, ALICE/CrashMonkey style (CONTEXT.md §4): crash image k is the
files as they were before the run with the first k *mutating* operations applied. A process
killed there leaves exactly that: a SIGKILL loses the process's memory, never the kernel's
page cache, so every write() that returned is in the file. (Power loss, which can also drop
unsynced writes or tear them, is built from the same record by keeping its syncs.)

The record
==========

``Record.start`` and ``Record.end`` are the files before and after the run, ``{suffix: bytes}``
with suffix ``""`` for the database, ``"-journal"`` and ``"-wal"``, and any other file in the
database's folder whose name starts with the database's (``state.db.tmp`` is ``".tmp"``: a
migrator that migrates a copy and renames it over the original), but never a ``-shm`` (recovery
rebuilds it, and SQLite maps it into memory, so its writes are not system calls). A file that
does not exist is absent from the mapping. ``Record.ops`` is every operation on those files
and on their directory, in the order the kernel saw them, over every process and thread of
the run (``strace -f``):

==========  ============================================  ================================
kind        fields                                        from
==========  ============================================  ================================
create      file                                          openat(O_CREAT) -- a no-op if it
                                                          exists
truncate    file, size                                    ftruncate, openat(O_TRUNC)
write       file, offset (-1: at the end), data           pwrite64, write, writev, pwritev
unlink      file                                          unlink, unlinkat
rename      file, to                                      rename, renameat, renameat2
copy        file, offset, size, source, source_offset     sendfile, copy_file_range (the
                                                          kernel copies: no data to show)
sync        file ("/" for the directory), data_only       fsync, fdatasync
==========  ============================================  ================================

Each op also keeps ``pid`` and the ``syscall`` it came from. Writes through a descriptor whose
file was unlinked meanwhile (strace marks it "(deleted)") change no visible file and are left
out. ``Record.save(folder)`` writes ``record.jsonl`` (a header line, then one JSON object per
op, data in hex) beside ``start/`` and ``end/`` folders holding the files; ``Record.load``
reads it back.

Validation: applying every op to ``start`` must give ``end`` byte for byte. It does not when the
run wrote in a way the record cannot see (through ``mmap``, a descriptor opened before the
recording, a path not traced, a string longer than strace's limit); ``problems`` then says
why, and no crash image of that record is trusted -- the case is skipped, never judged.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Final

Files = Mapping[str, bytes]  # suffix ("", "-journal", "-wal", ".tmp"...) -> bytes

DIRECTORY: Final = "/"  # the ``file`` of a directory sync
FORMAT: Final = "migproof-write-record"
FORMAT_VERSION: Final = 1
# What strace must record: every call that opens, writes, truncates, syncs, removes or renames
# a file (lseek and close keep the offsets of plain write() calls right).
SYSCALLS: Final = (
    "openat,open,creat,write,pwrite64,writev,pwritev,pwritev2,ftruncate,truncate,fsync,"
    "fdatasync,unlink,unlinkat,rename,renameat,renameat2,lseek,close,sendfile,copy_file_range"
)
_UNTRACKED: Final = "-shm"  # a file named after the database that is never recorded


class OpKind(Enum):
    CREATE = "create"
    TRUNCATE = "truncate"
    WRITE = "write"
    UNLINK = "unlink"
    RENAME = "rename"
    COPY = "copy"
    SYNC = "sync"


@dataclass(frozen=True, slots=True)
class Op:
    kind: OpKind
    file: str  # a suffix ("", "-journal", ".tmp"...), or DIRECTORY for a directory sync
    pid: int = 0
    syscall: str = ""
    offset: int = 0  # write: where (-1: at the end of the file, O_APPEND)
    data: bytes = b""  # write
    size: int = 0  # truncate: the new size; copy: bytes copied
    to: str = ""  # rename: the suffix it becomes
    data_only: bool = False  # sync: fdatasync
    source: str = ""  # copy: the file read
    source_offset: int = 0  # copy: where it was read from

    @property
    def mutates(self) -> bool:
        return self.kind is not OpKind.SYNC

    def describe(self) -> str:
        """``pwrite64 state.db-journal [0, +512)`` -- how a finding names its crash point."""
        name = f"db{self.file}" if self.file != DIRECTORY else "the directory"
        what = {
            OpKind.WRITE: f"{name} [{self.offset}, +{len(self.data)})"
            if self.offset >= 0
            else f"{name} (append +{len(self.data)})",
            OpKind.TRUNCATE: f"{name} to {self.size} bytes",
            OpKind.RENAME: f"{name} -> db{self.to}",
            OpKind.COPY: f"{name} [{self.offset}, +{self.size}) from db{self.source} "
            f"[{self.source_offset}, +{self.size})",
        }.get(self.kind, name)
        return f"({self.syscall} {what}, pid {self.pid})"


@dataclass(frozen=True, slots=True)
class Record:
    start: Files
    ops: tuple[Op, ...]
    end: Files
    problems: tuple[str, ...] = field(default=())

    def mutating(self) -> list[int]:
        """Indexes of the ops that change a file: crash point k is before the k-th of them."""
        return [i for i, op in enumerate(self.ops) if op.mutates]

    def problem(self) -> str | None:
        """Why this record cannot be trusted, or None: parse problems, then replay."""
        if self.problems:
            return "; ".join(self.problems[:3])
        replayed = replay(self.start, self.ops)
        if replayed != dict(self.end):
            return "replaying the record does not reproduce the run's end state: " + _differ(
                replayed, self.end
            )
        return None

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, files in (("start", self.start), ("end", self.end)):
            (folder / name).mkdir(exist_ok=True)
            for suffix, data in files.items():
                (folder / name / f"db{suffix}").write_bytes(data)
        with (folder / "record.jsonl").open("w", encoding="utf-8") as out:
            header = {"format": FORMAT, "version": FORMAT_VERSION, "problems": list(self.problems)}
            out.write(json.dumps(header) + "\n")
            for op in self.ops:
                out.write(json.dumps(_op_json(op)) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Record:
        lines = (folder / "record.jsonl").read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise ValueError(f"{folder / 'record.jsonl'} is not a {FORMAT} v{FORMAT_VERSION}")
        ops = tuple(_op_from_json(json.loads(line)) for line in lines[1:])

        return cls(
            read_files(folder / "start" / "db"),
            ops,
            read_files(folder / "end" / "db"),
            tuple(header.get("problems", ())),
        )


def tracked(db_name: str, name: str) -> str | None:
    """The suffix a file called ``name`` beside the database ``db_name`` is recorded as, or None."""
    if not name.startswith(db_name) or name.endswith(_UNTRACKED):
        return None
    return name[len(db_name) :]


def read_files(db: Path) -> dict[str, bytes]:
    """The database at ``db`` and every file beside it that a record holds, by suffix.

    Only for files no connection of this process has open (reading closes a descriptor).
    """
    out: dict[str, bytes] = {}
    if not db.parent.is_dir():
        return out
    for path in sorted(db.parent.iterdir()):
        suffix = tracked(db.name, path.name)
        if suffix is not None and path.is_file():
            out[suffix] = path.read_bytes()
    return out


def _op_json(op: Op) -> dict[str, object]:
    out: dict[str, object] = {
        "op": op.kind.value,
        "file": op.file,
        "pid": op.pid,
        "syscall": op.syscall,
    }
    if op.kind is OpKind.WRITE:
        out.update(offset=op.offset, data=op.data.hex())
    elif op.kind is OpKind.TRUNCATE:
        out["size"] = op.size
    elif op.kind is OpKind.RENAME:
        out["to"] = op.to
    elif op.kind is OpKind.COPY:
        out.update(offset=op.offset, size=op.size, source=op.source, source_offset=op.source_offset)
    elif op.kind is OpKind.SYNC:
        out["data_only"] = op.data_only
    return out


def _op_from_json(raw: dict[str, object]) -> Op:
    return Op(
        OpKind(str(raw["op"])),
        str(raw["file"]),
        int(str(raw.get("pid", 0))),
        str(raw.get("syscall", "")),
        offset=int(str(raw.get("offset", 0))),
        data=bytes.fromhex(str(raw.get("data", ""))),
        size=int(str(raw.get("size", 0))),
        to=str(raw.get("to", "")),
        data_only=bool(raw.get("data_only", False)),
        source=str(raw.get("source", "")),
        source_offset=int(str(raw.get("source_offset", 0))),
    )


# --- applying ops -------------------------------------------------------------------------------


def apply(files: dict[str, bytearray], op: Op) -> None:
    """Apply one op to ``files`` in place (what the kernel did to the visible files)."""
    if op.kind is OpKind.CREATE:
        files.setdefault(op.file, bytearray())
    elif op.kind in (OpKind.WRITE, OpKind.COPY):
        data = op.data if op.kind is OpKind.WRITE else copied(files, op)
        buf = files.setdefault(op.file, bytearray())
        at = len(buf) if op.offset < 0 else op.offset
        if at > len(buf):
            buf.extend(bytes(at - len(buf)))  # a hole reads as zeros
        buf[at : at + len(data)] = data
    elif op.kind is OpKind.TRUNCATE:
        buf = files.setdefault(op.file, bytearray())
        if op.size < len(buf):
            del buf[op.size :]
        else:
            buf.extend(bytes(op.size - len(buf)))
    elif op.kind is OpKind.UNLINK:
        files.pop(op.file, None)
    elif op.kind is OpKind.RENAME:
        moved = files.pop(op.file, None)
        if moved is not None:
            files[op.to] = moved


def copied(files: Mapping[str, bytearray | bytes], op: Op) -> bytes:
    """The bytes a copy op reads from its source as the files are now."""
    source = files.get(op.source, b"")
    return bytes(source[op.source_offset : op.source_offset + op.size])


def replay(start: Files, ops: Sequence[Op]) -> dict[str, bytes]:
    files = {s: bytearray(b) for s, b in start.items()}
    for op in ops:
        apply(files, op)
    return {s: bytes(b) for s, b in files.items()}


def _differ(found: Files, expected: Files) -> str:
    for suffix in sorted(set(found) | set(expected)):
        a, b = found.get(suffix), expected.get(suffix)
        if a == b:
            continue
        name = f"db{suffix}"
        if a is None or b is None:
            return f"{name} {'absent' if a is None else 'present'} after the replay, {'absent' if b is None else 'present'} after the run"
        if len(a) != len(b):
            return f"{name} is {len(a)} bytes after the replay, {len(b)} after the run"
        first = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
        return f"{name} differs from byte {first} (a write the record did not see)"
    return "no difference"


# --- parsing strace -f -y -xx output ------------------------------------------------------------

_LINE: Final = re.compile(r"^(\d+)\s+(.*)$")
_RESUMED: Final = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
_UNFINISHED: Final = " <unfinished ...>"
# "args) = result"; a call resumed after another process's line has its result padded into a
# column ("<... fsync resumed>)              = 0"). Strings are hex, so the last ")" before
# "=" is the call's own.
_RETURNED: Final = re.compile(r"^(.*)\)\s+= (.*)$")
_FD: Final = re.compile(r"^(-?\d+|AT_FDCWD)(?:<(.*)>)?$")
_HEX: Final = re.compile(r"\\x([0-9a-f]{2})")
_PUNCTUATION: Final = re.compile(r"[,\[\]{}]")
_POINTER: Final = re.compile(r"\[(\d+)\]")  # an offset passed by pointer: "[0] => [4096]"
_DELETED: Final = " (deleted)"


def _unhex(text: str) -> bytes:
    """A strace -xx string (``\\x2f\\x74``) as bytes; anything but the escapes is ignored."""
    if text.startswith("\\x"):  # the common case, fast: a write's data is megabytes of them
        with contextlib.suppress(ValueError):
            return bytes.fromhex(text.replace("\\x", ""))
    return bytes.fromhex("".join(_HEX.findall(text)))


def _split(args: str) -> list[str]:
    """Top-level comma-separated arguments (strings are hex, so hold no commas or brackets)."""
    out: list[str] = []
    depth = 0
    begin = 0
    for m in _PUNCTUATION.finditer(args):
        ch = m.group()
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif depth == 0:
            out.append(args[begin : m.start()].strip())
            begin = m.end()
    if args[begin:]:
        out.append(args[begin:].strip())
    return out


def _string(arg: str) -> tuple[bytes, bool]:
    """(bytes, truncated) of a quoted strace string argument."""
    truncated = arg.endswith("...")
    body = arg[:-3] if truncated else arg
    return _unhex(body.strip('"')), truncated


class _Parser:
    def __init__(self, db: Path) -> None:
        self.folder, self.name = os.path.split(os.path.realpath(db))
        self.offsets: dict[tuple[int, int], int] = {}  # (pid, fd) -> offset; -1 appends
        self.ops: list[Op] = []
        self.problems: list[str] = []

    def role(self, path: str) -> str | None:
        folder, name = os.path.split(os.path.normpath(path))
        if folder != self.folder:
            return DIRECTORY if os.path.join(folder, name) == self.folder else None
        return tracked(self.name, name)

    def fd(self, arg: str) -> tuple[int, str | None]:
        """(fd, its file's role) from a ``-y`` decorated descriptor; role None: untracked."""
        m = _FD.match(arg)
        if m is None:
            return -1, None
        path = _unhex(m.group(2) or "").decode("utf-8", "surrogateescape")
        if path.endswith(_DELETED) or (m.group(2) or "").endswith(_DELETED):
            return (int(m.group(1)) if m.group(1) != "AT_FDCWD" else -100), None
        fd = -100 if m.group(1) == "AT_FDCWD" else int(m.group(1))
        return fd, self.role(path) if path else None

    def at_path(self, dirfd: str, name: str) -> str | None:
        path = _unhex(name.strip('"')).decode("utf-8", "surrogateescape")
        if not os.path.isabs(path):
            m = _FD.match(dirfd)
            base = _unhex((m.group(2) if m else "") or "").decode("utf-8", "surrogateescape")
            path = os.path.join(base, path)
        return self.role(path)

    def add(self, op: Op) -> None:
        self.ops.append(op)

    def call(self, pid: int, name: str, args: list[str], ret: str) -> None:  # noqa: PLR0912
        result = ret.split(maxsplit=1)[0] if ret.split() else "?"
        if result.startswith("-") or result == "?":
            return  # failed (or unknown): changed nothing
        if name in ("openat", "open", "creat"):
            self.opened(pid, name, args, ret)
        elif name == "close":
            fd, _ = self.fd(args[0])
            self.offsets.pop((pid, fd), None)
        elif name == "lseek":
            fd, role = self.fd(args[0])
            if role is not None:
                self.offsets[(pid, fd)] = int(result)
        elif name in ("write", "writev", "pwrite64", "pwritev", "pwritev2"):
            self.written(pid, name, args, int(result))
        elif name == "ftruncate":
            _, role = self.fd(args[0])
            if role is not None:
                self.add(Op(OpKind.TRUNCATE, role, pid, name, size=int(args[1])))
        elif name == "truncate":
            role = self.at_path("AT_FDCWD", args[0])
            if role is not None:
                self.add(Op(OpKind.TRUNCATE, role, pid, name, size=int(args[1])))
        elif name in ("sendfile", "copy_file_range"):
            self.copied(pid, name, args, int(result))
        elif name in ("fsync", "fdatasync"):
            _, role = self.fd(args[0])
            if role is not None:
                self.add(Op(OpKind.SYNC, role, pid, name, data_only=name == "fdatasync"))
        elif name in ("unlink", "unlinkat"):
            role = (
                self.at_path(*args[:2]) if name == "unlinkat" else self.at_path("AT_FDCWD", args[0])
            )
            if role is not None:
                self.add(Op(OpKind.UNLINK, role, pid, name))
        elif name in ("rename", "renameat", "renameat2"):
            if name == "rename":
                src, dst = self.at_path("AT_FDCWD", args[0]), self.at_path("AT_FDCWD", args[1])
            else:
                src, dst = self.at_path(args[0], args[1]), self.at_path(args[2], args[3])
            if src is not None and dst is not None:
                self.add(Op(OpKind.RENAME, src, pid, name, to=dst))
            elif src is not None:
                self.add(Op(OpKind.UNLINK, src, pid, name))  # moved out of sight
            elif dst is not None:
                self.problems.append(
                    f"pid {pid} renamed a file the record does not hold over db{dst} ({name})"
                )

    def opened(self, pid: int, name: str, args: list[str], ret: str) -> None:
        fd, role = self.fd(ret.split(maxsplit=1)[0])
        if role is None or role == DIRECTORY:
            return
        flags = args[2] if name == "openat" else (args[1] if name == "open" else "O_CREAT|O_TRUNC")
        if "O_CREAT" in flags:
            self.add(Op(OpKind.CREATE, role, pid, name))
        if "O_TRUNC" in flags:
            self.add(Op(OpKind.TRUNCATE, role, pid, name, size=0))
        self.offsets[(pid, fd)] = -1 if "O_APPEND" in flags else 0

    def written(self, pid: int, name: str, args: list[str], count: int) -> None:
        fd, role = self.fd(args[0])
        if role is None or role == DIRECTORY:
            return
        if name in ("writev", "pwritev", "pwritev2"):
            parts = [_string(s) for s in re.findall(r'iov_base=("[^"]*"(?:\.\.\.)?)', args[1])]
            data = b"".join(p[0] for p in parts)
            truncated = any(p[1] for p in parts)
        else:
            data, truncated = _string(args[1])
        if len(data) < count:
            why = "longer than strace's string limit" if truncated else "not fully shown"
            self.problems.append(f"pid {pid} {name} of {count} bytes to db{role}: data {why}")
            return
        data = data[:count]
        if name.startswith("p"):
            offset = int(args[-1] if name != "pwritev2" else args[-2])
        else:
            known = self.offsets.get((pid, fd))
            if known is None:
                self.problems.append(
                    f"pid {pid} {name} to db{role} through a descriptor the record did not see "
                    "opened (its offset is unknown)"
                )
                return
            offset = known
            if known >= 0:
                self.offsets[(pid, fd)] = known + count
        self.add(Op(OpKind.WRITE, role, pid, name, offset=offset, data=data))

    def copied(self, pid: int, name: str, args: list[str], count: int) -> None:
        """sendfile(out, in, in_offset*, n) or copy_file_range(in, in_offset*, out, out_offset*,
        n, flags): the kernel copies, so the record keeps where from and replays the bytes."""
        if name == "sendfile":
            (out, out_at), (src, src_at) = (args[0], "NULL"), (args[1], args[2])
        else:
            (src, src_at), (out, out_at) = (args[0], args[1]), (args[2], args[3])
        out_fd, role = self.fd(out)
        if role is None or role == DIRECTORY or count == 0:
            return
        src_fd, source = self.fd(src)
        if source is None or source == DIRECTORY:
            self.problems.append(
                f"pid {pid} {name} into db{role} from a file the record does not hold"
            )
            return
        source_offset = self.position(pid, src_fd, src_at, count)
        offset = self.position(pid, out_fd, out_at, count)
        if source_offset is None or offset is None:
            self.problems.append(
                f"pid {pid} {name} into db{role} through a descriptor the record did not see "
                "opened (its offset is unknown)"
            )
            return
        self.add(
            Op(
                OpKind.COPY,
                role,
                pid,
                name,
                offset=offset,
                size=count,
                source=source,
                source_offset=source_offset,
            )
        )

    def position(self, pid: int, fd: int, pointer: str, count: int) -> int | None:
        """Where a copy read or wrote: ``[x] => [y]`` or ``[x]`` is x (the descriptor's offset
        stays); ``NULL`` is the descriptor's own offset, which moves on by ``count``."""
        if pointer != "NULL":
            m = _POINTER.match(pointer)
            return int(m.group(1)) if m else None
        known = self.offsets.get((pid, fd))
        if known is not None and known >= 0:
            self.offsets[(pid, fd)] = known + count
        return known


def parse_strace(text: str, db: Path) -> tuple[list[Op], list[str]]:
    """The ops on ``db``'s files in ``strace -f -y -xx`` output, and what could not be read."""
    parser = _Parser(db)
    pending: dict[int, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        pid, body = int(m.group(1)), m.group(2)
        if body.startswith(("---", "+++")):
            continue
        resumed = _RESUMED.match(body)
        if resumed is not None:
            body = pending.pop(pid, f"{resumed.group(1)}(") + resumed.group(2)
        if body.endswith(_UNFINISHED):
            pending[pid] = body[: -len(_UNFINISHED)]
            continue
        name, paren, rest = body.partition("(")
        returned = _RETURNED.match(rest) if paren else None
        if returned is None:
            continue  # an exit or a call killed before it returned
        parser.call(pid, name, _split(returned.group(1)), returned.group(2))
    return parser.ops, parser.problems
