"""Small nets that evaluate.py trains on a dataset and caches under ``<dataroot>/.cache/`` (the domain
classifiers, the segmenter): one key from the settings and the training files, one way to read and write them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import torch


def files_key(settings: dict, files: Iterable[tuple[str, Path]]) -> str:
    """A hash of ``settings`` and of every (prefix, file): its folder and name, size and modification time, so a
    changed, added or removed training file gives another key."""
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for prefix, path in files:
        stat = path.stat()
        digest.update(f"{prefix}{path.parent.name}/{path.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def read_cache(path: Path, key: str, what: str, log: Callable[[str], None]) -> dict | None:
    """The cached record at ``path`` when it exists and was saved with ``key``; None otherwise (an unreadable
    file is logged, naming ``what``, and treated as missing)."""
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError) as err:
        log(f"ignoring unreadable {what} cache {path} ({err}); retraining")
        return None
    return cached if cached.get("key") == key else None


def write_cache(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(record, path)
