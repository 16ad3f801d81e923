"""Check a dataset in the layout of docs/method.md (section 5) before training on it.

    python -m data.check --dataroot ./datasets/shapes [--phase train test] [--max_instances 20] [--fast] [--json]
        [--preprocess crop --crop_size 256 --batch_size 4] [--label_nc 3]

Prints one line per finding (``error`` or ``warning``, the file, what is wrong and how to fix it), an
``info`` line counting the macOS metadata files skipped (``._*``, ``.DS_Store``) and a summary line
``N errors, M warnings in K files``. Exit status: 0 when nothing was found, 1 when there is any finding
(errors or warnings only), 2 for a bad command line.

Errors would stop training (the loader raises on them): a missing folder, no images, two images with one
stem (also one name in two Unicode forms, NFC and NFD), an unreadable, truncated or zero-byte image or mask,
a mask whose size differs from its image, a mask the loader refuses because it would train on garbage (0/1
values, an RGBA cut-out with the instance in the alpha channel, a faint colour, palette or label-map mask:
the rules are in util/masks.py). When the preprocessing is given (train.py passes its options), also images
smaller than the crop of ``--preprocess crop``, or of several sizes with ``--preprocess none`` and a
``--batch_size`` above 1: one finding per folder instead of one failing sample after another.

Warnings do not stop it but may spoil it: an image without masks (valid, zero instances), more masks than
``--max_instances`` (extra ones are ignored), an orphan or misnamed mask file (or one named in another Unicode
form than its image), masks that are empty, coloured, not black and white, inverted ("inverted?": the
instance covers at least 90% of the image and all four borders) or in an unusual mode, and 16-bit images
that use only a small part of their range (they load nearly black).

16-bit images and masks are read scaled to 8 bits, by the loader as by the checker (util/image_files.py).

An aligned dataset (``--dataset_mode aligned``: ``<phase>_label``, optional ``<phase>_inst``, ``<phase>_img``;
recognised by its ``<phase>_label`` folder) is checked for what data/aligned_dataset.py refuses, one error per
file: a missing folder, a label map without its image or (when ``<phase>_inst`` exists) its instance map, an
image or instance map without its label map, a size that differs from the label map's, an unreadable file, an
instance map (or, with ``--label_nc``, a label map) that is not one channel, and, with ``--label_nc N``, label
ids of N or more.

``fast=True`` (train.py at start-up) reads every file's header (sizes and modes) but the pixels of only a
seeded sample of up to ``FAST_MASK_SAMPLE`` (64) masks per domain and of no image, so truncated pixel data and
problems in the masks left out of the sample go unnoticed; the full check reads every file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from util.image_files import (
    MASK_NAME,
    SIXTEEN_BIT_MODES,
    duplicate_stem_message,
    duplicate_stems,
    index_mask_files,
    is_image_file,
    is_os_metadata_file,
    same_name,
)
from util.masks import inspect_mask

from .base_dataset import PIL_ERRORS, round_to_multiple

__all__ = ["FAST_MASK_SAMPLE", "PREPROCESS_CHOICES", "Finding", "Report", "check_dataset", "main"]

Severity = Literal["error", "warning"]

DOMAINS = ("A", "B")
KNOWN_MASK_MODES = SIXTEEN_BIT_MODES | {"1", "L", "LA", "RGB", "RGBA", "P", "PA"}
PREPROCESS_CHOICES = ("resize_and_crop", "resize", "crop", "none")
# Masks per domain whose pixels the fast check reads (a sample drawn with a fixed seed: the same every run).
FAST_MASK_SAMPLE = 64
# A 16-bit image whose brightest value is below this uses at most 12 bits and loads nearly black.
DARK_16BIT = 4096


@dataclass(frozen=True)
class Finding:
    """One problem with one file or folder."""

    path: str
    severity: Severity
    code: str
    message: str

    def format(self) -> str:
        return f"{self.severity}: {self.path}: {self.message} [{self.code}]"


@dataclass
class Report:
    """Everything ``check_dataset`` found, plus how many files it looked at and skipped."""

    findings: list[Finding] = field(default_factory=list)
    images_checked: int = 0
    masks_checked: int = 0
    # masks whose pixels were read: all of masks_checked in a full check, a sample in a fast one
    mask_pixels_checked: int = 0
    # macOS metadata files (._*, .DS_Store) skipped, as the loader skips them
    ignored: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing at all was found."""
        return not self.findings

    def add(self, path: str | Path, severity: Severity, code: str, message: str) -> None:
        self.findings.append(Finding(str(path), severity, code, message))

    def summary(self) -> str:
        files = len({f.path for f in self.findings})
        sampled = (f", pixels of {self.mask_pixels_checked} sampled masks"
                   if self.mask_pixels_checked < self.masks_checked else "")
        return (f"{len(self.errors)} errors, {len(self.warnings)} warnings in {files} files "
                f"(checked {self.images_checked} images, {self.masks_checked} masks{sampled})")

    def info(self) -> list[str]:
        if not self.ignored:
            return []
        return [f"info: ignored {self.ignored} macOS metadata files (._*, .DS_Store); training skips them too"]

    def format(self, limit: int | None = None) -> str:
        """One line per finding (errors first when ``limit`` cuts the list short), info, then the summary line."""
        shown = self.findings if limit is None else (self.errors + self.warnings)[:limit]
        lines = [f.format() for f in shown]
        if len(shown) < len(self.findings):
            lines.append(f"... and {len(self.findings) - len(shown)} more (python -m data.check lists them all)")
        return "\n".join([*lines, *self.info(), self.summary()])

    def to_dict(self) -> dict:
        return {"findings": [asdict(f) for f in self.findings], "errors": len(self.errors),
                "warnings": len(self.warnings), "images_checked": self.images_checked,
                "masks_checked": self.masks_checked, "mask_pixels_checked": self.mask_pixels_checked,
                "ignored": self.ignored}


