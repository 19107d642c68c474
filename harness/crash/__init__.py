"""Crash recovery and power loss: what a migration leaves behind when it dies, and the judge.

Two ways to find the crash points, side by side, then one way to recover and judge them:

==============  ==========================================  ===================================
                in-process: statement level (the default)   external process: write level
                                                            (``--crash-at writes``)
==============  ==========================================  ===================================
what runs       the target's ``migrate`` in a forked        any process, any language (a
                worker of this Python process, its          command target too), recorded once
                statements traced through ``sqlite3``       under ``strace``
                (``harness/tracing.py``)
crash point k   the boundary before statement k             the first k writes to the files
images          ``statement_images``: copied at each        ``write_record``: the record, and
                boundary, or left by a SIGKILL inside       the images it implies, built
                trace callback k                            offline (pure)
the case        ``statements`` (its ``run_case`` is the     ``writes`` (recording, replay,
                check's entry for both levels)              recovery of an image as left)
==============  ==========================================  ===================================

``power`` and ``power_images`` build on the write level's record: a power cut keeps only what
was synced, so its images are the record's writes with unsynced ones lost, torn or reordered.

Shared by all three: ``recovery`` (open an image the way the next process would, read what
the target then sees, re-run ``migrate``) and ``oracle`` (the pure verdict: integrity, a clean
reference state, convergence, durability). ``pool`` spreads crash-recovery cases over worker
processes.

The checks are ``harness/checks/crash_recovery.py`` and ``harness/checks/power_loss.py``.
"""
