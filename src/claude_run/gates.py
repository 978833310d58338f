"""One gate per kind of input: ledger paths, numbers, enumerations, environment variables, commands.

Every command (the run's fast path included: only `os` and `stat` here, no pathlib) checks its
inputs through these functions before it does anything, so the same bad value gets the same
one-line message and exit code everywhere (README "Exit codes"): a bad value is a `UsageError`
(exit 2), an unusable ledger path a `LedgerError` (exit 74). Dates and durations have their own
gate, `claude_run.query.timeparse`.
"""

from __future__ import annotations

import os
import stat

from .errors import LedgerError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


# --- ledger paths ------------------------------------------------------------------------------------


def check_ledger(path: str | os.PathLike[str], *, reading: bool) -> None:
    """Refuse a ledger path no command should touch; nothing is created on the way.

    Refused (exit 74, one message): a directory (`/` included), a symbolic link, anything but a
    regular file, a file another user owns, a parent that is not a directory. A reader also refuses
    a ledger that does not exist (and has no rotated segments): an all-zero report of a mistyped
    path would look like a real answer.
    """
    text = os.fspath(path)
    try:
        st = os.lstat(text)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise LedgerError(f"ledger {text}: a parent of it is not a directory") from None
    except OSError as exc:
        raise LedgerError(f"cannot use ledger {text}: {exc.strerror or exc}") from None
    if st is None:
        parent = os.path.dirname(text) or "."
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise LedgerError(f"ledger {text}: its parent {parent} is not a directory")
        if reading and not _has_segments(text):
            raise LedgerError(
                f"no ledger at {text} (nothing recorded there yet? check --ledger / $CLAUDE_RUN_LEDGER)"
            )
        return
    if stat.S_ISLNK(st.st_mode):
        raise LedgerError(f"refusing to use ledger {text}: it is a symbolic link")
    if stat.S_ISDIR(st.st_mode):
        raise LedgerError(f"ledger {text} is a directory; --ledger / $CLAUDE_RUN_LEDGER name a file")
    if not stat.S_ISREG(st.st_mode):
        raise LedgerError(f"refusing to use ledger {text}: not a regular file")
    owner = getattr(os, "geteuid", None)
    if owner is not None and st.st_uid != owner():
        raise LedgerError(f"refusing to use ledger {text}: it belongs to another user (uid {st.st_uid})")


def _has_segments(ledger: str) -> bool:
    """Rotated segments (`<stem>.<stamp>.jsonl`) beside a live file that is not there (yet)."""
    directory, name = os.path.split(ledger)
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return False
    return any(n.startswith(stem + ".") and n.endswith(".jsonl") and n != name for n in names)


# --- numbers -----------------------------------------------------------------------------------------


def number(
    text: str,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    integer: bool = False,
) -> float:
    """A finite number in [low, high] (`low_open`: > low). `name` says where it came from."""
    raw = str(text).strip()
    try:
        value = float(int(raw)) if integer else float(raw)
    except (ValueError, OverflowError):
        kind = "a whole number" if integer else "a number"
        raise UsageError(f"{name} must be {kind}, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"{name} must be a finite number, got {text!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise UsageError(f"{name} must be {'greater than' if low_open else 'at least'} {low:g}, got {text!r}")
    if high is not None and value > high:
        raise UsageError(f"{name} must be at most {high:g}, got {text!r}")
    return value


# --- enumerations ------------------------------------------------------------------------------------


def choice(value: str, allowed: Iterable[str], name: str) -> str:
    """`value` if it is one of `allowed`, else a UsageError listing them (with a guess)."""
    options = tuple(allowed)
    if value in options:
        return value
    guess = closest(value, options)
    hint = f" (did you mean {guess}?)" if guess else ""
    raise UsageError(f"bad {name} {value!r}: use {', '.join(options)}{hint}")


# --- environment variables -----------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def env_flag(name: str, env: Mapping[str, str] | None = None, *, default: bool = False) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (empty or unset: `default`); else exit 2."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value == "":
        return default
    if value in _FALSE:
        return False
    raise UsageError(f"${name} must be 1/true/yes/on or 0/false/no/off, got {raw!r}")


def env_number(
    name: str,
    default: float,
    env: Mapping[str, str] | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """A numeric variable (finite, in range) or `default` when unset or empty; else exit 2 naming it."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None or not raw.strip():
        return default
    return number(raw, f"${name}", low=low, high=high, low_open=low_open)


# --- subcommand names ----------------------------------------------------------------------------------


def distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions, adjacent swaps count 1)."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cost = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, prev2[j - 2] + 1)
            cur.append(cost)
        prev2, prev = prev, cur
    return prev[-1]


def closest(word: str, names: Iterable[str]) -> str | None:
    """The name `word` most likely mistypes: within 1 edit (2 for names of 6+ letters), case aside."""
    low = word.strip().lower()
    best: tuple[int, str] | None = None
    for name in names:
        d = distance(low, name.lower())
        limit = 2 if len(name) >= 6 else 1
        if d <= limit and (best is None or d < best[0]):
            best = (d, name)
    return best[1] if best else None
