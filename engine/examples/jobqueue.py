"""The bundled example: the state file of a job-queue / agent-orchestrator daemon, 12 versions.

A history shaped like real ones: the queue starts as one table and grows workers, priorities,
retries, an audit trail kept by a trigger, named queues seeded by a data statement, a view
for the dashboard, de-duplication through a partial unique index, a backfill with a declared
transform and postcondition, and a table rebuild that widens a CHECK (which ALTER cannot do).

``[tool.migproof] steps`` in the repository's pyproject.toml points here, so every command
runs on it by default: ``migproof migrate state.db``, ``migproof status state.db``.
"""

from __future__ import annotations

from typing import Final

from migproof.engine import (
    AddColumn,
    CreateIndex,
    CreateTable,
    CreateTrigger,
    CreateView,
    DataChange,
    RebuildTable,
    Step,
    Steps,
)

_NOW: Final = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"

STEPS: Final = Steps(
    [
        Step(
            1,
            "initial job table",
            [
                CreateTable(f"""
                CREATE TABLE jobs (
                    id         INTEGER PRIMARY KEY,
                    kind       TEXT NOT NULL,
                    payload    TEXT NOT NULL DEFAULT '{{}}',
                    state      TEXT NOT NULL DEFAULT 'queued'
                               CHECK (state IN ('queued', 'running', 'done', 'failed')),
                    created_at TEXT NOT NULL DEFAULT {_NOW}
                )"""),
                CreateIndex("CREATE INDEX jobs_state ON jobs (state)"),
            ],
        ),
        Step(
            2,
            "workers claim jobs",
            [
                CreateTable("""
                CREATE TABLE workers (
                    id           INTEGER PRIMARY KEY,
                    hostname     TEXT NOT NULL,
                    pid          INTEGER NOT NULL,
                    started_at   TEXT NOT NULL,
                    heartbeat_at TEXT
                )"""),
                AddColumn("jobs", "worker_id INTEGER REFERENCES workers (id) ON DELETE SET NULL"),
            ],
        ),
        Step(
            3,
            "job priorities",
            [
                AddColumn("jobs", "priority INTEGER NOT NULL DEFAULT 0"),
                CreateIndex("CREATE INDEX jobs_pick ON jobs (state, priority DESC, id)"),
            ],
        ),
        Step(
            4,
            "retries",
            [
                AddColumn("jobs", "attempts INTEGER NOT NULL DEFAULT 0"),
                AddColumn("jobs", "max_attempts INTEGER NOT NULL DEFAULT 3"),
                AddColumn("jobs", "last_error TEXT"),
            ],
        ),
        Step(
            5,
            "audit trail of state changes",
            [
                CreateTable("""
                CREATE TABLE job_events (
                    id     INTEGER PRIMARY KEY,
                    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
                    at     TEXT NOT NULL,
                    event  TEXT NOT NULL,
                    detail TEXT
                )"""),
                CreateIndex("CREATE INDEX job_events_job ON job_events (job_id, id)"),
                CreateTrigger(f"""
                CREATE TRIGGER jobs_state_event AFTER UPDATE OF state ON jobs
                WHEN old.state IS NOT new.state
                BEGIN
                    INSERT INTO job_events (job_id, at, event, detail)
                    VALUES (new.id, {_NOW}, 'state', old.state || ' -> ' || new.state);
                END"""),
            ],
        ),
        Step(
            6,
            "named queues",
            [
                CreateTable("""
                CREATE TABLE queues (
                    name        TEXT PRIMARY KEY,
                    paused      INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
                    concurrency INTEGER NOT NULL DEFAULT 1 CHECK (concurrency > 0)
                )"""),
                AddColumn("jobs", "queue TEXT NOT NULL DEFAULT 'default'"),
                # Idempotent: re-running it inserts nothing new.
                DataChange("""
                INSERT OR IGNORE INTO queues (name) VALUES ('default');
                INSERT OR IGNORE INTO queues (name) SELECT DISTINCT queue FROM jobs;
                """),
            ],
        ),
        Step(
            7,
            "dashboard view and de-duplication",
            [
                CreateView("""
                CREATE VIEW active_jobs AS
                SELECT j.id, j.queue, j.kind, j.state, j.priority, w.hostname
                FROM jobs AS j LEFT JOIN workers AS w ON w.id = j.worker_id
                WHERE j.state IN ('queued', 'running')"""),
                AddColumn("jobs", "dedupe_key TEXT"),
                # At most one live job per (queue, key); finished jobs may repeat a key.
                CreateIndex("""
                CREATE UNIQUE INDEX jobs_dedupe_live ON jobs (queue, dedupe_key)
                WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running')"""),
            ],
        ),
        Step(
            8,
            "scheduled jobs; canonical kinds",
            [
                AddColumn("jobs", "run_after TEXT"),
                DataChange(
                    "UPDATE jobs SET run_after = created_at WHERE run_after IS NULL",
                    transforms=["jobs.run_after"],
                    postcondition="SELECT id FROM jobs WHERE run_after IS NULL",
                ),
                DataChange(
                    "UPDATE jobs SET kind = lower(trim(kind)) WHERE kind IS NOT lower(trim(kind))",
                    transforms=["jobs.kind"],
                    postcondition="SELECT id, kind FROM jobs WHERE kind IS NOT lower(trim(kind))",
                ),
            ],
        ),
        Step(
            9,
            "cancellable jobs",
            [
                # Widening a CHECK and making run_after NOT NULL: ALTER can do neither, so the
                # table is rebuilt (its indexes and trigger are recreated by the engine).
                RebuildTable(
                    "jobs",
                    f"""
                CREATE TABLE jobs (
                    id           INTEGER PRIMARY KEY,
                    kind         TEXT NOT NULL,
                    payload      TEXT NOT NULL DEFAULT '{{}}',
                    state        TEXT NOT NULL DEFAULT 'queued' CHECK (state IN
                                 ('queued', 'running', 'done', 'failed', 'cancelled')),
                    created_at   TEXT NOT NULL DEFAULT {_NOW},
                    worker_id    INTEGER REFERENCES workers (id) ON DELETE SET NULL,
                    priority     INTEGER NOT NULL DEFAULT 0,
                    attempts     INTEGER NOT NULL DEFAULT 0,
                    max_attempts INTEGER NOT NULL DEFAULT 3,
                    last_error   TEXT,
                    queue        TEXT NOT NULL DEFAULT 'default',
                    dedupe_key   TEXT,
                    run_after    TEXT NOT NULL DEFAULT {_NOW}
                )""",
                    copy={"run_after": "coalesce(run_after, created_at)"},
                ),
            ],
        ),
        Step(
            10,
            "worker versions and liveness",
            [
                AddColumn("workers", "agent_version TEXT NOT NULL DEFAULT ''"),
                CreateIndex("CREATE INDEX workers_heartbeat ON workers (heartbeat_at)"),
            ],
        ),
        Step(
            11,
            "job results",
            [
                CreateTable("""
                CREATE TABLE job_results (
                    job_id      INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
                    finished_at TEXT NOT NULL,
                    exit_code   INTEGER,
                    output      BLOB
                )"""),
                CreateIndex("CREATE INDEX job_results_finished ON job_results (finished_at)"),
            ],
        ),
        Step(
            12,
            "queue depth view",
            [
                CreateView("""
                CREATE VIEW queue_depth AS
                SELECT queue, state, count(*) AS jobs FROM jobs GROUP BY queue, state"""),
            ],
        ),
    ],
    min_supported=0,
    name="jobqueue",
)
