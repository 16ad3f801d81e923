"""Shared pieces of every dataset: the base class, image/mask loading and the joint transform.

Image and masks of one sample are stacked into a single tensor and go through ONE transform, so the
resize, crop and flip are identical for all channels by construction (the original code reseeded
Python's ``random`` for this, which modern torchvision ignores, so masks drifted off their images).

Preprocessing (``--preprocess``):

* ``resize_and_crop``: resize to load size, then crop to crop size.
* ``resize``: resize to load size only.
* ``crop``: crop to crop size, no resize (each image must be at least the crop size).
* ``none``: keep the size, rounded to a multiple of 4 (the generator downsamples twice).

Crops are random when training and centred otherwise (``isTrain`` False), so test results are
deterministic. Horizontal flips happen only when training without ``--no_flip``.

Resizing (``--interpolation``, added by ``BaseDataset.modify_commandline_options``) is bicubic by default,
as the authors' code (PIL ``Image.BICUBIC`` on image and masks), or bilinear; both antialias when
shrinking and reproduce PIL's result within one grey level (``resize_like_pil``). Bicubic overshoots at
sharp edges, so values are clamped to [-1, 1], as PIL's uint8 output was clipped to [0, 255].
"""

from __future__ import annotations

import argparse
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as TF

from util.image_files import (
    DatasetError,
    domain_letters,
    index_mask_files,
    list_image_files,
    mask_number,
    to_8bit,
)
from util.masks import EMPTY_SLOT, MaskFormatError, read_mask

__all__ = ["INTERPOLATIONS", "NO_MASK_ID", "BaseDataset", "DatasetError", "DomainFolder", "JointTransform",
           "add_data_options", "get_joint_transform", "interpolation_mode", "load_image", "load_masks", "mask_ids",
           "pad_masks", "pick_b_index", "resize_like_pil", "round_to_multiple", "split_transformed"]

PIL_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)

# --interpolation choices; the default is the authors' (PIL Image.BICUBIC on image and masks).
INTERPOLATIONS = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}
DEFAULT_INTERPOLATION = "bicubic"


class BaseDataset(Dataset, ABC):
    """A dataset built from ``opt``; subclasses return one sample dict per index."""

    def __init__(self, opt: argparse.Namespace):
        self.opt = opt
        self.root = Path(opt.dataroot)

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Add or change dataset-specific options. The base adds the options every dataset shares
        (``--interpolation``); a subclass that overrides this hook should call it first."""
        return add_data_options(parser)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> dict[str, Any]: ...


def _data_group(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup | argparse.ArgumentParser:
    """The parser's "data" argument group when it has one (so --help lists the option there), else the parser."""
    for group in parser._action_groups:
        if group.title == "data":
            return group
    return parser


