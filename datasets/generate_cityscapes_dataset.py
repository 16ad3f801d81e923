"""Build an aligned (pix2pixHD) dataset from an unpacked Cityscapes download; nothing is downloaded.

Reads the official layout (gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip unpacked into one root)::

    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png      label ids (8-bit)
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png   instance ids (16-bit)
    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png     the photo

and writes, with stems ``<city>_<seq>_<frame>`` (Cityscapes ``val`` becomes the phase ``test``)::

    <out>/<phase>_label/<stem>.png   label ids as 8-bit grey (Cityscapes labelIds 0..33: --label_nc 35)
    <out>/<phase>_inst/<stem>.png    instance ids as 16-bit PNG, unchanged (e.g. 26001: car 26, instance 1)
    <out>/<phase>_img/<stem>.png     the RGB photo

``--size W H`` resizes every sample (images bicubic, id maps nearest-neighbour, so ids stay ids); without it
the files keep their size. From the repository root::

    python -m datasets.generate_cityscapes_dataset --cityscapes_root ~/data/cityscapes --out ./datasets/cityscapes \\
        --size 1024 512
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.builder_utils import BuilderError, check_name, prepare_folders, run_cli

PHASE_OF_SPLIT = {"train": "train", "val": "test"}
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
IMAGE_SUFFIX = "_leftImg8bit.png"
FOLDERS = ("label", "inst", "img")


@dataclass(frozen=True)
class Sample:
    """The three source files of one Cityscapes frame."""

    stem: str
    label: Path
    inst: Path
    img: Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.generate_cityscapes_dataset",
        description="Build <out>/<phase>_label, <phase>_inst, <phase>_img from Cityscapes gtFine and leftImg8bit "
                    "(see the module docstring). Nothing is downloaded.")
    parser.add_argument("--cityscapes_root", type=Path, required=True,
                        help="folder holding gtFine/ and leftImg8bit/ (the unpacked official zips)")
    parser.add_argument("--out", type=Path, default=Path("datasets/cityscapes"),
                        help="dataset root to write (default: %(default)s)")
    parser.add_argument("--splits", nargs="+", choices=list(PHASE_OF_SPLIT), default=list(PHASE_OF_SPLIT),
                        help="Cityscapes splits to convert; val is written as phase test (default: train val)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), default=None,
                        help="resize to W x H pixels (images bicubic, ids nearest); default: keep the size")
    parser.add_argument("--overwrite", action="store_true", help="replace the phase folders of an earlier build")
    return parser


def check_root(root: Path, splits: Sequence[str]) -> None:
    """BuilderError naming the expected sub-folders when ``root`` is not an unpacked Cityscapes download."""
    expected = [root / top / split for top in ("gtFine", "leftImg8bit") for split in splits]
    missing = [path for path in expected if not path.is_dir()]
    if missing:
        raise BuilderError(f"--cityscapes_root {root}: missing {', '.join(str(p) for p in missing)}; expected the "
                           f"official layout gtFine/<split>/<city>/ and leftImg8bit/<split>/<city>/ (unpack "
                           f"gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip into one folder)")


def _by_stem(folder: Path, suffix: str) -> dict[str, Path]:
    """``<city>/<stem><suffix>`` files under ``folder`` by stem."""
    return {path.name[: -len(suffix)]: path for path in sorted(folder.glob(f"*/*{suffix}")) if path.is_file()}


def find_samples(root: Path, split: str) -> list[Sample]:
    """Every frame of ``split`` with its three files; BuilderError naming the first file without a partner."""
    labels = _by_stem(root / "gtFine" / split, LABEL_SUFFIX)
    instances = _by_stem(root / "gtFine" / split, INSTANCE_SUFFIX)
    images = _by_stem(root / "leftImg8bit" / split, IMAGE_SUFFIX)
    if not labels and not images:
        raise BuilderError(f"no *{LABEL_SUFFIX} in {root / 'gtFine' / split}/<city>/ and no *{IMAGE_SUFFIX} in "
                           f"{root / 'leftImg8bit' / split}/<city>/; check --cityscapes_root and --splits")
    for stem, image in images.items():
        if stem not in labels:
            raise BuilderError(f"{image} has no label map {stem}{LABEL_SUFFIX} in gtFine/{split}/; unpack "
                               f"gtFine_trainvaltest.zip into --cityscapes_root, or remove the image")
    for stem, label in labels.items():
        if stem not in images:
            raise BuilderError(f"{label} has no photo {stem}{IMAGE_SUFFIX} in leftImg8bit/{split}/; unpack "
                               f"leftImg8bit_trainvaltest.zip into --cityscapes_root, or remove the label map")
        if stem not in instances:
            raise BuilderError(f"{label} has no instance map {stem}{INSTANCE_SUFFIX} next to it; the gtFine "
                               f"download holds both, unpack it again")
    return [Sample(check_name(stem), labels[stem], instances[stem], images[stem]) for stem in labels]


def nearest(ids: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) id array to (height, width), sampling at pixel centres."""
    rows = np.minimum(((np.arange(height) + 0.5) * ids.shape[0] / height).astype(int), ids.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * ids.shape[1] / width).astype(int), ids.shape[1] - 1)
    return ids[rows[:, None], cols[None, :]]


