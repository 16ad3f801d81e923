"""pix2pix's paired images, side by side in one file (``--dataset_mode aligned_ab``):

    <dataroot>/<phase>/<name>.png|.jpg    left half A, right half B (the width must be even)

``A`` has ``--input_nc`` channels and ``B`` ``--output_nc``; with ``--direction BtoA`` the halves swap (``A``
is the right half, the one translated from). Both halves get one random resize / crop / flip
(``data.paired.PairedTransform``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from util.image_files import DatasetError, domain_letters, list_image_files, to_8bit

from .base_dataset import BaseDataset
from .paired import IMAGE, PairedTransform, open_image

__all__ = ["AlignedAbDataset", "split_halves"]


class AlignedAbDataset(BaseDataset):
    """Samples ``A``, ``B`` (float (input_nc | output_nc, H, W) in [-1, 1]), ``A_paths`` and ``B_paths``
    (both the path of the side-by-side file)."""

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        folder = self.root / opt.phase
        try:
            self.paths = list_image_files(folder, opt.max_dataset_size)
        except DatasetError as err:
            raise DatasetError(f"{err}: --dataset_mode aligned_ab expects <dataroot>/<phase> with side-by-side "
                               f"images (A left, B right); check --dataroot and --phase") from None
        self.swap = domain_letters(opt)[0] == "B"
        self.transform = PairedTransform(opt)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        left, right = split_halves(path)
        a, b = (right, left) if self.swap else (left, right)
        a, b = _to_tensor(a, self.opt.input_nc), _to_tensor(b, self.opt.output_nc)
        try:
            a, b = self.transform((a, IMAGE), (b, IMAGE))
        except DatasetError as err:
            raise DatasetError(f"image {path} (one half) {err}") from None
        return {"A": a, "B": b, "A_paths": str(path), "B_paths": str(path)}


def split_halves(path: str | Path) -> tuple[Image.Image, Image.Image]:
    """The left and right halves of a side-by-side image; DatasetError if unreadable or of odd width."""
    img = to_8bit(open_image(path, "image"))
    width, height = img.size
    if width % 2:
        raise DatasetError(f"image {path} is {width}x{height} (width x height): an odd width cannot be split into "
                           f"two halves A|B; save A and B side by side at one size (width = 2 x the width of one)")
    half = width // 2
    return img.crop((0, 0, half, height)), img.crop((half, 0, width, height))


def _to_tensor(img: Image.Image, nc: int) -> Tensor:
    """(nc, H, W) float in [-1, 1]; nc 1 gives greyscale, otherwise RGB."""
    pixels = TF.pil_to_tensor(img.convert("L" if nc == 1 else "RGB"))
    return pixels.float().div_(127.5).sub_(1.0)
