"""Races: processes starting the migration at the same instant on one file.

- ``rounds``: one round -- fork P children, release them together, collect, reap
  (``run_round``). Each child calls ``target.migrate`` with its statements traced through
  ``sqlite3`` (``harness/tracing.py``).
- ``pipe``: the children's side of the handshake (ready, warm, the report, the release).
- ``writer``: the live writer of a mixed round, an old-version application that keeps
  inserting while the migrators race.
- ``verdict``: the pure judgement of what the processes reported: every outcome clean,
  refusals only after a real wait, each step applied exactly once, no committed row lost.
- ``commands``: the race of a command target (a migrator in another language, its own
  process): nothing is traced, so a round is judged by the processes' exits and the file
  they leave, against one uncontended run.
- ``command_barrier``: racing commands meet at their first open of the database (under
  ``strace``), so their runtimes' start-up does not decide who reaches the file first.

The ``race`` check is ``harness/checks/race.py``. In-process and command targets share its
case preparation (``CaseRace.prepare``: the uncontended yardstick) and its rounds; a command's
are judged without a trace.
"""
