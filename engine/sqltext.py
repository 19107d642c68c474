"""Token-level normalisation of SQL text, so schema objects compare by meaning, not by layout.

SQLite stores each object's CREATE statement as it was written, and ``ALTER TABLE ... ADD
COLUMN`` splices text into it. Comparing that text byte for byte reports false differences
(SQLDelight #4573, #4803); comparing checksums of it breaks on line endings (flyway#253,
sqlx#2659). Everything here works on tokens: comments and whitespace vanish, unquoted and
quoted identifiers fold to one lower-case spelling (SQLite identifiers are case-insensitive),
and string literals, numbers and blobs stay exactly as written, because their case and content
are data.

Pure: no I/O, no sqlite3.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


class Kind(Enum):
    WORD = "word"  # keyword or identifier, folded to lower case
    STRING = "string"  # '...' literal, kept verbatim
    NUMBER = "number"
    BLOB = "blob"  # x'..'
    PARAM = "param"  # ?, ?1, :name, @name, $name
    PUNCT = "punct"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str


class SQLTextError(ValueError):
    """The text cannot be tokenised (an unterminated quote or comment)."""


# Longest first, so "<=" is not read as "<" then "=".
_OPERATORS: Final = ("||", "<<", ">>", "<=", ">=", "==", "!=", "<>", "->>", "->")
_NUMBER: Final = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT_QUOTES: Final = {'"': '"', "`": "`", "[": "]"}


# The schema of a state file is read again and again (at every start, by every racing
# process, before and after each step) and its texts hardly change: parsing the same
# CREATE text twice is wasted work (a 34-table schema took 14 ms to read, 1 ms cached).
# The functions cached here are pure and return immutable values.
PARSED_CACHE: Final = 4096  # distinct texts kept per function


@functools.lru_cache(maxsize=PARSED_CACHE)
def tokenize(sql: str) -> tuple[Token, ...]:
    return tuple(_tokens(sql))


def _tokens(sql: str) -> Iterator[Token]:  # noqa: PLR0912 - one branch per lexical class
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            # SQLite accepts an unterminated block comment at the end of input.
            i = n if end < 0 else end + 2
        elif c == "'" or (c in "xX" and sql.startswith("'", i + 1)):
            start = i + (1 if c != "'" else 0)
            j = _end_of_quoted(sql, start, "'")
            kind = Kind.BLOB if c != "'" else Kind.STRING
            text = sql[i:j]
            yield Token(kind, text.lower() if kind is Kind.BLOB else text)
            i = j
        elif c in _IDENT_QUOTES:
            close = _IDENT_QUOTES[c]
            j = _end_of_quoted(sql, i, close)
            inner = sql[i + 1 : j - 1]
            if close != "]":
                inner = inner.replace(close * 2, close)
            yield Token(Kind.WORD, inner.lower())
            i = j
        elif (m := _NUMBER.match(sql, i)) is not None:
            yield Token(Kind.NUMBER, m.group().lower())
            i = m.end()
        elif c.isalpha() or c == "_" or ord(c) > 127:
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_$" or ord(sql[j]) > 127):
                j += 1
            yield Token(Kind.WORD, sql[i:j].lower())
            i = j
        elif c in "?:@$":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            yield Token(Kind.PARAM, sql[i:j])
            i = j
        else:
            op = next((o for o in _OPERATORS if sql.startswith(o, i)), c)
            yield Token(Kind.PUNCT, "==" if op == "=" else ("!=" if op == "<>" else op))
            i += len(op)


def _end_of_quoted(sql: str, start: int, close: str) -> int:
    """Index just past the closing quote of the quoted run opening at ``start``."""
    j = start + 1
    while True:
        k = sql.find(close, j)
        if k < 0:
            raise SQLTextError(
                f"unterminated quote starting at offset {start}: {sql[start : start + 40]!r}"
            )
        # A doubled quote is an escaped quote, except for [bracketed] identifiers.
        if close != "]" and sql.startswith(close * 2, k):
            j = k + 2
            continue
        return k + 1


def render(tokens: Sequence[Token]) -> str:
    """One canonical spelling: tokens joined by single spaces."""
    return " ".join(t.text for t in tokens)


@functools.lru_cache(maxsize=PARSED_CACHE)
def normalize(sql: str) -> str:
    """Canonical text of a SQL fragment: equal for texts that differ only in layout or case."""
    return render(tokenize(sql))


@functools.lru_cache(maxsize=PARSED_CACHE)
def normalize_create(sql: str) -> str:
    """Canonical text of a CREATE statement, ignoring the ``IF NOT EXISTS`` guard.

    An object created with and without the guard is the same object; fresh-install paths and
    step paths often differ in exactly that.
    """
    toks = tokenize(sql)
    out: list[Token] = []
    i = 0
    while i < len(toks):
        if [t.text for t in toks[i : i + 3]] == ["if", "not", "exists"]:
            i += 3
            continue
        out.append(toks[i])
        i += 1
    return render(out)


def matching_paren(tokens: Sequence[Token], open_index: int) -> int:
    """Index of the ``)`` that closes the ``(`` at ``open_index``."""
    depth = 0
    for j in range(open_index, len(tokens)):
        t = tokens[j]
        if t.kind is Kind.PUNCT and t.text == "(":
            depth += 1
        elif t.kind is Kind.PUNCT and t.text == ")":
            depth -= 1
            if depth == 0:
                return j
    raise SQLTextError("unbalanced parentheses")


def split_top_level(tokens: Sequence[Token], sep: str = ",") -> list[list[Token]]:
    """Split at separators that are not nested inside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.kind is Kind.PUNCT and t.text == "(":
            depth += 1
        elif t.kind is Kind.PUNCT and t.text == ")":
            depth -= 1
        if depth == 0 and t.kind is Kind.PUNCT and t.text == sep:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def split_statements(script: str) -> list[str]:
    """Split a script into statements at top-level semicolons.

    A semicolon inside a quoted run, a comment or a trigger body (``BEGIN ... END``) does not
    end a statement. Used for declared SQL fragments, so each statement reaches the engine's
    single execution choke point on its own.
    """
    statements: list[str] = []
    start = 0
    depth_begin = 0
    i, n = 0, len(script)
    prev_words: list[str] = []
    while i < n:
        c = script[i]
        if sql_comment_len := _comment_len(script, i):
            i += sql_comment_len
            continue
        if c in "'\"`[":
            close = "]" if c == "[" else c
            i = _end_of_quoted(script, i, close)
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (script[j].isalnum() or script[j] == "_"):
                j += 1
            word = script[i:j].lower()
            # CREATE TRIGGER ... BEGIN opens a body; CASE ... END does not count (it nests
            # inside the body and closes itself).
            if (word == "begin" and "trigger" in prev_words) or (word == "case" and depth_begin):
                depth_begin += 1
            elif word == "end" and depth_begin:
                depth_begin -= 1
            prev_words.append(word)
            i = j
            continue
        if c == ";" and depth_begin == 0:
            stmt = _strip_leading_comments(script[start:i])
            if stmt:
                statements.append(stmt)
            start = i + 1
            prev_words = []
        i += 1
    tail = _strip_leading_comments(script[start:])
    if tail:
        statements.append(tail)
    return statements


def _strip_leading_comments(text: str) -> str:
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        skip = _comment_len(text, i)
        if not skip:
            return text[i:].rstrip()
        i += skip


def _comment_len(script: str, i: int) -> int:
    if script.startswith("--", i):
        end = script.find("\n", i)
        return (len(script) if end < 0 else end + 1) - i
    if script.startswith("/*", i):
        end = script.find("*/", i + 2)
        return (len(script) if end < 0 else end + 2) - i
    return 0