def add_data_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--interpolation`` unless the parser already has it (so options/ may declare it instead)."""
    if "--interpolation" not in parser._option_string_actions:
        _data_group(parser).add_argument(
            "--interpolation", default=DEFAULT_INTERPOLATION, choices=list(INTERPOLATIONS),
            help="resampling of image and masks when resizing: bicubic (the authors' code; clamped to [-1, 1] "
                 "since it overshoots) or bilinear")
    if "--seg_root" not in parser._option_string_actions:
        _data_group(parser).add_argument(
            "--seg_root", default=None,
            help="folder holding the <phase>A_seg / <phase>B_seg mask folders, when not --dataroot (e.g. masks "
                 "written by python -m scripts.predict_masks; test.py --predict_masks sets it itself)")
    return parser


def interpolation_mode(opt: argparse.Namespace) -> InterpolationMode:
    """``--interpolation`` as torchvision's mode; bicubic when the option is absent (an older opt)."""
    name = getattr(opt, "interpolation", None) or DEFAULT_INTERPOLATION
    if name not in INTERPOLATIONS:
        raise ValueError(f"--interpolation {name!r}: choose {' or '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


# ---------------------------------------------------------------------------------------------- loading
def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _to_signed_float(pixels: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return pixels.float().div_(127.5).sub_(1.0)


def load_image(path: str | Path, nc: int) -> Tensor:
    """Read an image as a float tensor (nc, H, W) in [-1, 1]; nc 1 gives greyscale, otherwise RGB.

    16-bit greyscale files are scaled to 8 bits (``util.image_files.to_8bit``), not clipped to white.
    """
    try:
        with Image.open(path) as img:
            img = to_8bit(img).convert("L" if nc == 1 else "RGB")
    except PIL_ERRORS as err:
        raise DatasetError(f"cannot read image {path}: {_one_line(err)}; replace or remove the file") from None
    return _to_signed_float(TF.pil_to_tensor(img))


def load_masks(paths: list[Path], size: tuple[int, int], image_path: str | Path = "") -> Tensor:
    """Read masks as a float tensor (len(paths), H, W) in [-1, 1] (0 -> -1, 255 -> +1, grey in between).

    ``size`` is the (height, width) of the image the masks belong to; every mask must match it. Pixels are
    read by ``util.masks.read_mask`` (the rules data/check.py applies): colour masks as grey, 16-bit masks
    scaled to 8 bits; 0/1 masks, faint colour or palette masks and RGBA cut-outs are refused (DatasetError).
    """
    height, width = size
    masks = torch.empty(len(paths), height, width)
    for slot, path in enumerate(paths):
        try:
            with Image.open(path) as mask:
                if mask.size != (width, height):
                    raise DatasetError(f"mask {path} is {mask.width}x{mask.height} but its image {image_path} is "
                                       f"{width}x{height} (width x height); masks must have their image's size")
                grey = read_mask(mask)
        except MaskFormatError as err:
            raise DatasetError(f"mask {path}: {err}") from None
        except PIL_ERRORS as err:
            raise DatasetError(f"cannot read mask {path}: {_one_line(err)}; replace or remove the file") from None
        masks[slot] = _to_signed_float(torch.from_numpy(np.array(grey, dtype=np.uint8)))
    return masks


# ``<X>_seg_ids`` of a slot that holds no mask (a padding slot).
NO_MASK_ID = -1


def mask_ids(paths: list[Path], slots: int) -> Tensor:
    """LongTensor (slots,): the k of the file ``<name>_<k>.png`` each slot was read from, NO_MASK_ID for padding.

    Slots hold the masks in the order of k but k may have gaps (files _0, _2, _5 -> [0, 2, 5, -1, ...]), so a
    slot number is not the file's k; test.py needs the k to name a translated mask after its input file.
    """
    ids = torch.full((slots,), NO_MASK_ID, dtype=torch.long)
    ids[: len(paths)] = torch.tensor([mask_number(path) for path in paths], dtype=torch.long)
    return ids


def pad_masks(masks: Tensor, slots: int) -> Tensor:
    """Fill up to ``slots`` channels with empty (all -1) masks."""
    padding = masks.new_full((slots - masks.shape[0], *masks.shape[1:]), EMPTY_SLOT)
    return torch.cat([masks, padding])


# -------------------------------------------------------------------------------------------- transform
class _RequireAtLeast:
    """Fail clearly instead of letting a crop pad (CenterCrop) or crash deep in torchvision (RandomCrop)."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width

    def __call__(self, stack: Tensor) -> Tensor:
        height, width = stack.shape[-2:]
        if height < self.height or width < self.width:
            raise DatasetError(f"is {width}x{height} (width x height) before cropping, smaller than the crop "
                               f"{self.width}x{self.height}; lower --crop_size_h/--crop_size_w or raise "
                               f"--load_size_h/--load_size_w with --preprocess resize_and_crop")
        return stack


def resize_like_pil(stack: Tensor, size: list[int], interpolation: InterpolationMode) -> Tensor:
    """Resize (channels, H, W) in [-1, 1] to ``size`` (height, width) as PIL's ``Image.resize`` does.

    PIL resamples the width, stores the result as uint8 (clipping bicubic's overshoot), then the height; a
    single float resize keeps the overshoot of the first pass and ends up to ~8 grey levels away from PIL
    at mask corners. So: width, clamp, height, clamp (within one grey level of PIL, see tests/test_data.py).
    Antialiased when shrinking, as PIL.
    """
    height, width = stack.shape[-2:]
    out = stack.as_subclass(Tensor)
    if width != size[1]:
        out = TF.resize(out, [height, size[1]], interpolation=interpolation, antialias=True).clamp_(-1.0, 1.0)
    if height != size[0]:
        out = TF.resize(out, list(size), interpolation=interpolation, antialias=True).clamp_(-1.0, 1.0)
    return tv_tensors.Image(out)


class _Resize:
    """``resize_like_pil`` to a fixed size, or (``multiple``) to the nearest multiple of it on each side."""

    def __init__(self, interpolation: InterpolationMode, size: list[int] | None = None, multiple: int = 0):
        self.interpolation = interpolation
        self.size = size
        self.multiple = multiple

    def __call__(self, stack: Tensor) -> Tensor:
        size = self.size
        if self.multiple:
            size = [round_to_multiple(side, self.multiple) for side in stack.shape[-2:]]
        return resize_like_pil(stack, size, self.interpolation)


# --preprocess none rounds each side to a multiple of this (the generator downsamples twice).
NONE_MULTIPLE = 4


def round_to_multiple(side: int, multiple: int = NONE_MULTIPLE) -> int:
    """The side ``--preprocess none`` resizes to: the nearest multiple of ``multiple``, at least ``multiple``."""
    return max(multiple, round(side / multiple) * multiple)


def get_joint_transform(opt: argparse.Namespace) -> Callable[[Tensor], Tensor]:
    """Transform for a stacked (channels, H, W) float tensor in [-1, 1]: image channels and masks together.

    Uses the torch RNG only, so a fixed ``torch.manual_seed`` (and DataLoader worker seeding) reproduces it.
    Resizing uses ``--interpolation`` (default bicubic) through ``resize_like_pil``, for image and masks
    alike; masks stay soft (never thresholded) and within [-1, 1] (bicubic's overshoot is clamped).
    """
    load_size = [opt.load_size_h, opt.load_size_w]
    crop_size = [opt.crop_size_h, opt.crop_size_w]
    interpolation = interpolation_mode(opt)
    steps: list[Callable] = []
    if opt.preprocess in ("resize_and_crop", "resize"):
        steps.append(_Resize(interpolation, size=load_size))
    if opt.preprocess in ("resize_and_crop", "crop"):
        steps.append(_RequireAtLeast(*crop_size))
        steps.append(v2.RandomCrop(crop_size) if opt.isTrain else v2.CenterCrop(crop_size))
    if opt.preprocess == "none":
        steps.append(_Resize(interpolation, multiple=NONE_MULTIPLE))
    if opt.preprocess not in ("resize_and_crop", "resize", "crop", "none"):
        raise ValueError(f"--preprocess {opt.preprocess!r}: choose resize_and_crop, resize, crop or none")
    if opt.isTrain and not opt.no_flip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    return JointTransform(v2.Compose(steps))


class JointTransform:
    """Runs the pipeline on a plain tensor; a class, not a closure, so datasets pickle for spawned workers.

    The output is clamped to [-1, 1], the range the models read images and masks in (a safety net: the
    resize already clamps bicubic's overshoot; crops and flips cannot leave the range).
    """

    def __init__(self, pipeline: Callable):
        self.pipeline = pipeline

    def __call__(self, stack: Tensor) -> Tensor:
        out = self.pipeline(tv_tensors.Image(stack))
        return out.as_subclass(Tensor).clamp_(-1.0, 1.0)


def split_transformed(transform: Callable[[Tensor], Tensor], image: Tensor, masks: Tensor,
                      path: str | Path = "") -> tuple[Tensor, Tensor]:
    """Apply one transform to image and masks together and split them again."""
    try:
        out = transform(torch.cat([image, masks]))
    except DatasetError as err:
        raise DatasetError(f"image {path} {err}") from None
    return out[: image.shape[0]], out[image.shape[0]:]


# ------------------------------------------------------------------------------------------------ domain
def pick_b_index(index: int, len_b: int, serial: bool) -> int:
    """B follows A's index with serial batches, else it is drawn at random (torch RNG: reproducible)."""
    return index % len_b if serial else int(torch.randint(len_b, ()).item())


class DomainFolder:
    """One domain on disk: images in ``<dataroot>/<phase><letter>`` and, with masks, ``..._seg``.

    The mask index (stem -> ordered mask files) is built once here, from one directory listing.
    """

    def __init__(self, opt: argparse.Namespace, letter: str, nc: int, with_masks: bool):
        self.letter = letter
        self.nc = nc
        self.with_masks = with_masks
        self.max_instances = opt.max_instances
        folder = Path(opt.dataroot) / f"{opt.phase}{letter}"
        try:
            self.paths = list_image_files(folder, opt.max_dataset_size)
        except DatasetError as err:
            raise DatasetError(f"{err}: expected <dataroot>/<phase>{letter} with images; check --dataroot and "
                               f"--phase") from None
        self.masks: dict[str, list[Path]] = {}
        if with_masks:
            seg_root = Path(getattr(opt, "seg_root", None) or opt.dataroot)
            self.masks = self._index_masks(seg_root / f"{folder.name}_seg", letter)
            self._warn_if_capped(folder)

    @staticmethod
    def _index_masks(seg_folder: Path, letter: str) -> dict[str, list[Path]]:
        if not seg_folder.is_dir():
            raise DatasetError(f"no folder {seg_folder}: expected <dataroot>/<phase>{letter}_seg with masks "
                               f"<name>_<k>.png (it may be empty); create it, or for images without masks use "
                               f"--dataset_mode unaligned (training) or single (testing)")
        return index_mask_files(seg_folder)

    def _warn_if_capped(self, folder: Path) -> None:
        counts = [len(self.masks.get(p.stem, ())) for p in self.paths]
        over = sum(count > self.max_instances for count in counts)
        if over:
            warnings.warn(f"{over} image(s) in {folder} have more than {self.max_instances} masks (up to "
                          f"{max(counts)}); only the first {self.max_instances} by k are used. Raise "
                          f"--max_instances to use more.", stacklevel=3)

    def __len__(self) -> int:
        return len(self.paths)

    def mask_paths(self, index: int) -> list[Path]:
        return self.masks.get(self.paths[index].stem, [])[: self.max_instances]

    def load(self, index: int, transform: Callable[[Tensor], Tensor]) -> dict[str, Any]:
        """Keys ``image``, ``path`` and, with masks, ``seg`` (max_instances, H, W), ``seg_ids`` (max_instances,),
        see ``mask_ids``, and ``num_instances``."""
        path = self.paths[index]
        image = load_image(path, self.nc)
        if not self.with_masks:
            return {"image": split_transformed(transform, image, image[:0], path)[0], "path": str(path)}
        mask_files = self.mask_paths(index)
        masks = load_masks(mask_files, tuple(image.shape[-2:]), path)
        image, masks = split_transformed(transform, image, masks, path)
        return {"image": image, "seg": pad_masks(masks, self.max_instances), "path": str(path),
                "seg_ids": mask_ids(mask_files, self.max_instances), "num_instances": len(mask_files)}


class OneFolderDataset(BaseDataset):
    """One domain, in file order, for test.py: ``<phase>A`` (``<phase>B`` with ``--direction BtoA``).

    The keys are named ``A`` whichever folder was read: they hold the domain being translated, and ``domain``
    says which folder it was ("A" or "B"). Images of folder A have ``--input_nc`` channels, those of folder B
    ``--output_nc``. Subclasses say whether masks are read.
    """

    with_masks = False

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        letter = domain_letters(opt)[0]
        channels = opt.output_nc if letter == "B" else opt.input_nc
        self.domain = DomainFolder(opt, letter, channels, with_masks=self.with_masks)
        self.transform = get_joint_transform(opt)

    def __len__(self) -> int:
        return len(self.domain)

    def __getitem__(self, index: int) -> dict[str, Any]:
        a = self.domain.load(index, self.transform)
        sample = {"A": a["image"], "A_paths": a["path"], "domain": self.domain.letter}
        if self.with_masks:
            sample.update(A_seg=a["seg"], A_seg_ids=a["seg_ids"], A_num_instances=a["num_instances"])
        return sample