def _read(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img
    except (OSError, ValueError, SyntaxError) as err:
        raise BuilderError(f"cannot read {path}: {' '.join(str(err).split())}; replace the file") from None


def convert(sample: Sample, out: Path, phase: str, size: tuple[int, int] | None) -> None:
    """Write one frame's label (8-bit), instance (16-bit) and image (RGB PNG) files."""
    label, inst, img = _read(sample.label), _read(sample.inst), _read(sample.img)
    for path, other in ((sample.inst, inst), (sample.img, img)):
        if other.size != label.size:
            raise BuilderError(f"{path} is {other.width}x{other.height} but its label map {sample.label} is "
                               f"{label.width}x{label.height}; replace the mismatched file")
    label_ids, inst_ids = np.asarray(label).astype(np.int64), np.asarray(inst).astype(np.int64)
    if label_ids.min(initial=0) < 0 or label_ids.max(initial=0) > 255 or inst_ids.max(initial=0) > 65535:
        raise BuilderError(f"{sample.label} or {sample.inst} holds ids outside 8-bit labels / 16-bit instances")
    img = img.convert("RGB")
    if size is not None:
        width, height = size
        label_ids, inst_ids = nearest(label_ids, width, height), nearest(inst_ids, width, height)
        img = img.resize((width, height), Image.Resampling.BICUBIC)
    Image.fromarray(label_ids.astype(np.uint8), "L").save(out / f"{phase}_label" / f"{sample.stem}.png")
    Image.fromarray(inst_ids.astype(np.uint16)).save(out / f"{phase}_inst" / f"{sample.stem}.png")
    img.save(out / f"{phase}_img" / f"{sample.stem}.png")


def build(args: argparse.Namespace) -> dict[str, int]:
    """Convert every requested split; returns {phase: samples written}."""
    root = args.cityscapes_root
    if args.size is not None and min(args.size) < 1:
        raise BuilderError(f"--size {args.size[0]} {args.size[1]}: give a positive width and height")
    check_root(root, args.splits)
    samples = {split: find_samples(root, split) for split in args.splits}  # all errors before writing anything
    written = {}
    for split, frames in samples.items():
        phase = PHASE_OF_SPLIT[split]
        prepare_folders([args.out / f"{phase}_{kind}" for kind in FOLDERS], args.overwrite)
        for sample in frames:
            convert(sample, args.out, phase, tuple(args.size) if args.size else None)
        written[phase] = len(frames)
        print(f"{split} -> {phase}: {len(frames)} samples -> {args.out}/{phase}_label, {phase}_inst, {phase}_img")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
