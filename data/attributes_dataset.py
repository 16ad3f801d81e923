"""Images with binary attribute labels, some of them unlabelled, for conditional translation (StarGAN, MatchGAN).

    <dataroot>/<phase>/<name>.png     images (.png, .jpg, .jpeg)
    --label_file                      their labels; default <dataroot>/<phase>_labels.csv when it exists,
                                      else <dataroot>/list_attr_celeba.txt

Two label formats (read by util/attribute_labels.py, which evaluate.py shares), told apart by the first line:

* CelebA's ``list_attr_celeba.txt``: the number of images, then the attribute names separated by spaces,
  then one line per image, ``<file name> v1 v2 ...`` with values 1 / -1 (runs of spaces allowed);
* a CSV with the header ``filename,attr1,attr2,...`` (any name for the first column) and one row per image.

Values may be 1/0, 1/-1 or true/false in either format; labels are 0/1. Rows are matched to images by file name
without its extension (``000001.jpg`` labels ``000001.png``). Rows that match no image are ignored, since one
CelebA file lists every split; images without a row are skipped with a warning (none matching is an error).

``--attributes`` picks the label columns, in its order; ``--labelled_fraction`` keeps the labels of a seeded
random subset of the images (``--seed``, 0 without one) when training: the rest are unlabelled, with zero labels
and ``A_labelled`` False. The subsets of one seed are nested: a smaller fraction labels a part of a larger one's
images. At test time every image is labelled with its true label.
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from util.attribute_labels import CELEBA_LABELS, CSV_LABELS, LabelTable, default_label_file, read_label_file
from util.image_files import DatasetError, list_image_files, same_name

from .base_dataset import BaseDataset, add_data_options, get_joint_transform, load_image, split_transformed

__all__ = ["AttributesDataset", "LabelTable", "default_label_file", "labelled_mask", "parse_attribute_list",
           "read_label_file"]

EXAMPLES = 3  # file names shown in a message


# ------------------------------------------------------------------------------------------- label file
def parse_attribute_list(text: str | None) -> list[str] | None:
    """``--attributes`` as a list of names; None (all columns) when not given."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise DatasetError(f"--attributes {text!r} holds an empty name; give names separated by commas, "
                           f"e.g. Black_Hair,Blond_Hair,Male")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DatasetError(f"--attributes {text!r} names {', '.join(repeated)} more than once; name each once")
    return names


def _label_file(opt: argparse.Namespace, root: Path) -> Path:
    given = getattr(opt, "label_file", None)
    if given:
        path = Path(given)
        if not path.is_file():
            raise DatasetError(f"--label_file {path} does not exist; give the path of a CSV or list_attr_celeba.txt")
        return path
    path = default_label_file(root, opt.phase)
    if not path.is_file():
        raise DatasetError(f"no label file: neither {root / CSV_LABELS.format(phase=opt.phase)} nor {path} "
                           f"exists; put the labels there or pass --label_file")
    return path


# ------------------------------------------------------------------------------------------ images
def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:EXAMPLES])
    return shown + (", ..." if len(names) > EXAMPLES else "")


def match_images(folder: Path, paths: list[Path], table: LabelTable) -> list[Path]:
    """The images that have a label row; warns about the others, raises when none has one."""
    matched = [path for path in paths if same_name(path.stem) in table.labels]
    unlabelled = [path.name for path in paths if same_name(path.stem) not in table.labels]
    if not matched:
        raise DatasetError(f"none of the {len(paths)} images in {folder} ({_examples(unlabelled)}) has a row in "
                           f"label file {table.path}, whose {len(table.file_names)} rows name other files "
                           f"({_examples(table.file_names)}); rows match images by file name without extension: "
                           f"check --label_file, --dataroot and --phase")
    if unlabelled:
        warnings.warn(f"{len(unlabelled)} of the {len(paths)} images in {folder} have no row in label file "
                      f"{table.path} ({_examples(unlabelled)}) and are skipped", stacklevel=3)
    return matched


