"""Pieces of the paired datasets (``aligned``, ``aligned_ab``): one random geometry for several tensors.

``PairedTransform`` draws the resize / crop / flip of one sample once and applies it to every tensor of the
sample (a label map, an instance map, an image, or the two halves of a pix2pix image), each with its own
resampling: images through ``resize_like_pil`` with ``--interpolation`` (as ``get_joint_transform``), id maps
(labels, instances) with nearest-neighbour sampling, so no id is ever blended into a new one.

The options are those of ``get_joint_transform``: ``--preprocess resize_and_crop|resize|crop|none``,
``--load_size_h/_w``, ``--crop_size_h/_w``, ``--no_flip`` and ``isTrain`` (random crop and flip when training;
centre crop and no flip otherwise). Randomness comes from torch's global RNG only, which the loader seeds per
sample, so a sample is reproducible.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from util.image_files import DatasetError

from .base_dataset import (
    NONE_MULTIPLE,
    PIL_ERRORS,
    _data_group,
    interpolation_mode,
    resize_like_pil,
    round_to_multiple,
)

__all__ = ["IDS", "IMAGE", "PREPROCESS_CHOICES", "PairedTransform", "add_option_once", "open_image", "pil_ids", "resize_nearest"]

IMAGE = "image"  # float (C, H, W) in [-1, 1], resampled with --interpolation
IDS = "ids"  # integer (C, H, W) ids, resampled nearest-neighbour
PREPROCESS_CHOICES = ("resize_and_crop", "resize", "crop", "none")


def open_image(path: str | Path, kind: str) -> Image.Image:
    """Open and decode ``path`` (``kind`` names it in the error: "label map", "image"...); DatasetError if
    it cannot be read."""
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except PIL_ERRORS as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DatasetError(f"cannot read {kind} {path}: {reason}; replace or remove the file") from None


def resize_nearest(ids: Tensor, size: Sequence[int]) -> Tensor:
    """Nearest-neighbour resize of (C, H, W) to ``size`` (height, width), any dtype, sampling at pixel centres
    (as PIL's NEAREST): every output value is one of the input values."""
    height, width = ids.shape[-2:]
    rows = ((torch.arange(size[0]) + 0.5) * height / size[0]).long().clamp_(max=height - 1)
    cols = ((torch.arange(size[1]) + 0.5) * width / size[1]).long().clamp_(max=width - 1)
    return ids[..., rows[:, None], cols[None, :]]


@dataclass(frozen=True)
class _Geometry:
    """One sample's drawn geometry: size after resizing, crop box (top, left, height, width), flip."""

    size: tuple[int, int]
    crop: tuple[int, int, int, int]
    flip: bool


class PairedTransform:
    """Apply one random resize / crop / flip to several (C, H, W) tensors of one size.

    Call with ``(tensor, IMAGE or IDS)`` pairs; returns the transformed tensors in the same order. A plain
    class holding numbers only, so datasets pickle for spawned workers.
    """

    def __init__(self, opt: argparse.Namespace):
        if opt.preprocess not in PREPROCESS_CHOICES:
            raise ValueError(f"--preprocess {opt.preprocess!r}: choose {', '.join(PREPROCESS_CHOICES)}")
        self.preprocess = opt.preprocess
        self.load_size = (opt.load_size_h, opt.load_size_w)
        self.crop_size = (opt.crop_size_h, opt.crop_size_w)
        self.interpolation = interpolation_mode(opt)
        self.random = bool(opt.isTrain)
        self.flip = bool(opt.isTrain and not opt.no_flip)

    def __call__(self, *items: tuple[Tensor, str]) -> list[Tensor]:
        sizes = {tuple(tensor.shape[-2:]) for tensor, _ in items}
        if len(sizes) != 1:
            raise DatasetError(f"tensors of one sample differ in size: {sorted(sizes)} (height, width)")
        geometry = self.draw(*sizes.pop())
        return [self.apply(tensor, kind, geometry) for tensor, kind in items]

    def draw(self, height: int, width: int) -> _Geometry:
        """The geometry of one sample of (height, width), from torch's RNG (crop first, then flip)."""
        if self.preprocess in ("resize_and_crop", "resize"):
            height, width = self.load_size
        elif self.preprocess == "none":
            height, width = round_to_multiple(height, NONE_MULTIPLE), round_to_multiple(width, NONE_MULTIPLE)
        crop = (0, 0, height, width)
        if self.preprocess in ("resize_and_crop", "crop"):
            crop = self._crop_box(height, width)
        flip = self.flip and bool(torch.rand(()) < 0.5)
        return _Geometry((height, width), crop, flip)

    def _crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        crop_h, crop_w = self.crop_size
        if height < crop_h or width < crop_w:
            raise DatasetError(f"is {width}x{height} (width x height) before cropping, smaller than the crop "
                               f"{crop_w}x{crop_h}; lower --crop_size_h/--crop_size_w or raise "
                               f"--load_size_h/--load_size_w with --preprocess resize_and_crop")
        if self.random:
            top = int(torch.randint(height - crop_h + 1, ()).item())
            left = int(torch.randint(width - crop_w + 1, ()).item())
        else:
            top, left = round((height - crop_h) / 2), round((width - crop_w) / 2)
        return top, left, crop_h, crop_w

    def apply(self, tensor: Tensor, kind: str, geometry: _Geometry) -> Tensor:
        """Resize (``kind`` IMAGE: --interpolation, clamped to [-1, 1]; IDS: nearest), crop, flip."""
        if tuple(tensor.shape[-2:]) != geometry.size:
            if kind == IDS:
                tensor = resize_nearest(tensor, geometry.size)
            else:
                tensor = resize_like_pil(tensor, list(geometry.size), self.interpolation).as_subclass(Tensor)
        top, left, crop_h, crop_w = geometry.crop
        tensor = tensor[..., top:top + crop_h, left:left + crop_w]
        if geometry.flip:
            tensor = tensor.flip(-1)
        if kind == IMAGE:
            tensor = tensor.clamp(-1.0, 1.0)
        return tensor.contiguous()


def pil_ids(img: Image.Image) -> np.ndarray:
    """The raw integer values of a one-channel image (L, P, I;16*, I) as int64 (H, W); no scaling."""
    return np.asarray(img).astype(np.int64)


def add_option_once(parser: argparse.ArgumentParser, flag: str, **kwargs) -> None:
    """Add ``flag`` to the parser's "data" group unless the parser has it already (a model may declare it)."""
    if flag not in parser._option_string_actions:
        _data_group(parser).add_argument(flag, **kwargs)