def check_dataset(dataroot: str | Path, phases: Sequence[str] = ("train",), max_instances: int = 20,
                  fast: bool = False, *, preprocess: str | None = None, crop_size: tuple[int, int] | None = None,
                  batch_size: int = 1, with_masks: bool = True, mask_sample: int = FAST_MASK_SAMPLE,
                  label_nc: int | None = None) -> Report:
    """Scan ``<dataroot>/<phase>{A,B}`` and their ``_seg`` folders for every phase and report what is wrong.

    A dataset with a ``<phase>_label`` folder (for any of ``phases``) is checked as an aligned dataset
    instead (``_check_aligned``): ``<phase>_label``, ``<phase>_img`` and the optional ``<phase>_inst``;
    ``label_nc`` (``--label_nc``) bounds the label ids, unchecked when None.

    ``fast`` reads headers only, plus the pixels of a seeded sample of ``mask_sample`` masks per domain (see
    the module docstring for what that misses). With ``preprocess`` (train.py's ``--preprocess``), the image
    sizes are checked against ``crop_size`` (height, width; for ``crop``) and ``batch_size`` (for ``none``).
    ``with_masks=False`` (``--dataset_mode unaligned``) checks the images only.
    """
    if preprocess is not None and preprocess not in PREPROCESS_CHOICES:
        raise ValueError(f"preprocess {preprocess!r}: choose {', '.join(PREPROCESS_CHOICES)}")
    if preprocess == "crop" and crop_size is None:
        raise ValueError("preprocess 'crop' needs crop_size=(height, width)")
    root = Path(dataroot)
    report = Report()
    if not root.is_dir():
        report.add(root, "error", "missing-folder", "dataset folder does not exist; check --dataroot")
        return report
    sizes = _Sizes(preprocess, tuple(crop_size) if crop_size is not None else None, batch_size)
    if is_aligned(root, phases):
        for phase in phases:
            _check_aligned(_AlignedScan(root, phase, label_nc, fast, sizes), report)
        return report
    for phase in phases:
        for letter in DOMAINS:
            _check_domain(_DomainScan(root, phase, letter, max_instances, fast, with_masks, mask_sample, sizes),
                          report)
    return report