def labelled_mask(count: int, fraction: float, seed: int) -> Tensor:
    """Bool (count,): a seeded random ``fraction`` of the images (rounded half up) keeps its labels. The first
    ones of one permutation are taken, so for one seed a smaller fraction's subset lies in a larger one's."""
    if not 0.0 < fraction <= 1.0:
        raise DatasetError(f"--labelled_fraction {fraction:g} must be in (0, 1]")
    kept = math.floor(fraction * count + 0.5)
    if kept == 0:
        raise DatasetError(f"--labelled_fraction {fraction:g} of the {count} images labels none; raise it to at "
                           f"least {1 / count:.3g}")
    order = np.random.default_rng(seed).permutation(count)
    mask = torch.zeros(count, dtype=torch.bool)
    mask[torch.from_numpy(order[:kept])] = True
    return mask


# ----------------------------------------------------------------------------------------- dataset
class AttributesDataset(BaseDataset):
    """Samples ``A`` (image in [-1, 1]), ``A_label`` (float (n_attr,), 0/1; zeros when unlabelled),
    ``A_labelled`` (bool scalar) and ``A_paths``, in file-name order. When training, each sample also carries
    ``L`` and ``L_label``: a labelled image drawn at random (torch RNG, so seeded runs repeat) with its labels,
    so that the discriminator sees a full batch of labelled images at any ``--labelled_fraction``.

    ``attribute_names`` lists the label columns; ``label_vectors`` (n_labelled, n_attr) holds the labels of the
    labelled images, the set target labels are drawn from.
    """

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser = add_data_options(parser)
        parser.add_argument("--label_file", default=None,
                            help="labels of the images: a CSV (filename,attr1,...) or CelebA's list_attr_celeba.txt "
                                 f"(default: <dataroot>/{CSV_LABELS} if it exists, else <dataroot>/{CELEBA_LABELS})")
        parser.add_argument("--attributes", default=None,
                            help="comma-separated label columns, in this order, e.g. Black_Hair,Blond_Hair,Male "
                                 "(default: every column of the label file)")
        parser.add_argument("--labelled_fraction", type=float, default=1.0,
                            help="share of the training images that keep their labels, a subset drawn with --seed "
                                 "(0 without one); the rest are used unlabelled. Test runs label every image")
        return parser

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        folder = self.root / opt.phase
        try:
            paths = list_image_files(folder)
        except DatasetError as err:
            raise DatasetError(f"{err}: expected <dataroot>/<phase> with images; check --dataroot and "
                               f"--phase") from None
        table = read_label_file(_label_file(opt, self.root), parse_attribute_list(getattr(opt, "attributes", None)))
        matched = match_images(folder, paths, table)
        if math.isfinite(opt.max_dataset_size):
            matched = matched[: int(opt.max_dataset_size)]
        self.paths = matched
        self.attribute_names = table.attribute_names
        self._true_labels = torch.tensor([table.labels[same_name(path.stem)] for path in matched],
                                         dtype=torch.float32)
        self.labelled = self._labelled(opt, len(matched))
        self.label_vectors = self._true_labels[self.labelled]
        self.labelled_indices = self.labelled.nonzero().flatten().tolist()
        self.with_labelled_stream = bool(opt.isTrain)
        self.transform = get_joint_transform(opt)
        self.nc = opt.input_nc

    @staticmethod
    def _labelled(opt: argparse.Namespace, count: int) -> Tensor:
        if not opt.isTrain:
            return torch.ones(count, dtype=torch.bool)
        seed = opt.seed if getattr(opt, "seed", None) is not None else 0
        return labelled_mask(count, getattr(opt, "labelled_fraction", 1.0), seed)

    def true_labels(self, index: int) -> Tensor:
        """The label file's labels of image ``index``, labelled or not: for evaluation only. Training code must
        not call this (it would leak the labels of the unlabelled images); it reads ``A_label``."""
        return self._true_labels[index].clone()

    def __len__(self) -> int:
        return len(self.paths)

    def _image(self, index: int) -> Tensor:
        path = self.paths[index]
        image = load_image(path, self.nc)
        return split_transformed(self.transform, image, image[:0], path)[0]

    def __getitem__(self, index: int) -> dict[str, Any]:
        labelled = bool(self.labelled[index])
        label = self._true_labels[index].clone() if labelled else torch.zeros(len(self.attribute_names))
        sample = {"A": self._image(index), "A_label": label, "A_labelled": torch.tensor(labelled),
                  "A_paths": str(self.paths[index])}
        if self.with_labelled_stream:
            drawn = self.labelled_indices[int(torch.randint(len(self.labelled_indices), ()))]
            sample.update(L=self._image(drawn), L_label=self._true_labels[drawn].clone())
        return sample
