#!/usr/bin/env bash
# migrate.sh DB [VERSION] -- the notes daemon's state-file migrator, driving the sqlite3 shell.
#
# The version lives in PRAGMA user_version. Every pending step and the new version are
# applied in ONE transaction, under BEGIN IMMEDIATE, after checking (inside the transaction)
# that the version read beforehand has not moved: a CHECK constraint on a TEMP table aborts
# the script when another process migrated first, and the loop starts over.
#
# Exit codes: 0 migrated (or already current), 3 the file is newer than this build,
# 5 gave up waiting for the write lock (nothing changed), 1 anything else.
#
# MIGRATOR_FLAW turns on one deliberate bug (tests/migrators/cmd_shell/README.md):
#   stamp-after   the version is stamped in a second transaction, after the steps' COMMIT
#   read-unlocked the version read before BEGIN IMMEDIATE is trusted (no check under the lock)
#   busy-late     the busy timeout is set after BEGIN IMMEDIATE, so BEGIN never waits
#   rm-journal    "a stale journal from a crash": deleted by hand before starting
#   sync-off      PRAGMA synchronous = OFF for the migration "for speed": no fsync at all
set -u
DB=${1:-${MIGPROOF_DB:?usage: migrate.sh DB [VERSION]}}
HEAD=3
GOAL=${2:-$HEAD}
FLAW=${MIGRATOR_FLAW:-}
TIMEOUT_MS=2000

step() {
  case $1 in
    1) echo "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT '2024-01-01');" ;;
    2) echo "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1));"
       echo "CREATE INDEX notes_pinned ON notes (pinned, id);" ;;
    3) echo "CREATE TABLE tags (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL REFERENCES notes (id) ON DELETE CASCADE, tag TEXT NOT NULL, UNIQUE (note_id, tag));"
       echo "CREATE TRIGGER notes_untag AFTER DELETE ON notes BEGIN DELETE FROM tags WHERE note_id = old.id; END;" ;;
  esac
}

if [ "$FLAW" = rm-journal ] && [ -e "$DB-journal" ]; then
  rm -f "$DB-journal"
fi

while :; do
  if ! v=$(sqlite3 -bail -batch -cmd ".timeout $TIMEOUT_MS" "$DB" "PRAGMA user_version;" 2>&1); then
    echo "cannot read the version of $DB: $v" >&2
    case $v in *"database is locked"*) exit 5 ;; esac
    exit 1
  fi
  if [ "$v" -gt "$HEAD" ]; then
    echo "$DB is at schema v$v, newer than this build (v$HEAD); refusing to touch it" >&2
    exit 3
  fi
  if [ "$v" -ge "$GOAL" ]; then
    exit 0
  fi
  {
    if [ "$FLAW" = sync-off ]; then echo "PRAGMA synchronous = OFF;"; fi
    if [ "$FLAW" = busy-late ]; then echo "BEGIN IMMEDIATE;"; echo ".timeout $TIMEOUT_MS"
    else echo ".timeout $TIMEOUT_MS"; echo "BEGIN IMMEDIATE;"; fi
    if [ "$FLAW" != read-unlocked ]; then
      echo "CREATE TEMP TABLE guard (v INTEGER CONSTRAINT version_moved CHECK (v = $v));"
      echo "INSERT INTO guard SELECT user_version FROM pragma_user_version;"
    fi
    for ((s = v + 1; s <= GOAL; s++)); do step "$s"; done
    if [ "$FLAW" != stamp-after ]; then echo "PRAGMA user_version = $GOAL;"; fi
    echo "COMMIT;"
  } > "${TMPDIR:-/tmp}/migrate.$$.sql"
  out=$(sqlite3 -bail -batch "$DB" < "${TMPDIR:-/tmp}/migrate.$$.sql" 2>&1)
  status=$?
  rm -f "${TMPDIR:-/tmp}/migrate.$$.sql"
  if [ $status -eq 0 ] && [ "$FLAW" = stamp-after ]; then
    out=$(sqlite3 -bail -batch -cmd ".timeout $TIMEOUT_MS" "$DB" "PRAGMA user_version = $GOAL;" 2>&1)
    status=$?
  fi
  if [ $status -eq 0 ]; then
    exit 0
  fi
  case $out in
    *version_moved*) continue ;;  # another process migrated first: read the version again
    *"database is locked"*) echo "gave up waiting for the write lock on $DB: $out" >&2; exit 5 ;;
    *) echo "migration of $DB failed: $out" >&2; exit 1 ;;
  esac
done
