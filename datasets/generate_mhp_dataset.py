"""Build an InstaGAN dataset from LV-MHP v1 (Multi-Human Parsing), e.g. pants (A) <-> skirt (B).

Source layout (the LV-MHP-v1 folder of the release)::

    images/<id>.jpg                    photos, each with two or more persons
    annotations/<id>_<NN>_<PP>.png     one label map per person (NN persons, this is person PP)
    train_list.txt, test_list.txt      image file names of each split (val_list.txt too)

Label ids: 0 background, 1 hat, 2 hair, 3 sunglasses, 4 upper clothes, 5 skirt, 6 pants, 7 dress,
8 belt, 9 left shoe, 10 right shoe, 11 face, 12 left leg, 13 right leg, 14 left arm, 15 right arm,
16 bag, 17 scarf, 18 torso skin.

Each person whose label map holds ``--cat1_id`` pixels gives one mask (those pixels) in domain A;
likewise ``--cat2_id`` for B. Choices:
  * ``--both_classes skip`` (default) skips an image where the two classes both appear (on any
    persons): its domain-A copy would show unmasked class-B clothes. ``both`` writes it into both
    domains, each copy with the masks of its own class, as the authors' builder did. Images showing
    neither are skipped.
  * Images are resized to cover ``--height`` x ``--width`` and centre-cropped (default 450 x 300,
    as the authors: height 450, then the centre 300 columns); 0 x 0 keeps the source size.
  * Phase ``P`` takes the images of ``<root>/P_list.txt``. When the root holds none of the
    requested list files, all images are split into train/test by ``--test_fraction``/``--seed``.
  * Instances are measured on the written image, as in generate_coco_dataset.py (--min_area,
    --min_instances, --max_instances). Masks are written in person order.

Run from the repository root:

    python -m datasets.generate_mhp_dataset --root LV-MHP-v1 --out datasets/pants2skirt_mhp
"""

from __future__ import annotations

import argparse
import re
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
    add_instance_count_arguments,
    add_output_size_arguments,
    add_sample,
    check_fraction,
    check_output_size,
    domains_shown,
    require_dir,
    run_cli,
    split_names,
)

MHP_CLASSES = ("background", "hat", "hair", "sunglasses", "upper clothes", "skirt", "pants", "dress", "belt",
               "left shoe", "right shoe", "face", "left leg", "right leg", "left arm", "right arm", "bag",
               "scarf", "torso skin")