@dataclass(frozen=True)
class _Sizes:
    """The preprocessing options the image sizes must suit (all None: not checked)."""

    preprocess: str | None
    crop: tuple[int, int] | None  # (height, width)
    batch_size: int


@dataclass(frozen=True)
class _DomainScan:
    root: Path
    phase: str
    letter: str
    max_instances: int
    fast: bool
    with_masks: bool
    mask_sample: int
    sizes: _Sizes

    @property
    def image_folder(self) -> Path:
        return self.root / f"{self.phase}{self.letter}"

    @property
    def seg_folder(self) -> Path:
        return self.root / f"{self.phase}{self.letter}_seg"


def _list_folder(folder: Path, report: Report) -> list[str]:
    """Sorted names in ``folder``, without the macOS metadata files (counted in ``report.ignored``)."""
    names = sorted(os.listdir(folder))
    kept = [name for name in names if not is_os_metadata_file(name)]
    report.ignored += len(names) - len(kept)
    return kept


def _check_domain(scan: _DomainScan, report: Report) -> None:
    folder = scan.image_folder
    if not folder.is_dir():
        report.add(folder, "error", "missing-folder",
                   f"folder missing: expected <dataroot>/<phase>{scan.letter} with the images of domain "
                   f"{scan.letter}; check --dataroot and --phase")
        return
    images = [folder / name for name in _list_folder(folder, report) if is_image_file(name)]
    images = [p for p in images if p.is_file()]
    if not images:
        report.add(folder, "error", "no-images", "no .png/.jpg/.jpeg images in this folder; add images or "
                                                 "check --dataroot and --phase")
        return
    for first, duplicate in duplicate_stems(images):
        report.add(duplicate, "error", "duplicate-stem", duplicate_stem_message(first, duplicate))
    masks = _index_masks(scan, report) if scan.with_masks else None
    sizes: dict[Path, tuple[int, int]] = {}
    sample: list[Path] = []
    for image in images:
        size = _check_sample(image, masks, scan, report, sample)
        if size is not None:
            sizes[image] = size
    if scan.fast and sample:
        chosen = random.Random(f"{scan.phase}{scan.letter}").sample(sample, min(scan.mask_sample, len(sample)))
        for mask in sorted(chosen):
            _check_mask_pixels(mask, report)
    if masks is not None:
        _check_orphans(masks, images, scan.image_folder, report)
    _check_sizes(folder, sizes, scan.sizes, report)


def _index_masks(scan: _DomainScan, report: Report) -> dict[str, list[Path]] | None:
    """Stem -> mask files, or None when the mask folder is missing (reported)."""
    seg = scan.seg_folder
    if not seg.is_dir():
        report.add(seg, "error", "missing-seg-folder",
                   f"mask folder missing: expected <dataroot>/<phase>{scan.letter}_seg with masks "
                   f"<name>_<k>.png (it may be empty); create it")
        return None
    for name in _list_folder(seg, report):
        if is_image_file(name) and not MASK_NAME.match(name):
            report.add(seg / name, "warning", "bad-mask-name",
                       "not named <image name>_<k>.png, so the loader ignores it; rename it (k = 0, 1, ...)")
    return index_mask_files(seg)


