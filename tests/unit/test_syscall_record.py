"""The write record: strace output in, ops out; replaying them rebuilds the files."""

from __future__ import annotations

from pathlib import Path

from migproof.harness.crash.write_record import (
    DIRECTORY,
    Op,
    OpKind,
    Record,
    parse_strace,
    replay,
)

DB = Path("/w/run/state.db")


def hx(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return "".join(f"\\x{b:02x}" for b in raw)


def fd(n: int, path: str) -> str:
    return f"{n}<{hx(path)}>"


J = "/w/run/state.db-journal"
TRACE = "\n".join(
    [
        f'7 openat(AT_FDCWD<{hx("/w")}>, "{hx(J)}", O_RDWR|O_CREAT|O_CLOEXEC, 0644) = {fd(4, J)}',
        f'7 pwrite64({fd(4, J)}, "{hx("HDR")}", 3, 0) = 3',
        f"7 fdatasync({fd(4, J)}) = 0",
        f'7 openat(AT_FDCWD, "{hx("/w/run")}", O_RDONLY|O_CLOEXEC) = {fd(5, "/w/run")}',
        f"7 fsync({fd(5, '/w/run')}) = 0",
        f'7 pwrite64({fd(3, "/w/run/state.db")}, "{hx("page")}", 4, 8 <unfinished ...>',
        f'8 write({fd(9, "/w/other")}, "{hx("x")}", 1) = 1',
        "7 <... pwrite64 resumed>) = 4",
        f"7 lseek({fd(4, J)}, 1, SEEK_SET) = 1",
        f'7 write({fd(4, J)}, "{hx("ab")}", 2) = 2',
        f'7 write({fd(4, J)}, "{hx("c")}", 1) = 1',
        f'7 writev({fd(3, "/w/run/state.db")}, [{{iov_base="{hx("xy")}", iov_len=2}}, {{iov_base="{hx("z")}", iov_len=1}}], 2) = 3',
        f'7 unlink("{hx("/w/run/missing")}") = -1 ENOENT (No such file or directory)',
        f"7 ftruncate({fd(3, '/w/run/state.db')}, 10) = 0",
        f"7 close({fd(4, J)}) = 0",
        f'7 unlink("{hx(J)}") = 0',
        "7 +++ exited with 0 +++",
    ]
)


def test_parse_keeps_every_op_on_the_files_in_order() -> None:
    ops, problems = parse_strace(TRACE, DB)
    assert problems == [
        "pid 7 writev to db through a descriptor the record did not see opened (its offset is unknown)"
    ]
    assert [(o.kind, o.file) for o in ops] == [
        (OpKind.CREATE, "-journal"),
        (OpKind.WRITE, "-journal"),
        (OpKind.SYNC, "-journal"),
        (OpKind.SYNC, DIRECTORY),
        (OpKind.WRITE, ""),
        (OpKind.WRITE, "-journal"),
        (OpKind.WRITE, "-journal"),
        (OpKind.TRUNCATE, ""),
        (OpKind.UNLINK, "-journal"),
    ]
    assert ops[2].data_only
    assert not ops[3].data_only
    assert (ops[4].offset, ops[4].data) == (8, b"page")  # joined across <unfinished ...>
    assert [(o.offset, o.data) for o in ops[5:7]] == [(1, b"ab"), (3, b"c")]  # lseek, then on


def test_replay_applies_writes_holes_truncation_and_unlink() -> None:
    ops, _ = parse_strace(TRACE, DB)
    files = replay({"": b"0123456789AB"}, ops)
    assert files == {"": b"01234567pa"}
    assert replay({}, ops[:2]) == {"-journal": b"HDR"}
    assert replay({}, [Op(OpKind.WRITE, "", offset=2, data=b"x")]) == {"": b"\0\0x"}


def test_a_record_that_does_not_replay_to_its_end_state_says_where() -> None:
    ops = (Op(OpKind.WRITE, "", offset=0, data=b"new"),)
    assert Record({"": b"old!"}, ops, {"": b"new!"}).problem() is None
    problem = Record({"": b"old!"}, ops, {"": b"neW!"}).problem()
    assert problem is not None
    assert "differs from byte 2" in problem


def test_truncated_data_makes_the_record_unusable() -> None:
    text = f'7 pwrite64({fd(3, "/w/run/state.db")}, "{hx("ab")}"..., 4096, 0) = 4096'
    ops, problems = parse_strace(text, DB)
    assert ops == []
    assert "longer than strace's string limit" in problems[0]


def test_writes_to_a_deleted_file_change_nothing_visible() -> None:
    gone = f"3<{hx('/w/run/state.db-journal')} (deleted)>"
    ops, problems = parse_strace(f'7 pwrite64({gone}, "{hx("x")}", 1, 0) = 1', DB)
    assert (ops, problems) == ([], [])


def test_a_record_saves_and_loads(tmp_path: Path) -> None:
    ops, _ = parse_strace(TRACE, DB)
    record = Record({"": b"0123456789AB"}, tuple(ops), {"": b"01234567pa"}, ("a problem",))
    record.save(tmp_path / "rec")
    assert Record.load(tmp_path / "rec") == record


# --- files beside the database, and copies the kernel makes ------------------------------------

TMP = "/w/run/state.db.tmp"


def test_every_file_named_after_the_database_in_its_folder_is_kept_but_shm() -> None:
    text = "\n".join(
        [
            f'7 openat(AT_FDCWD, "{hx(TMP)}", O_WRONLY|O_CREAT|O_TRUNC, 0644) = {fd(4, TMP)}',
            f'7 pwrite64({fd(4, TMP)}, "{hx("pg")}", 2, 0) = 2',
            f'7 pwrite64({fd(5, "/w/run/state.db-shm")}, "{hx("ix")}", 2, 0) = 2',
            f'7 pwrite64({fd(6, "/w/run/other.db")}, "{hx("no")}", 2, 0) = 2',
            f'7 rename("{hx(TMP)}", "{hx("/w/run/state.db")}") = 0',
        ]
    )
    ops, problems = parse_strace(text, DB)
    assert problems == []
    assert [(o.kind, o.file, o.to) for o in ops] == [
        (OpKind.CREATE, ".tmp", ""),
        (OpKind.TRUNCATE, ".tmp", ""),
        (OpKind.WRITE, ".tmp", ""),
        (OpKind.RENAME, ".tmp", ""),
    ]
    assert replay({"": b"old"}, ops) == {"": b"pg"}


def test_sendfile_and_copy_file_range_are_copies_replayed_from_the_source() -> None:
    src, dst = "/w/run/state.db", TMP
    text = "\n".join(
        [
            f'7 openat(AT_FDCWD, "{hx(src)}", O_RDONLY|O_CLOEXEC) = {fd(3, src)}',
            f'7 openat(AT_FDCWD, "{hx(dst)}", O_WRONLY|O_CREAT|O_TRUNC, 0644) = {fd(4, dst)}',
            # shutil.copyfile: an offset pointer for the source, the target's own offset.
            f"7 sendfile({fd(4, dst)}, {fd(3, src)}, [0] => [6], 8388608) = 6",
            f"7 sendfile({fd(4, dst)}, {fd(3, src)}, [6], 8388608) = 0",
            # cp: both descriptors' own offsets (the source's is still 0: sendfile had a pointer).
            f"7 copy_file_range({fd(3, src)}, NULL, {fd(4, dst)}, NULL, 2, 0) = 2",
            f"7 copy_file_range({fd(3, src)}, [4], {fd(4, dst)}, [1], 2, 0) = 2",
        ]
    )
    ops, problems = parse_strace(text, DB)
    assert problems == []
    copies = [o for o in ops if o.kind is OpKind.COPY]
    assert [(o.source, o.source_offset, o.offset, o.size) for o in copies] == [
        ("", 0, 0, 6),
        ("", 0, 6, 2),
        ("", 4, 1, 2),
    ]
    assert replay({"": b"abcdef"}, ops) == {"": b"abcdef", ".tmp": b"aefdefab"}


def test_a_copy_from_a_file_the_record_does_not_hold_makes_it_unusable() -> None:
    text = f"7 sendfile({fd(4, TMP)}, {fd(3, '/elsewhere/db')}, NULL, 100) = 100"
    ops, problems = parse_strace(text, DB)
    assert ops == []
    assert "from a file the record does not hold" in problems[0]


def test_a_record_with_files_beside_the_database_saves_and_loads(tmp_path: Path) -> None:
    copy = Op(OpKind.COPY, ".tmp", 7, "sendfile", offset=0, size=3, source="", source_offset=1)
    record = Record({"": b"abcd"}, (copy,), {"": b"abcd", ".tmp": b"bcd"})
    assert record.problem() is None
    record.save(tmp_path / "rec")
    assert Record.load(tmp_path / "rec") == record


def test_read_files_reads_the_database_and_the_files_named_after_it(tmp_path: Path) -> None:
    from migproof.harness.crash.write_record import read_files

    for name, data in [("state.db", b"d"), ("state.db.tmp", b"t"), ("state.db-shm", b"s")]:
        (tmp_path / name).write_bytes(data)
    (tmp_path / "other").write_bytes(b"o")
    assert read_files(tmp_path / "state.db") == {"": b"d", ".tmp": b"t"}


def test_a_resumed_call_with_its_result_padded_is_kept() -> None:
    # strace aligns the result of a call resumed after another process's line: ")   = 0".
    text = "\n".join(
        [
            f"7 fsync({fd(6, J)} <unfinished ...>",
            f"8 close({fd(5, '/tmp/err')} <unfinished ...>",
            "7 <... fsync resumed>)              = 0",
            f'7 pwrite64({fd(3, "/w/run/state.db")}, "{hx("pg")}", 2, 0 <unfinished ...>',
            "8 <... close resumed>)              = 0",
            "7 <... pwrite64 resumed>)           = 2",
        ]
    )
    ops, problems = parse_strace(text, DB)
    assert problems == []
    assert [(o.kind, o.file) for o in ops] == [(OpKind.SYNC, "-journal"), (OpKind.WRITE, "")]
