"""Atomic file writes: the one implementation every writer of checkpoints, pages, plots and assets uses.

A reader (a browser refreshing a page, a resumed run loading a checkpoint) and a crash at any moment see
either the old file or the complete new one, never a truncated file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# What a plain open() gives under the usual umask 022; mkstemp's own 0600 would hide pages and checkpoints
# from other users and from a web server.
DEFAULT_PERMISSIONS = 0o644

# The temporary file of an atomic write of NAME is ".NAME.<8 random characters>.tmp" (tempfile.mkstemp's random
# part); a kill -9 or power cut during the write leaves it behind. remove_stale_temporaries matches exactly this.
TEMP_SUFFIX = ".tmp"
TEMP_PATTERN = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))

__all__ = ["DEFAULT_PERMISSIONS", "TEMP_PATTERN", "atomic_folder", "atomic_write", "remove_stale_temporaries",
           "write_bytes_atomic", "write_text_atomic"]


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], *,
                 permissions: int = DEFAULT_PERMISSIONS) -> Path:
    """Create or replace ``path`` with what ``write(stream)`` writes to a binary stream; returns ``path``.

    The data goes to a temporary file in the same folder (a rename is atomic only within one file system),
    is flushed and fsynced, then renamed over ``path``; the folder is fsynced so the rename survives a power
    cut too. On any error, ``KeyboardInterrupt`` included, the temporary file is removed and the old file
    stays. Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, permissions)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def write_bytes_atomic(path: str | Path, data: bytes, *, permissions: int = DEFAULT_PERMISSIONS) -> Path:
    """``atomic_write`` of ``data``."""
    return atomic_write(path, lambda stream: stream.write(data), permissions=permissions)


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8", *,
                      permissions: int = DEFAULT_PERMISSIONS) -> Path:
    """``atomic_write`` of ``text`` encoded with ``encoding`` (newlines written as given)."""
    return write_bytes_atomic(path, text.encode(encoding), permissions=permissions)


@contextmanager
def atomic_folder(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Fill a folder that appears at ``path`` complete or not at all: yields an empty temporary folder beside
    ``path`` (``.NAME.<random>.tmp``); when the block ends without error it is renamed to ``path``, and on any
    error it is deleted and ``path`` is untouched. An existing ``path`` is replaced only with ``replace``
    (otherwise FileExistsError before anything is written); the old folder is deleted after the swap."""
    path = Path(path)
    if path.exists() and not replace:
        raise FileExistsError(f"{path} exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent))
    try:
        yield temp
        old = None
        if path.exists():
            old = path.with_name(f"{temp.name}.old")
            os.replace(path, old)
        os.replace(temp, path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_folder(path.parent)


def remove_stale_temporaries(folder: str | Path, older_than_s: float = 60.0, *, recursive: bool = True) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes left in ``folder``; returns the removed paths.

    Only files named like ours (``.NAME.<random>.tmp``) and last modified more than ``older_than_s`` seconds ago
    are removed, so a write in progress in another process is left alone; with ``recursive`` sub-folders (e.g.
    ``web/``) too. Symbolic links and files that vanish or cannot be removed meanwhile are skipped. A missing
    folder removes nothing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    deadline = time.time() - older_than_s
    removed = []
    for path in sorted(folder.rglob(f"*{TEMP_SUFFIX}") if recursive else folder.glob(f"*{TEMP_SUFFIX}")):
        if not TEMP_PATTERN.fullmatch(path.name):
            continue
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_mtime > deadline:
                continue
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