PERSON_FILE = re.compile(r"^(?P<image>.+)_(?P<count>\d+)_(?P<person>\d+)\.png$", re.IGNORECASE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.generate_mhp_dataset",
        description="Build <out>/<phase>A|B[_seg] from LV-MHP v1 (see the module docstring).")
    parser.add_argument("--root", type=Path, required=True,
                        help="the LV-MHP-v1 folder (holding images/, annotations/, train_list.txt, test_list.txt)")
    parser.add_argument("--out", type=Path, default=Path("datasets/pants2skirt_mhp"),
                        help="dataset root to write (default: datasets/pants2skirt_mhp)")
    parser.add_argument("--cat1_id", type=int, default=6, help="label id of domain A (default: 6, pants)")
    parser.add_argument("--cat2_id", type=int, default=5, help="label id of domain B (default: 5, skirt)")
    parser.add_argument("--phases", nargs="+", default=["train", "test"],
                        help="phases to build, each from <root>/<phase>_list.txt (default: train test)")
    parser.add_argument("--test_fraction", type=float, default=0.1,
                        help="share of images for test when the root has no list files (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of that split (default: 0)")
    add_output_size_arguments(parser)
    parser.add_argument("--min_area", type=float, default=0.0,
                        help="drop instances covering less than this fraction of the written image (default: 0)")
    add_instance_count_arguments(parser)
    add_both_classes_argument(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the phases' folders if they already hold files")
    return parser


def class_label(class_id: int, option: str) -> str:
    if not 1 <= class_id < len(MHP_CLASSES):
        valid = ", ".join(f"{i} {name}" for i, name in enumerate(MHP_CLASSES) if i)
        raise BuilderError(f"{option} {class_id} is not an LV-MHP v1 class id; valid: {valid}")
    return MHP_CLASSES[class_id]


def index_person_files(annotation_dir: Path) -> dict[str, list[Path]]:
    """Map each image id to its per-person label maps, ordered by person number."""
    persons: dict[str, list[tuple[int, Path]]] = {}
    for path in annotation_dir.iterdir():
        match = PERSON_FILE.match(path.name)
        if match:
            persons.setdefault(match["image"], []).append((int(match["person"]), path))
    return {image: [p for _, p in sorted(items)] for image, items in persons.items()}


def read_list(path: Path) -> list[str]:
    """Image ids named in a split list (lines like ``0001.jpg``); blank lines are ignored."""
    entries = [line.strip() for line in path.read_text().splitlines()]
    return [Path(e).stem if Path(e).suffix.lower() in IMAGE_SUFFIXES else e for e in entries if e]


def phase_ids(root: Path, image_dir: Path, phases: Sequence[str], test_fraction: float,
              seed: int) -> dict[str, list[str]]:
    """Image ids of each phase, from the list files, or a seeded train/test split when there are none."""
    lists = {phase: root / f"{phase}_list.txt" for phase in phases}
    missing = [path for path in lists.values() if not path.is_file()]
    if not missing:
        return {phase: read_list(path) for phase, path in lists.items()}
    if len(missing) < len(lists) or set(phases) != {"train", "test"}:
        raise BuilderError(f"no list file {missing[0]}; add it, or build only the phases whose lists exist "
                           f"(--phases), or remove them all to split by --test_fraction")
    ids = [p.stem for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    print(f"no *_list.txt under {root}: splitting {len(ids)} images with --test_fraction {test_fraction}, "
          f"--seed {seed}")
    return split_names(ids, test_fraction, seed)


def find_image(image_dir: Path, image_id: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        path = image_dir / f"{image_id}{suffix}"
        if path.is_file():
            return path
    return None


def read_label_map(path: Path) -> np.ndarray:
    """A person's (H, W) label ids; some maps are saved with three equal channels, the first is used."""
    labels = np.asarray(Image.open(path))
    return labels[..., 0] if labels.ndim == 3 else labels


def build(args: argparse.Namespace) -> list[DatasetWriter]:
    root = require_dir(args.root, "--root")
    image_dir = require_dir(root / "images", "--root: images folder")
    annotation_dir = require_dir(root / "annotations", "--root: annotations folder")
    labels = {"A": class_label(args.cat1_id, "--cat1_id"), "B": class_label(args.cat2_id, "--cat2_id")}
    if args.cat1_id == args.cat2_id:
        raise BuilderError(f"--cat1_id and --cat2_id are both {args.cat1_id}; choose two different classes")
    check_fraction(args.test_fraction, "--test_fraction")
    check_fraction(args.min_area, "--min_area")
    check_output_size(args.height, args.width)
    splits = phase_ids(root, image_dir, args.phases, args.test_fraction, args.seed)
    persons = index_person_files(annotation_dir)
    rules = SampleFilter(height=args.height, width=args.width, min_area=args.min_area,
                         min_instances=args.min_instances, max_instances=args.max_instances)
    for phase, ids in splits.items():
        if ids and not any(find_image(image_dir, image_id) for image_id in ids):
            raise BuilderError(f"none of the {len(ids)} images of phase {phase} is in {image_dir} (e.g. {ids[0]}); "
                               f"is --root the LV-MHP-v1 folder?")
    writers = []
    for phase, ids in splits.items():
        writer = DatasetWriter(args.out, phase)
        writer.prepare(args.overwrite)
        for image_id in sorted(ids):
            build_one(image_id, image_dir, persons.get(image_id, []), (args.cat1_id, args.cat2_id), labels,
                      rules, writer, args.both_classes)
        print(writer.summary(labels))
        writers.append(writer)
    return writers


def build_one(image_id: str, image_dir: Path, person_files: list[Path], class_ids: tuple[int, int],
              labels: dict[str, str], rules: SampleFilter, writer: DatasetWriter, both_classes: str = "skip") -> None:
    image_path = find_image(image_dir, image_id)
    if image_path is None:
        writer.skip("listed image missing from images/")
        return
    if not person_files:
        writer.skip("no per-person annotation in annotations/")
        return
    try:
        image = Image.open(image_path).convert("RGB")
        maps = [read_label_map(p) for p in person_files]
    except (UnidentifiedImageError, OSError):
        writer.skip("unreadable image or annotation file")
        return
    if any(m.shape != (image.height, image.width) for m in maps):
        writer.skip("annotation size differs from the image")
        return
    masks = {d: [m == c for m in maps if (m == c).any()] for d, c in zip(("A", "B"), class_ids)}
    for domain in domains_shown([d for d in ("A", "B") if masks[d]], both_classes, writer, labels):
        add_sample(writer, domain, image_id, image, masks[domain], rules)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