def _check_orphans(masks: dict[str, list[Path]], images: list[Path], folder: Path, report: Report) -> None:
    stems = {p.stem for p in images}
    by_name = {same_name(p.stem): p for p in images}
    for stem in sorted(masks.keys() - stems):
        twin = by_name.get(same_name(stem))
        for mask in masks[stem]:
            if twin is not None:
                report.add(mask, "warning", "unicode-name-mismatch",
                           f"its name is {mask.name!a} but its image is {twin.name!a}: one name in two Unicode "
                           f"forms (NFC and NFD; macOS writes NFD), so the loader does not match them and never "
                           f"uses this mask; rename the mask to its image's form")
            else:
                report.add(mask, "warning", "orphan-mask",
                           f"no image {stem}.png/.jpg in {folder}, so this mask is never used; add the image or "
                           f"remove the mask")


def _check_sample(image: Path, masks: dict[str, list[Path]] | None, scan: _DomainScan, report: Report,
                  sample: list[Path]) -> tuple[int, int] | None:
    """Check one image and its masks; returns the image's (width, height) or None. In a fast check, the masks
    whose header is fine go to ``sample`` for a pixel check of some of them."""
    report.images_checked += 1
    size = _check_image(image, scan.fast, report)
    if masks is None:
        return size
    mask_files = masks.get(image.stem, [])
    if not mask_files:
        report.add(image, "warning", "no-masks",
                   f"has no masks {image.stem}_<k>.png in {scan.seg_folder.name}; it trains with zero instances")
    if len(mask_files) > scan.max_instances:
        report.add(image, "warning", "too-many-masks",
                   f"has {len(mask_files)} masks but --max_instances is {scan.max_instances}; the masks after "
                   f"the first {scan.max_instances} (by k) are ignored, raise --max_instances to use them")
    for mask in mask_files[: scan.max_instances]:
        report.masks_checked += 1
        if _check_mask(mask, size, scan.fast, report) and scan.fast:
            sample.append(mask)
    return size


def _check_image(path: Path, fast: bool, report: Report) -> tuple[int, int] | None:
    """The image's (width, height), or None when it cannot be read (reported)."""
    try:
        with Image.open(path) as img:
            if not fast:
                img.load()
                _check_image_pixels(path, img, report)
            return img.size
    except PIL_ERRORS as err:
        _report_unreadable(path, "image", err, report)
    return None


def _check_image_pixels(path: Path, img: Image.Image, report: Report) -> None:
    if img.mode not in SIXTEEN_BIT_MODES:
        return
    brightest = int(np.asarray(img).max(initial=0))
    if brightest < DARK_16BIT:
        report.add(path, "warning", "dark-16bit-image",
                   f"16-bit image whose brightest value is {brightest} of 65535 (12-bit data or less?); training "
                   f"scales 16 bits to 8, so it loads nearly black (brightest {round(brightest / 257)} of 255); "
                   f"rescale it to the full range or save it as 8-bit")


def _check_mask(path: Path, image_size: tuple[int, int] | None, fast: bool, report: Report) -> bool:
    """Header checks and, unless ``fast``, pixel checks; True when the header is fine."""
    try:
        with Image.open(path) as mask:
            if image_size is not None and mask.size != image_size:
                report.add(path, "error", "size-mismatch",
                           f"mask is {mask.width}x{mask.height} but its image is {image_size[0]}x{image_size[1]} "
                           f"(width x height); save masks at their image's size")
                return False
            if mask.mode not in KNOWN_MASK_MODES:
                report.add(path, "warning", "mask-mode",
                           f"mask has image mode {mask.mode}; save it as 8-bit grey (0 background, 255 instance)")
            if not fast:
                mask.load()
                _report_mask_content(path, mask, report)
                report.mask_pixels_checked += 1
            return True
    except PIL_ERRORS as err:
        _report_unreadable(path, "mask", err, report)
    return False


def _check_mask_pixels(path: Path, report: Report) -> None:
    """Read one mask's pixels (the fast check's sample)."""
    try:
        with Image.open(path) as mask:
            mask.load()
            _report_mask_content(path, mask, report)
            report.mask_pixels_checked += 1
    except PIL_ERRORS as err:
        _report_unreadable(path, "mask", err, report)


