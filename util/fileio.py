"""Atomic file writes: the one implementation every writer of checkpoints, pages, plots and assets uses.

A reader (a browser refreshing a page, a resumed run loading a checkpoint) and a crash at any moment see
either the old file or the complete new one, never a truncated file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# What a plain open() gives under the usual umask 022; mkstemp's own 0600 would hide pages and checkpoints
# from other users and from a web server.
DEFAULT_PERMISSIONS = 0o644

__all__ = ["DEFAULT_PERMISSIONS", "atomic_write", "write_bytes_atomic", "write_text_atomic"]


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
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
