"""Where a run happened: git, CI, project, tags (`collect.py` gathers them for the record).

Kept empty: the run command imports `context.tags` before the spawn, and a package's `__init__`
runs first (git and subprocess helpers here would cost ~15 ms on that path).
"""