def _report_mask_content(path: Path, mask: Image.Image, report: Report) -> None:
    """The rules of util/masks.py: what the loader refuses is an error, the rest warnings."""
    refusal, warnings = inspect_mask(mask)
    if refusal is not None:
        report.add(path, "error", refusal.code, refusal.message)
    for issue in warnings:
        report.add(path, "warning", issue.code, issue.message)


def _report_unreadable(path: Path, kind: str, err: Exception, report: Report) -> None:
    if _is_zero_bytes(path):
        report.add(path, "error", "zero-byte", f"{kind} file is empty (0 bytes); replace or remove it")
        return
    reason = " ".join(str(err).split()) or type(err).__name__
    report.add(path, "error", "unreadable", f"cannot read {kind} ({reason}); replace or remove the file")


def _is_zero_bytes(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


# ------------------------------------------------------------------------------------- aligned layout
ALIGNED_FOLDERS = ("label", "inst", "img")
ALIGNED_ID_MODES = SIXTEEN_BIT_MODES | {"L", "P"}


def is_aligned(root: Path, phases: Sequence[str]) -> bool:
    """True when ``root`` holds ``<phase>_label`` for one of ``phases`` (data/aligned_dataset.py's layout)."""
    return any((root / f"{phase}_label").is_dir() for phase in phases)


@dataclass(frozen=True)
class _AlignedScan:
    root: Path
    phase: str
    label_nc: int | None
    fast: bool
    sizes: _Sizes

    def folder(self, kind: str) -> Path:
        return self.root / f"{self.phase}_{kind}"


def _check_aligned(scan: _AlignedScan, report: Report) -> None:
    """One phase of an aligned dataset: partners by stem, sizes, label ids and readability, one finding each."""
    files: dict[str, dict[str, Path]] = {}
    for kind in ALIGNED_FOLDERS:
        listed = _list_aligned_folder(scan, kind, report)
        if listed is not None:
            files[kind] = listed
    if "label" not in files:
        return
    _check_partners(scan, files, report)
    sizes: dict[Path, tuple[int, int]] = {}
    for stem, label in files["label"].items():
        size = _check_label(label, scan, report)
        if size is None:
            continue
        sizes[label] = size
        for kind in ("inst", "img"):
            partner = files.get(kind, {}).get(stem)
            if partner is not None:
                _check_partner(partner, kind, label, size, scan.fast, report)
    _check_sizes(scan.folder("label"), sizes, scan.sizes, report)


def _list_aligned_folder(scan: _AlignedScan, kind: str, report: Report) -> dict[str, Path] | None:
    """Stem -> file of ``<phase>_<kind>``; None when the folder is missing or empty (reported unless optional)."""
    folder = scan.folder(kind)
    if not folder.is_dir():
        if kind != "inst":
            report.add(folder, "error", "missing-folder",
                       "folder missing: an aligned dataset needs <dataroot>/<phase>_label and <phase>_img (and "
                       "optionally <phase>_inst); check --dataroot and --phase")
        return None
    paths = [folder / name for name in _list_folder(folder, report) if is_image_file(name)]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        report.add(folder, "error", "no-images", "no .png/.jpg/.jpeg files in this folder; add them"
                   + (" or remove the folder (instance maps are optional)" if kind == "inst" else ""))
        return None
    for first, duplicate in duplicate_stems(paths):
        report.add(duplicate, "error", "duplicate-stem", duplicate_stem_message(first, duplicate))
    return {same_name(p.stem): p for p in paths}


def _check_partners(scan: _AlignedScan, files: dict[str, dict[str, Path]], report: Report) -> None:
    labels = files["label"]
    for kind, what in (("img", "image"), ("inst", "instance map")):
        if kind not in files:
            continue
        extra = " (or train with --no_instance)" if kind == "inst" else ""
        for stem, label in labels.items():
            if stem not in files[kind]:
                report.add(label, "error", f"no-{kind}",
                           f"label map without its {what} {stem}.png in {scan.folder(kind)}; add it or remove the "
                           f"label map{extra}")
        for stem, path in files[kind].items():
            if stem not in labels:
                report.add(path, "error", "no-label",
                           f"{what} without its label map {stem}.png in {scan.folder('label')}; add the label "
                           f"map or remove the file")


def _check_label(path: Path, scan: _AlignedScan, report: Report) -> tuple[int, int] | None:
    """The label map's (width, height), or None when unreadable (reported); ids against ``label_nc``."""
    report.images_checked += 1
    try:
        with Image.open(path) as label:
            if scan.label_nc is not None and scan.label_nc > 0:
                if label.mode not in ALIGNED_ID_MODES:
                    report.add(path, "error", "label-mode",
                               f"label map has image mode {label.mode}, but --label_nc {scan.label_nc} reads one id "
                               f"per pixel; save it as 8-bit grey (L) or palette (P), or use --label_nc 0 to take "
                               f"RGB label maps as input images")
                elif not scan.fast:
                    _check_label_ids(path, np.asarray(label), scan.label_nc, report)
            elif not scan.fast:
                label.load()
            return label.size
    except PIL_ERRORS as err:
        _report_unreadable(path, "label map", err, report)
    return None


def _check_label_ids(path: Path, ids: np.ndarray, label_nc: int, report: Report) -> None:
    high, low = int(ids.max(initial=0)), int(ids.min(initial=0))
    if high >= label_nc or low < 0:
        bad = np.unique(ids[(ids >= label_nc) | (ids < 0)])
        shown = ", ".join(str(int(i)) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        report.add(path, "error", "label-id-out-of-range",
                   f"holds label ids {shown} outside 0..{label_nc - 1} (--label_nc {label_nc}); raise --label_nc "
                   f"to at least {high + 1}, or fix the label map")


def _check_partner(path: Path, kind: str, label: Path, label_size: tuple[int, int], fast: bool,
                   report: Report) -> None:
    """An image or instance map of a label map: readable, the label map's size, instance ids in one channel."""
    what = {"img": "image", "inst": "instance map"}[kind]
    if kind == "inst":
        report.masks_checked += 1
    else:
        report.images_checked += 1
    try:
        with Image.open(path) as img:
            if img.size != label_size:
                report.add(path, "error", "size-mismatch",
                           f"{what} is {_wxh(img.size)} but its label map {label.name} is {_wxh(label_size)} "
                           f"(width x height); save the files of one sample at one size")
            if kind == "inst" and img.mode not in ALIGNED_ID_MODES:
                report.add(path, "error", "instance-mode",
                           f"instance map has image mode {img.mode}; save instance ids in one channel (8-bit L or "
                           f"16-bit PNG), or train with --no_instance")
            if not fast:
                img.load()
                if kind == "inst":
                    report.mask_pixels_checked += 1
    except PIL_ERRORS as err:
        _report_unreadable(path, what, err, report)


# -------------------------------------------------------------------------------------- sizes vs options
def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _check_sizes(folder: Path, sizes: dict[Path, tuple[int, int]], options: _Sizes, report: Report) -> None:
    """Image sizes (width, height) against --preprocess: one finding per folder, not one per failing sample."""
    if not sizes:
        return
    if options.preprocess == "crop":
        crop_h, crop_w = options.crop
        small = {path: size for path, size in sizes.items() if size[0] < crop_w or size[1] < crop_h}
        if small:
            example, size = next(iter(small.items()))
            fit_w = min(w for w, _ in sizes.values()) // 4 * 4
            fit_h = min(h for _, h in sizes.values()) // 4 * 4
            report.add(folder, "error", "smaller-than-crop",
                       f"{len(small)} of {len(sizes)} images are smaller than the crop {crop_w}x{crop_h} "
                       f"(width x height) that --preprocess crop cuts, e.g. {example.name} {_wxh(size)}, so every "
                       f"sample with one would fail; lower --crop_size_w/--crop_size_h to at most {fit_w}x{fit_h} "
                       f"(the smallest image, in multiples of 4) or use --preprocess resize_and_crop")
    if options.preprocess == "none" and options.batch_size > 1:
        rounded: dict[tuple[int, int], Path] = {}
        for path, (width, height) in sizes.items():
            rounded.setdefault((round_to_multiple(width), round_to_multiple(height)), path)
        if len(rounded) > 1:
            examples = ", ".join(f"{path.name} {_wxh(sizes[path])}" for path in list(rounded.values())[:3])
            report.add(folder, "error", "mixed-sizes",
                       f"--preprocess none keeps each image's size (rounded to multiples of 4) and these images "
                       f"have {len(rounded)} sizes (e.g. {examples}), so a batch of --batch_size "
                       f"{options.batch_size} cannot be stacked; use --batch_size 1, or --preprocess "
                       f"resize_and_crop, resize or crop to give every image one size")


# -------------------------------------------------------------------------------------------------- CLI
def _parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m data.check",
        description="Check a dataset (<dataroot>/<phase>A, <phase>A_seg, <phase>B, <phase>B_seg; or the aligned "
                    "<phase>_label, <phase>_inst, <phase>_img) for files that would break or spoil training. "
                    "Exit status 0: nothing found; 1: errors or warnings.")
    parser.add_argument("--dataroot", required=True, help="dataset folder")
    parser.add_argument("--phase", nargs="+", default=["train"], help="phase(s) to check (default: train)")
    parser.add_argument("--max_instances", type=int, default=20,
                        help="masks per image the loader keeps; more give a warning (default: %(default)s)")
    parser.add_argument("--fast", action="store_true",
                        help=f"read file headers and the pixels of up to {FAST_MASK_SAMPLE} masks per domain only: "
                             f"quicker, but misses truncated pixel data and problems in the other masks")
    parser.add_argument("--no_masks", action="store_true",
                        help="check the images only (for --dataset_mode unaligned: no _seg folders)")
    sizes = parser.add_argument_group("image sizes against train.py's options (checked when --preprocess is given)")
    sizes.add_argument("--preprocess", choices=PREPROCESS_CHOICES, default=None,
                       help="crop: every image must be at least the crop; none: one size per folder unless "
                            "--batch_size is 1")
    sizes.add_argument("--crop_size", type=int, default=None, help="set --crop_size_h and --crop_size_w at once")
    sizes.add_argument("--crop_size_h", type=int, default=256, help="crop height (default: %(default)s)")
    sizes.add_argument("--crop_size_w", type=int, default=256, help="crop width (default: %(default)s)")
    sizes.add_argument("--batch_size", type=int, default=1, help="batch size (default: %(default)s)")
    parser.add_argument("--label_nc", type=int, default=None,
                        help="aligned datasets (<phase>_label): label ids must be below this; unchecked if not "
                             "given (0: the label maps are RGB images)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.crop_size is not None:
        args.crop_size_h = args.crop_size_w = args.crop_size
    return args


def main(argv: Iterable[str] | None = None) -> int:
    """Run the checker from the command line; returns the exit status."""
    args = _parse_args(argv)
    for flag in ("max_instances", "crop_size_h", "crop_size_w", "batch_size"):
        if getattr(args, flag) < 1:
            print(f"--{flag} must be at least 1, got {getattr(args, flag)}", file=sys.stderr)
            return 2
    report = check_dataset(args.dataroot, args.phase, args.max_instances, fast=args.fast,
                           preprocess=args.preprocess, crop_size=(args.crop_size_h, args.crop_size_w),
                           batch_size=args.batch_size, with_masks=not args.no_masks, label_nc=args.label_nc)
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
