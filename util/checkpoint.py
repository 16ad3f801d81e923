"""Saving and loading checkpoints safely: atomic writes and weights-only loading."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from .fileio import atomic_write

# The one file exact resume reads (train.py writes it beside latest_net_*.pth).
STATE_FILE = "latest_state.pth"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through ``util.fileio.atomic_write``: a crash at any moment leaves either the old file
    or the new one, never a truncated checkpoint."""
    return atomic_write(path, lambda stream: torch.save(obj, stream))


def load_weights_only(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)``; files that need arbitrary code to load are refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check --checkpoints_dir, --name and --epoch")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"refusing to load {path}: it needs arbitrary Python code to unpickle "
                              f"({str(err).splitlines()[0]}); only load files you trust, after re-saving their "
                              f"state_dict") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"cannot read checkpoint {path} ({str(err).splitlines()[0]}); the file is truncated "
                              f"or corrupt: use another --epoch") from None
