"""Helpers shared by the dataset builders (generate_coco/mhp/ccp_dataset.py).

Every builder writes the layout of docs/method.md (section 5)::

    <out>/<phase>A/<name>.png           RGB image of domain A
    <out>/<phase>A_seg/<name>_<k>.png   its k-th instance mask, 8-bit grey, 0 or 255
    <out>/<phase>B/...  and  <phase>B_seg/...   likewise for domain B

Images are always written as PNG (lossless, one format whatever the source). Resizing scales
the image just enough to cover the target size (bicubic; masks nearest) and crops the centre.

An image showing both classes is skipped by default; ``--both_classes both`` writes it into both
domains, each copy with the masks of its own class, as the authors' builders did (see
``add_both_classes_argument`` for why the default differs).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from util.image_files import mask_file_name
from util.masks import binarize_mask, mask_to_grey, save_mask

DOMAINS = ("A", "B")
BOTH_CLASSES_CHOICES = ("skip", "both")


class BuilderError(Exception):
    """A problem the user can fix (a missing file, an unknown category); shown as one line."""


def run_cli(build: Callable[[argparse.Namespace], object], parser: argparse.ArgumentParser,
            argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run ``build``; a BuilderError becomes ``<prog>: error: <msg>`` and exit code 2."""
    args = parser.parse_args(argv)
    try:
        build(args)
    except BuilderError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return 0


def require_dir(path: Path, option: str) -> Path:
    if not path.is_dir():
        raise BuilderError(f"{option} {path}: no such folder")
    return path


def require_file(path: Path, option: str) -> Path:
    if not path.is_file():
        raise BuilderError(f"{option} {path}: no such file")
    return path


def check_fraction(value: float, option: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise BuilderError(f"{option} must be a fraction between 0 and 1, got {value}")


def check_output_size(height: int, width: int) -> None:
    """Both 0 keeps the source size; otherwise both must be positive."""
    if (height == 0) != (width == 0) or height < 0 or width < 0:
        raise BuilderError(f"--height/--width must both be positive, or both 0 to keep the source size "
                           f"(got {height}x{width})")


def resize_and_center_crop(image: Image.Image, masks: Sequence[np.ndarray], height: int,
                           width: int) -> tuple[Image.Image, list[np.ndarray]]:
    """Scale so the image covers ``height`` x ``width``, then crop the centre; 0 x 0 keeps the size.

    ``masks`` are boolean (H, W) arrays of the image's size; they get the same geometry with
    nearest-neighbour sampling so they stay binary and aligned with the image.
    """
    if height == 0 and width == 0:
        return image, [np.asarray(m, dtype=bool) for m in masks]
    src_w, src_h = image.size
    scale = max(height / src_h, width / src_w)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    left, top = (new_w - width) // 2, (new_h - height) // 2
    box = (left, top, left + width, top + height)
    out_image = image.resize((new_w, new_h), Image.Resampling.BICUBIC).crop(box)
    out_masks = []
    for mask in masks:
        grey = Image.fromarray(mask_to_grey(mask))
        grey = grey.resize((new_w, new_h), Image.Resampling.NEAREST).crop(box)
        out_masks.append(binarize_mask(np.asarray(grey)))
    return out_image, out_masks


def split_names(names: Sequence[str], test_fraction: float, seed: int) -> dict[str, list[str]]:
    """Deterministic train/test split: shuffle the sorted names with ``seed``, the first share is test."""
    shuffled = sorted(names)
    random.Random(seed).shuffle(shuffled)
    n_test = round(len(shuffled) * test_fraction)
    return {"train": sorted(shuffled[n_test:]), "test": sorted(shuffled[:n_test])}


def check_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise BuilderError(f"cannot use {name!r} as a file name; source names must not hold path separators")
    return name


def prepare_folders(folders: Sequence[Path], overwrite: bool) -> None:
    """Create ``folders``; refuse to mix with an earlier build unless ``overwrite`` clears them first."""
    used = [f for f in folders if f.is_dir() and any(f.iterdir())]
    if used and not overwrite:
        raise BuilderError(f"{used[0]} already holds files; pass --overwrite to replace this phase, "
                           f"or choose another --out")
    for folder in folders:
        if overwrite and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)


