"""Crash recovery and power loss: what a migration leaves behind when it dies, and the judge.

Two ways to find the crash points, side by side, then one way to recover and judge them:

==================  =========================================  =================================
                    statement level (the default)              write level (``--crash-at writes``)
==================  =========================================  =================================
runs                in this process: the target's ``migrate``  any process, any language: the
                    in a forked worker, its statements traced  run is recorded under ``strace``
                    through ``sqlite3`` (``harness/tracing``)
crash point k       the boundary before statement k            the first k writes to the files
images              ``statement_images``: snapshot at each     ``write_record``: the record and
                    boundary, or SIGKILL inside callback k     the images it implies, built
                                                               offline (pure)
the case            ``statements`` (``run_case`` is the        ``writes``
                    check's entry for both levels)
==================  =========================================  =================================

``power`` and ``power_images`` build on the write level's record: a power cut keeps only what
was synced, so its images are the record's writes with unsynced ones lost, torn or reordered.

Shared by all three: ``recovery`` (open an image the way the next process would, read what
the target sees, re-run ``migrate``), ``oracle`` (the pure verdict: integrity, a clean
reference state, convergence, durability), and ``pool`` (statement-level cases spread over
worker processes).

The checks that use them are ``harness/checks/crash_recovery.py`` and
``harness/checks/power_loss.py``.
"""
