"""Work that must not keep Claude Code waiting: finish it in a detached process."""

from __future__ import annotations

import os


def detach() -> bool:
    """Fork; True in the parent (which returns to Claude at once), False in the child, which
    carries on in a session of its own with its stdio on /dev/null. False without fork (Windows):
    the caller then does the work itself, in the foreground."""
    if not hasattr(os, "fork"):
        return False
    if os.fork() > 0:
        return True
    os.setsid()  # out of Claude's process group: its exit and the terminal's hangup do not reach us
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # Claude reads the command's pipes to their end: let go of them
        os.dup2(devnull, fd)
    os.close(devnull)
    return False