@dataclass
class DatasetWriter:
    """Writes samples of one phase under ``root`` and counts what was written and skipped."""

    root: Path
    phase: str
    written: Counter = field(default_factory=Counter)
    instances: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)

    def folder(self, domain: str, seg: bool = False) -> Path:
        return self.root / f"{self.phase}{domain}{'_seg' if seg else ''}"

    def prepare(self, overwrite: bool) -> None:
        """Create the four folders; refuse to mix with an earlier build unless ``overwrite`` clears them.

        Mixing would leave stale ``<name>_<k>.png`` masks that the loader would take as instances.
        """
        prepare_folders([self.folder(d, seg) for d in DOMAINS for seg in (False, True)], overwrite)

    def write(self, domain: str, name: str, image: Image.Image, masks: Sequence[np.ndarray]) -> None:
        check_name(name)
        image.convert("RGB").save(self.folder(domain) / f"{name}.png")
        for k, mask in enumerate(masks):
            save_mask(mask, self.folder(domain, seg=True) / mask_file_name(name, k))
        self.written[domain] += 1
        self.instances[domain] += len(masks)

    def skip(self, reason: str) -> None:
        """Count one source image left out, by reason."""
        self.skipped[reason] += 1

    def drop(self, reason: str, count: int = 1) -> None:
        """Count instances left out of an image that was otherwise kept or skipped, by reason."""
        if count:
            self.dropped[reason] += count

    def summary(self, labels: dict[str, str]) -> str:
        """Lines like ``trainA (sheep): 12 images, 30 instances`` then the skips, most frequent first."""
        lines = [f"{self.phase}{d} ({labels[d]}): {self.written[d]} images, {self.instances[d]} instances "
                 f"-> {self.folder(d)}" for d in DOMAINS]
        lines += [f"  skipped {n} image(s): {reason}" for reason, n in self.skipped.most_common()]
        lines += [f"  dropped {n} instance(s): {reason}" for reason, n in self.dropped.most_common()]
        return "\n".join(lines)


def add_instance_count_arguments(parser: argparse.ArgumentParser) -> None:
    """--min_instances / --max_instances: the image-level filter shared by the instance-level builders."""
    parser.add_argument("--min_instances", type=int, default=1, help="skip images with fewer instances (default: 1)")
    parser.add_argument("--max_instances", type=int, default=None,
                        help="skip images with more instances (default: no limit)")


def add_both_classes_argument(parser: argparse.ArgumentParser) -> None:
    """--both_classes skip|both: what to do with an image that shows the classes of both domains."""
    parser.add_argument(
        "--both_classes", choices=BOTH_CLASSES_CHOICES, default="skip",
        help="an image showing both classes: skip it (default), or write it into both domains, each copy with "
             "the masks of its own class ('both', the authors' builders). Skipping is the default because a "
             "domain-A copy still shows the class-B objects, unmasked: the context loss then teaches the "
             "generator to keep B objects as background, and the discriminators see real images of the "
             "wrong domain")


def domains_shown(present: Sequence[str], both_classes: str, writer: DatasetWriter,
                  labels: dict[str, str]) -> list[str]:
    """The domains an image is written to, given the domains whose class it shows; counts the skips.

    None shown: skipped. Both shown: skipped unless ``both_classes`` is "both" (then written to both).
    """
    if not present:
        writer.skip(f"shows neither {labels['A']} nor {labels['B']}")
        return []
    if len(present) > 1 and both_classes != "both":
        writer.skip(f"shows both {labels['A']} and {labels['B']} (see --both_classes)")
        return []
    return list(present)


def add_output_size_arguments(parser: argparse.ArgumentParser, height: int = 450, width: int = 300) -> None:
    """--height / --width of the written images (resize to cover, centre crop; 0 keeps the size)."""
    parser.add_argument("--height", type=int, default=height,
                        help=f"output height, 0 keeps the size (default: {height})")
    parser.add_argument("--width", type=int, default=width, help=f"output width, 0 keeps the size (default: {width})")


@dataclass(frozen=True)
class SampleFilter:
    """Output geometry and the rules that decide which instances and images are kept."""

    height: int = 0
    width: int = 0
    min_area: float = 0.0
    min_instances: int = 1
    max_instances: int | None = None


def add_sample(writer: DatasetWriter, domain: str, name: str, image: Image.Image,
               masks: Sequence[np.ndarray], rules: SampleFilter) -> bool:
    """Resize/crop ``image`` and its boolean ``masks``, filter the instances, write if the image qualifies.

    Instances are measured on the written image: one left empty by the crop, or covering less than
    ``min_area`` of it, is dropped; the image is skipped when the number left falls outside
    [min_instances, max_instances]. Returns whether the sample was written.
    """
    out_image, out_masks = resize_and_center_crop(image, masks, rules.height, rules.width)
    kept = []
    for mask in out_masks:
        if not mask.any():
            writer.drop("empty in the written image (e.g. outside the centre crop)")
        elif mask.mean() < rules.min_area:
            writer.drop(f"smaller than --min_area {rules.min_area}")
        else:
            kept.append(mask)
    if not kept:
        writer.skip("no instance left (malformed, emptied by the crop, or below --min_area)")
        return False
    if len(kept) < rules.min_instances:
        writer.skip(f"fewer than --min_instances {rules.min_instances} instances")
        return False
    if rules.max_instances is not None and len(kept) > rules.max_instances:
        writer.skip(f"more than --max_instances {rules.max_instances} instances")
        return False
    writer.write(domain, name, out_image, kept)
    return True
