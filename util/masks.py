"""Instance-mask pixel conventions, in one place for the loader, the dataset builders, the checker and evaluation.

On disk a mask is an 8-bit grey image: ``MASK_BACKGROUND`` (0) outside the instance, ``MASK_INSTANCE`` (255)
inside; readers that need a yes/no per pixel count ``MASK_THRESHOLD`` (128, half of 255) and above as instance.
In tensors a mask is in [-1, 1] and a padding slot (no instance) is ``EMPTY_SLOT`` (-1) everywhere.

Only numpy and PIL are imported, so the dataset builders can use this without loading torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MASK_BACKGROUND = 0
MASK_INSTANCE = 255
MASK_THRESHOLD = 128
EMPTY_SLOT = -1.0


def binarize_mask(grey: np.ndarray) -> np.ndarray:
    """A grey uint8 mask -> boolean (H, W), True where the pixel is at least ``MASK_THRESHOLD``."""
    return np.asarray(grey) >= MASK_THRESHOLD


def mask_to_grey(mask: np.ndarray) -> np.ndarray:
    """A boolean (H, W) mask -> uint8 grey, ``MASK_INSTANCE`` inside and ``MASK_BACKGROUND`` outside."""
    return np.where(np.asarray(mask, dtype=bool), MASK_INSTANCE, MASK_BACKGROUND).astype(np.uint8)


def save_mask(mask: np.ndarray, path: str | Path) -> None:
    """Write a boolean (H, W) mask as the 8-bit grey file the loader reads (the format follows the suffix)."""
    Image.fromarray(mask_to_grey(mask), "L").save(path)
