"""`python -m claude_run.query.build LEDGER`: build the index in a detached process (see engine)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from .engine import build_index

    try:
        build_index(Path(argv[0]))
    except Exception:  # a background nicety: the next query simply answers without an index
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
