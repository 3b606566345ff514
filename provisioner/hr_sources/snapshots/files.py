"""The drop folder's side: which files are ready, their content hash, where they are moved.

Files are taken oldest first (modification time, then name). One is ready once unchanged for
``settle_seconds``; a name starting with ``.`` never is (HR's half-written file). Moving is a
rename inside one file system (archive/ and rejected/ are beside the files by default), never
over an existing file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provisioner.hr_sources.snapshots.models import FILE_NAME

_CHUNK = 1 << 20
_NAME_ROOM = FILE_NAME - len("20261231T235959.999999Z-") - len(".errors.txt") - 4  # a ".999" counter


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path
    size: int
    mtime: float

    @property
    def name(self) -> str:
        """The file name as text (bytes that are not UTF-8 shown as U+FFFD), at most FILE_NAME long."""
        return display_name(self.path)

    def age(self) -> float:
        return time.time() - self.mtime

    def changed(self) -> bool:
        """Modified (or gone) since it was listed."""
        try:
            now = self.path.stat()
        except FileNotFoundError:
            return True
        return (now.st_size, now.st_mtime) != (self.size, self.mtime)


def display_name(path: Path) -> str:
    return path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")[:FILE_NAME]


def candidates(folder: Path, pattern: str) -> list[Candidate]:
    """Regular files in ``folder`` (not below it) matching ``pattern``, oldest first."""
    found: list[Candidate] = []
    for path in folder.glob(pattern):
        if path.name.startswith("."):
            continue
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):
            found.append(Candidate(path, info.st_size, info.st_mtime))
    return sorted(found, key=lambda c: (c.mtime, c.path.name))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def destination(folder: Path, name: str, at: datetime) -> Path:
    """A free path in ``folder`` for the file ``name`` taken at ``at``: ``<UTC time>-<name>``."""
    base = f"{at.strftime('%Y%m%dT%H%M%S.%fZ')}-{_shortened(name)}"
    path, n = folder / base, 1
    while path.exists() or _errors_file(path).exists():
        path, n = folder / f"{base}.{n}", n + 1
    return path


def move(path: Path, to: Path) -> bool:
    """Move ``path`` to ``to`` (its folder created); False when ``path`` is no longer there."""
    to.parent.mkdir(parents=True, exist_ok=True)
    if to.exists():
        raise FileExistsError(f"{to} exists: not overwritten")
    try:
        shutil.move(os.fspath(path), os.fspath(to))
    except FileNotFoundError:
        if path.exists():
            raise
        return False
    return True


def write_errors(moved: Path, lines: list[str]) -> Path:
    """``<moved>.errors.txt`` beside the rejected file."""
    errors = _errors_file(moved)
    errors.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return errors


def _errors_file(path: Path) -> Path:
    return path.with_name(path.name + ".errors.txt")


def _shortened(name: str) -> str:
    """Room for the time prefix and the errors suffix within a file name's 255 bytes (the end
    of the name, with its extension, is kept)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= _NAME_ROOM:
        return name
    return raw[-_NAME_ROOM:].decode("utf-8", "ignore")
