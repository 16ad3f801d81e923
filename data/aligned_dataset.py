"""Paired label-map-to-image data (the pix2pixHD layout), files matched by stem:

    <dataroot>/<phase>_label/<stem>.png      label ids, one per pixel (8-bit grey L or palette P), or with
                                             --label_nc 0 an RGB image used as the input as it is
    <dataroot>/<phase>_inst/<stem>.png       optional instance ids, 8- or 16-bit one-channel PNG (L, I;16, I),
                                             read as raw integers (not scaled); ignored with --no_instance
    <dataroot>/<phase>_img/<stem>.png|.jpg   the real image, --output_nc channels

Every label map needs its image (and, when ``<phase>_inst`` exists, its instance map) and every image and
instance map its label map; the three files of a sample must have one size. One random resize / crop / flip
is applied to all three (``data.paired.PairedTransform``): nearest-neighbour for the id maps, so ids survive
unchanged, and ``--interpolation`` for the images.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from util.image_files import SIXTEEN_BIT_MODES, DatasetError, list_image_files, same_name

from .base_dataset import BaseDataset, load_image
from .paired import IDS, IMAGE, PairedTransform, add_option_once, open_image, pil_ids

__all__ = ["ID_MODES", "AlignedDataset", "pair_files"]

# One-channel modes whose pixel values are read as ids (16-bit PNGs open as I;16 or, in older Pillow, I).
ID_MODES = frozenset({"L", "P"}) | SIXTEEN_BIT_MODES
FOLDERS = ("label", "inst", "img")


class AlignedDataset(BaseDataset):
    """Samples ``label``, ``inst`` (when instance maps are used), ``image`` and ``paths``.

    ``label``: int64 (1, H, W) ids when ``--label_nc`` > 0, else float (input_nc, H, W) in [-1, 1];
    ``inst``: int64 (1, H, W) raw instance ids, in every sample when ``<phase>_inst`` exists and
    ``--no_instance`` is not given, else absent; ``image``: float (output_nc, H, W) in [-1, 1];
    ``paths``: the label file's path.
    """

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser = BaseDataset.modify_commandline_options(parser, is_train)
        add_option_once(parser, "--label_nc", type=int, default=0,
                        help="label classes: <phase>_label holds ids 0..label_nc-1, one per pixel; 0: it holds "
                             "RGB images used as the input")
        add_option_once(parser, "--no_instance", action="store_true",
                        help="ignore <phase>_inst (instance maps) even where it exists")
        return parser

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.label_nc = int(getattr(opt, "label_nc", 0) or 0)
        if self.label_nc < 0:
            raise ValueError(f"--label_nc {self.label_nc}: give the number of label ids, or 0 for RGB label images")
        folders = {kind: self.root / f"{opt.phase}_{kind}" for kind in FOLDERS}
        self.use_instances = folders["inst"].is_dir() and not getattr(opt, "no_instance", False)
        if not self.use_instances:
            del folders["inst"]
        self.samples = pair_files(folders)
        if math.isfinite(opt.max_dataset_size):
            self.samples = self.samples[: int(opt.max_dataset_size)]
        self.transform = PairedTransform(opt)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        files = self.samples[index]
        label_path = files["label"]
        label, label_kind = self._load_label(label_path)
        size = tuple(label.shape[-2:])
        items = [(label, label_kind)]
        if self.use_instances:
            items.append((_check_size(self._load_ids(files["inst"], "instance map"), size, files["inst"],
                                      label_path), IDS))
        items.append((_check_size(load_image(files["img"], self.opt.output_nc), size, files["img"], label_path),
                      IMAGE))
        try:
            out = self.transform(*items)
        except DatasetError as err:
            raise DatasetError(f"label map {label_path} {err}") from None
        sample = {"label": out[0], "image": out[-1], "paths": str(label_path)}
        if self.use_instances:
            sample["inst"] = out[1]
        return sample

    def _load_label(self, path: Path) -> tuple[Tensor, str]:
        if self.label_nc == 0:
            return load_image(path, self.opt.input_nc), IMAGE
        ids = self._load_ids(path, "label map")
        low, high = int(ids.min()), int(ids.max())
        if high >= self.label_nc or low < 0:
            bad = high if high >= self.label_nc else low
            raise DatasetError(f"label map {path} holds id {bad} but --label_nc {self.label_nc} allows ids 0.."
                               f"{self.label_nc - 1}; raise --label_nc to at least {high + 1}, or fix the file")
        return ids, IDS

    def _load_ids(self, path: Path, kind: str) -> Tensor:
        img = open_image(path, kind)
        if img.mode not in ID_MODES:
            extra = (", or pass --label_nc 0 to use RGB label maps as input images"
                     if kind == "label map" else ", or pass --no_instance to train without instance maps")
            raise DatasetError(f"{kind} {path} has image mode {img.mode}, but ids are read from one channel; save "
                               f"it as a one-channel PNG (8-bit grey L or palette P; 16-bit for instance ids)"
                               f"{extra}")
        return torch.from_numpy(pil_ids(img))[None]


def _check_size(tensor: Tensor, size: tuple[int, ...], path: Path, label_path: Path) -> Tensor:
    if tuple(tensor.shape[-2:]) != size:
        height, width = tensor.shape[-2:]
        raise DatasetError(f"{path} is {width}x{height} but its label map {label_path} is {size[1]}x{size[0]} "
                           f"(width x height); save the files of one sample at one size")
    return tensor


def pair_files(folders: dict[str, Path]) -> list[dict[str, Path]]:
    """Match ``folders`` ({"label": ..., "img": ..., optionally "inst": ...}) by stem: one dict of paths per
    label map, in label order. DatasetError naming the first file without its partner, or an empty folder."""
    listed = {kind: _list(kind, folder) for kind, folder in folders.items()}
    by_stem = {kind: {same_name(p.stem): p for p in paths} for kind, paths in listed.items()}
    labels = by_stem["label"]
    for kind, files in by_stem.items():
        if kind == "label":
            continue
        for stem, path in files.items():
            if stem not in labels:
                raise DatasetError(f"{path} has no label map {stem}.png in {folders['label']}; add it or remove "
                                   f"the file")
        for stem, path in labels.items():
            if stem not in files:
                what = {"img": "image", "inst": "instance map"}[kind]
                extra = " (or pass --no_instance to ignore the instance maps)" if kind == "inst" else ""
                raise DatasetError(f"label map {path} has no {what} {stem}.png/.jpg in {folders[kind]}; add it "
                                   f"or remove the label map{extra}")
    return [{kind: by_stem[kind][stem] for kind in folders} for stem in labels]


def _list(kind: str, folder: Path) -> list[Path]:
    try:
        return list_image_files(folder)
    except DatasetError as err:
        if kind == "inst":
            raise DatasetError(f"{err}: the instance maps of an aligned dataset (<phase>_inst/<stem>.png); add "
                               f"them, remove the empty folder or pass --no_instance") from None
        raise DatasetError(f"{err}: an aligned dataset needs <dataroot>/<phase>_label and <phase>_img with one "
                           f"file per sample (<phase>_inst optional); check --dataroot and --phase") from None
