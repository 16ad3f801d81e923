"""Conversions from network tensors to viewable images, and small file helpers.

Images are tensors in [-1, 1]; instance-mask sets are (K, H, W) tensors in [-1, 1] where a slot that is
-1 everywhere is padding, not an instance.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

# The kinds of visual a model declares in its ``visual_names``.
IMAGE = "image"   # images (B, C, H, W) in [-1, 1]
MASKS = "masks"   # instance-mask sets (B, K, H, W) in [-1, 1], empty slots all -1
VISUAL_KINDS = (IMAGE, MASKS)

# A slot counts as empty when no pixel rises above -1 by more than this (float noise, not a faint instance).
EMPTY_SLOT_TOLERANCE = 1e-4

# Hand-picked, clearly different first colours (RGB); more instances get golden-angle hues.
_BASE_PALETTE = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40),
)


def instance_color(index: int) -> tuple[int, int, int]:
    """The fixed colour of instance slot ``index`` (the same slot gets the same colour in every visual)."""
    if index < len(_BASE_PALETTE):
        return _BASE_PALETTE[index]
    hue = (index * 0.618033988749895) % 1.0
    value = 1.0 if index % 2 else 0.75
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _as_numpy(tensor: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(tensor, Tensor):
        return tensor.detach().to("cpu", torch.float32).numpy()
    return np.asarray(tensor, dtype=np.float32)


def _first_sample(tensor: Tensor | np.ndarray, what: str) -> np.ndarray:
    """(C,H,W) or (B,C,H,W) -> (C,H,W) of the first sample, as float32 numpy."""
    array = _as_numpy(tensor)
    if array.ndim == 4:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"{what}: expected a (C, H, W) or (B, C, H, W) tensor, got shape {tuple(array.shape)}")
    return array


def _to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 0..255 (rounded, out-of-range values clipped)."""
    return np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8)


def tensor2im(image: Tensor) -> np.ndarray:
    """An image tensor (C,H,W) or (1,C,H,W) in [-1, 1] -> uint8 (H, W, 3); one channel becomes grey RGB."""
    array = _first_sample(image, "tensor2im")
    if array.shape[0] == 1:
        array = np.repeat(array, 3, axis=0)
    if array.shape[0] != 3:
        raise ValueError(f"tensor2im: expected 1 or 3 channels, got {array.shape[0]} (shape {tuple(array.shape)}); "
                         f"instance-mask sets go through masks2im (visuals declared as MASKS)")
    return _to_uint8((array.transpose(1, 2, 0) + 1.0) / 2.0)


def is_empty_slot(mask: Tensor | np.ndarray) -> bool:
    """True when a mask slot is padding (-1 everywhere), not an instance."""
    return bool(_as_numpy(mask).max(initial=-1.0) <= -1.0 + EMPTY_SLOT_TOLERANCE)


def masks2im(masks: Tensor) -> np.ndarray:
    """A mask set (K,H,W) or (1,K,H,W) in [-1, 1] -> uint8 (H, W, 3) on black: slot k drawn in
    ``instance_color(k)``, soft values blended by their strength, later slots over earlier ones."""
    array = _first_sample(masks, "masks2im")
    canvas = np.zeros(array.shape[1:] + (3,), dtype=np.float32)
    for index, mask in enumerate(array):
        if is_empty_slot(mask):
            continue
        alpha = np.clip((mask + 1.0) / 2.0, 0.0, 1.0)[..., None]
        colour = np.asarray(instance_color(index), dtype=np.float32) / 255.0
        canvas = canvas * (1.0 - alpha) + colour * alpha
    return _to_uint8(canvas)


def mask2im(mask: Tensor) -> np.ndarray:
    """One mask (H, W) in [-1, 1] -> uint8 (H, W) grey, 0 background .. 255 instance."""
    array = _as_numpy(mask)
    if array.ndim != 2:
        raise ValueError(f"mask2im: expected one (H, W) mask, got shape {tuple(array.shape)}")
    return _to_uint8((array + 1.0) / 2.0)


def visual2im(kind: str, tensor: Tensor) -> np.ndarray:
    """A visual of a declared kind -> uint8 (H, W, 3): mask sets are coloured per instance, images mapped to
    0..255."""
    if kind not in VISUAL_KINDS:
        raise ValueError(f"visual2im: kind {kind!r} is neither {IMAGE!r} nor {MASKS!r}")
    return masks2im(tensor) if kind == MASKS else tensor2im(tensor)


def save_image(array: np.ndarray, path: str | Path, aspect_ratio: float = 1.0) -> None:
    """Save a uint8 (H, W) or (H, W, 3) array as an image file; ``aspect_ratio`` > 1 widens it, < 1 makes
    it taller (width / height of the saved picture relative to the array)."""
    if aspect_ratio <= 0:
        raise ValueError(f"save_image: aspect_ratio must be positive, got {aspect_ratio}")
    image = Image.fromarray(np.ascontiguousarray(array))
    height, width = array.shape[:2]
    if aspect_ratio > 1.0:
        image = image.resize((round(width * aspect_ratio), height), Image.BICUBIC)
    elif aspect_ratio < 1.0:
        image = image.resize((width, round(height / aspect_ratio)), Image.BICUBIC)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def mkdirs(paths: str | Path | Iterable[str | Path]) -> None:
    """Create one folder or each folder of a list (parents too; existing ones are fine)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for path in paths:
        Path(path).mkdir(parents=True, exist_ok=True)
