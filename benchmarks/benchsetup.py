"""Benchmarks time claude-run as an installed package runs: from compiled bytecode.

With PYTHONDONTWRITEBYTECODE set (as on this machine's shells and some CI images) and a fresh
checkout, nothing ever writes `__pycache__`, so every timed `claude-run` process would compile each
module it imports from source again: tens of milliseconds charged to claude-run that a pip-installed
copy never pays. Compiling once up front (py_compile writes regardless of that variable) removes it.
"""

from __future__ import annotations

import compileall
from pathlib import Path


def compile_sources(src: Path) -> None:
    compileall.compile_dir(str(src), quiet=1)
