"""The derived, disposable index beside the ledger: `<ledger>.index/`.

The JSON-Lines ledger stays the only source of truth. The index is a DuckDB file holding the typed
rows of what it covers (`recs`), their model parts (`parts`) and the rows the fold leaves out
(`excluded`), and a manifest tying it to the ledger it describes: the ledger's identity
(`ledger/identity.py`: the generation, and per segment its device, inode, the bytes covered and
hashes of the first and last 4 KiB covered). Anything else —
a rewritten, truncated, replaced, restored, rotated or merged ledger — makes it stale, and it is
rebuilt. Lines appended since are read at query time (the tail); a tail grown past a quarter of the
covered bytes triggers a rebuild.

Concurrency: a build writes a new file under a unique name and then replaces the manifest
atomically, so readers never see a half-written index and a reader that opened the old file keeps
reading it. One process builds at a time (`build.lock`); the others answer from memory meanwhile.
A directory that cannot be written (a CI artifact) gets no index: queries are answered from memory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..ledger import store
from ..ledger.identity import Identity, Mark, holds_in

ENGINE_VERSION = 5  # 4: the quota columns; 5: attribution (an index without them is rebuilt)
MANIFEST = "engine.json"


def index_dir(ledger: Path) -> Path:
    return ledger.with_name(ledger.name + ".index")


@dataclass(frozen=True)
class Manifest:
    file: str
    identity: Identity  # the ledger as the index covers it (`ledger/identity.py`)
    rows: int  # rids 0 .. rows-1 are covered
    bad: tuple[tuple[str, int], ...]  # first bad lines (segment name, line number)
    bad_count: int
    future: int  # records of a newer schema
    impossible: int = 0  # records with figures that cannot be true

    @property
    def marks(self) -> tuple[Mark, ...]:
        return self.identity.marks

    @property
    def generation(self) -> str:
        return self.identity.generation

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "version": ENGINE_VERSION,
                "file": self.file,
                "identity": self.identity.to_json(),
                "rows": self.rows,
                "bad": [list(b) for b in self.bad],
                "bad_count": self.bad_count,
                "future": self.future,
                "impossible": self.impossible,
            }
        )


def load_manifest(ledger: Path) -> Manifest | None:
    path = index_dir(ledger) / MANIFEST
    try:
        raw = orjson.loads(path.read_bytes())
        if raw.get("version") != ENGINE_VERSION:
            return None
        ident = Identity.from_json(raw["identity"])
        if ident is None:
            return None
        return Manifest(
            file=str(raw["file"]),
            identity=ident,
            rows=int(raw["rows"]),
            bad=tuple((str(a), int(b)) for a, b in raw["bad"]),
            bad_count=int(raw["bad_count"]),
            future=int(raw["future"]),
            impossible=int(raw.get("impossible", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def still_valid(m: Manifest, snap: store.Snapshot, ledger: Path) -> bool:
    """The index file is there and describes this snapshot of the ledger, grown only by appends."""
    return (index_dir(ledger) / m.file).is_file() and holds_in(m.identity, snap, ledger)


def writable_dir(ledger: Path) -> Path | None:
    """The index directory, created (0700) when the ledger's directory lets us; else None."""
    d = index_dir(ledger)
    if d.is_symlink():
        return None
    try:
        d.mkdir(mode=0o700, exist_ok=True)
    except OSError:
        return None
    return d if os.access(d, os.W_OK | os.X_OK) else None


@contextlib.contextmanager
def build_lock(root: Path) -> Any:
    """Yield True when this process may build (no other is building), else False."""
    import fcntl

    try:
        fd = os.open(root / "build.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def new_file_name() -> str:
    return f"runs-{secrets.token_hex(6)}.duckdb"


def publish(root: Path, manifest: Manifest) -> None:
    """Point the manifest at a freshly written index file, then sweep the files it replaced."""
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".engine-", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(manifest.to_bytes())
    os.replace(tmp, root / MANIFEST)
    for old in root.glob("runs-*.duckdb*"):
        if old.name != manifest.file and not old.name.startswith(manifest.file):
            with contextlib.suppress(OSError):
                old.unlink()  # a reader that has it open keeps its inode until it closes it
    # The read engine replaced the rollup (`<tz>.current`, `<tz>.<token>.<part>.json`): sweep it.
    for stale in [*root.glob("*.current"), *root.glob("*.*.*.json")]:
        with contextlib.suppress(OSError):
            stale.unlink()
