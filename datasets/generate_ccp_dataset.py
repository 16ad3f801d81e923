"""Build an InstaGAN dataset from Clothing Co-Parsing (CCP), e.g. jeans (A) <-> skirt (B).

Source layout (the clothing-co-parsing release)::

    photos/<id>.jpg                      street fashion photos
    annotations/pixel-level/<id>.mat     variable ``groundtruth``: (H, W) label ids, 0 background
    label_list.mat                       variable ``label_list``: 1 x 59 cell of names; id v is entry v

Only the photos with a pixel-level annotation are used. Choices:
  * CCP labels pixels without telling instances apart, so each image gets ONE mask: all pixels of
    the class (as the InstaGAN authors did for CCP).
  * ``--both_classes skip`` (default) skips an image holding any pixel of both classes: its domain-A
    copy would show unmasked class-B clothes. ``both`` writes it into both domains, each copy with
    the mask of its own class, as the authors' builder did. An image holding neither is skipped.
  * CCP has no official split: the annotated ids are shuffled with ``--seed`` and the first
    ``--test_fraction`` of them form test, the rest train. The split depends only on the ids, so
    datasets built for other class pairs share it.
  * Images are resized to cover ``--height`` x ``--width`` and centre-cropped. Default 450 x 300
    (H x W), the CCP photos' 3:2 shape; the paper then loads them at 330 x 220 and crops 300 x 200.
    0 x 0 keeps the source size.
  * An image whose mask covers less than ``--min_area`` of the written image is skipped.

Needs scipy (scipy.io.loadmat) to read the .mat files. Run from the repository root:

    python -m datasets.generate_ccp_dataset --root clothing-co-parsing --out datasets/jeans2skirt_ccp
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from datasets.builder_utils import (
    BuilderError,
    DatasetWriter,
    SampleFilter,
    add_both_classes_argument,
    add_output_size_arguments,
    add_sample,
    check_fraction,
    check_output_size,
    domains_shown,
    require_dir,
    require_file,
    run_cli,
    split_names,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.generate_ccp_dataset",
        description="Build <out>/<phase>A|B[_seg] from Clothing Co-Parsing (see the module docstring).")
    parser.add_argument("--root", type=Path, required=True,
                        help="the CCP folder (holding photos/, annotations/pixel-level/, label_list.mat)")
    parser.add_argument("--out", type=Path, default=None,
                        help="dataset root to write (default: datasets/<cat1>2<cat2>_ccp)")
    parser.add_argument("--cat1", default="jeans", help="class name of domain A (default: jeans)")
    parser.add_argument("--cat2", default="skirt", help="class name of domain B (default: skirt)")
    parser.add_argument("--test_fraction", type=float, default=0.1,
                        help="share of the annotated images that form test (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default: 0)")
    add_output_size_arguments(parser)
    parser.add_argument("--min_area", type=float, default=0.0,
                        help="treat a class covering less than this fraction of the written image as absent "
                             "(default: 0)")
    add_both_classes_argument(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the train/test folders if they already hold files")
    return parser


def load_mat_variable(path: Path, key: str) -> np.ndarray:
    """Variable ``key`` of a MATLAB file; BuilderError when the file or the variable cannot be read."""
    from scipy.io import loadmat

    try:
        content = loadmat(str(path))
    except (ValueError, NotImplementedError, OSError, TypeError) as error:
        raise BuilderError(f"cannot read {path} as a MATLAB file ({error})") from None
    if key not in content:
        found = ", ".join(k for k in content if not k.startswith("__")) or "none"
        raise BuilderError(f"{path} has no variable {key!r} (variables: {found})")
    return content[key]


def read_label_names(path: Path) -> list[str]:
    """Class names by label id from label_list.mat (a cell array of strings; empty cells become '')."""
    cells = load_mat_variable(path, "label_list").ravel()
    names = []
    for cell in cells:
        values = np.ravel(cell)
        names.append(str(values[0]).strip() if values.size else "")
    return names


def class_id(names: list[str], name: str, option: str) -> int:
    wanted = name.strip().lower()
    for index, candidate in enumerate(names):
        if candidate.lower() == wanted:
            return index
    valid = ", ".join(sorted(n for n in names[1:] if n))
    raise BuilderError(f"unknown class {option} {name!r}; classes in label_list.mat: {valid}")


def build(args: argparse.Namespace) -> list[DatasetWriter]:
    root = require_dir(args.root, "--root")
    photo_dir = require_dir(root / "photos", "--root: photos folder")
    annotation_dir = require_dir(root / "annotations" / "pixel-level", "--root: pixel-level annotation folder")
    names = read_label_names(require_file(root / "label_list.mat", "--root: label list"))
    class_ids = {"A": class_id(names, args.cat1, "--cat1"), "B": class_id(names, args.cat2, "--cat2")}
    if class_ids["A"] == class_ids["B"]:
        raise BuilderError(f"--cat1 and --cat2 name the same class {args.cat1!r}; choose two different ones")
    check_fraction(args.test_fraction, "--test_fraction")
    check_fraction(args.min_area, "--min_area")
    check_output_size(args.height, args.width)
    labels = {"A": args.cat1, "B": args.cat2}
    out = args.out or Path("datasets") / f"{args.cat1}2{args.cat2}_ccp"
    annotated = sorted(p.stem for p in annotation_dir.glob("*.mat"))
    if not annotated:
        raise BuilderError(f"no .mat annotation in {annotation_dir}; is --root the clothing-co-parsing folder?")
    rules = SampleFilter(height=args.height, width=args.width, min_area=args.min_area)
    writers = []
    for phase, ids in split_names(annotated, args.test_fraction, args.seed).items():
        writer = DatasetWriter(out, phase)
        writer.prepare(args.overwrite)
        for image_id in ids:
            build_one(image_id, photo_dir, annotation_dir / f"{image_id}.mat", class_ids, labels, rules, writer,
                      args.both_classes)
        print(writer.summary(labels))
        writers.append(writer)
    return writers


def build_one(image_id: str, photo_dir: Path, annotation_path: Path, class_ids: dict[str, int],
              labels: dict[str, str], rules: SampleFilter, writer: DatasetWriter, both_classes: str = "skip") -> None:
    photo = photo_dir / f"{image_id}.jpg"
    if not photo.is_file():
        writer.skip("photo missing from photos/")
        return
    try:
        groundtruth = np.asarray(load_mat_variable(annotation_path, "groundtruth"))
        image = Image.open(photo).convert("RGB")
    except BuilderError:
        writer.skip("unreadable annotation (no 'groundtruth' variable)")
        return
    except (UnidentifiedImageError, OSError):
        writer.skip("unreadable photo")
        return
    if groundtruth.shape != (image.height, image.width):
        writer.skip("annotation size differs from the photo")
        return
    present = [d for d in ("A", "B") if (groundtruth == class_ids[d]).any()]
    for domain in domains_shown(present, both_classes, writer, labels):
        add_sample(writer, domain, image_id, image, [groundtruth == class_ids[domain]], rules)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
