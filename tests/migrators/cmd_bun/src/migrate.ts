// migrate.ts DB [VERSION] -- the jobs daemon's state-file migrator, run by bun at every start.
//
// The version lives in a `meta` table (key 'schema_version'), not in PRAGMA user_version.
// The busy timeout is set before anything else; BEGIN IMMEDIATE takes the write lock; the
// version is read under it; every pending step and the new version commit together.
//
// Exit codes: 0 migrated (or already current), 3 the file is newer than this build,
// 5 gave up waiting for the write lock (nothing changed), 1 anything else.
//
// MIGRATOR_FLAW turns on one deliberate bug:
//   stamp-after    the version is stamped in a second transaction, after the steps' COMMIT
//   read-unlocked  the version is read before BEGIN IMMEDIATE and trusted
//   busy-late      busy_timeout is set after the first statements, so BEGIN never waits
//   rm-journal     "a stale journal from a crash" is deleted by hand before opening
//   accepts-newer  a file newer than this build is migrated as if current (and stamped down)
import { Database } from "bun:sqlite";
import { existsSync, unlinkSync } from "node:fs";

const HEAD = 3;
const BUSY_MS = 2000;
const STEPS: Record<number, string[]> = {
  1: [
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload BLOB, state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done')))",
  ],
  2: [
    "ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX jobs_state ON jobs (state, id)",
  ],
  3: [
    "CREATE TABLE results (job_id INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE, output TEXT, finished_at TEXT)",
    "CREATE TRIGGER jobs_done AFTER UPDATE OF state ON jobs WHEN new.state = 'done' BEGIN INSERT OR IGNORE INTO results (job_id) VALUES (new.id); END",
  ],
};

class Refusal extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}

const [path = process.env.MIGPROOF_DB, goalArg] = process.argv.slice(2);
if (!path) {
  console.error("usage: migrate.ts DB [VERSION]");
  process.exit(2);
}
const goal = goalArg === undefined ? HEAD : Number(goalArg);
const flaw = process.env.MIGRATOR_FLAW ?? "";

function ensureMeta(db: Database): void {
  db.run("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  db.run("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '0')");
}

function readVersion(db: Database): number {
  try {
    const row = db.query("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | null;
    return row ? Number(row.value) : 0;
  } catch {
    return 0; // no meta table yet: a new file
  }
}

function stamp(db: Database, version: number): void {
  db.run("UPDATE meta SET value = ? WHERE key = 'schema_version'", [String(version)]);
}

function migrate(db: Database): void {
  if (flaw !== "busy-late") db.run(`PRAGMA busy_timeout = ${BUSY_MS}`);
  let current = flaw === "read-unlocked" ? readVersion(db) : -1;
  db.run("BEGIN IMMEDIATE");
  if (flaw === "busy-late") db.run(`PRAGMA busy_timeout = ${BUSY_MS}`);
  try {
    ensureMeta(db);
    if (current < 0) current = readVersion(db);
    if (current > HEAD && flaw !== "accepts-newer") {
      throw new Refusal(`${path} is at schema v${current}, newer than this build (v${HEAD})`, 3);
    }
    const from = Math.min(current, HEAD);
    for (let v = from + 1; v <= goal; v++) for (const sql of STEPS[v]) db.run(sql);
    if (flaw === "stamp-after") {
      db.run("COMMIT");
      db.run("BEGIN IMMEDIATE");
    }
    if (from < goal || current > HEAD) stamp(db, Math.max(from, goal));
    db.run("COMMIT");
  } catch (err) {
    if (db.inTransaction) db.run("ROLLBACK");
    throw err;
  }
}

try {
  if (flaw === "rm-journal" && existsSync(`${path}-journal`)) unlinkSync(`${path}-journal`);
  const db = new Database(path, { create: true });
  try {
    migrate(db);
  } finally {
    db.close();
  }
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof Refusal) {
    console.error(message);
    process.exit(err.code);
  }
  if (/database is locked/.test(message)) {
    console.error(`gave up waiting for the write lock on ${path}: ${message}`);
    process.exit(5);
  }
  console.error(`migration of ${path} failed: ${message}`);
  process.exit(1);
}
