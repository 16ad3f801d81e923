"""Build an InstaGAN dataset from COCO 2017 instance annotations, e.g. sheep (A) <-> giraffe (B).

Domain A holds the images showing ``--cat1``, domain B those showing ``--cat2``; every annotation
of the category becomes one instance mask (polygons and both RLE forms, decoded by pycocotools).
Written layout , images always as PNG::

    <out>/<phase>A/<image stem>.png  <out>/<phase>A_seg/<image stem>_<k>.png  (same for B)

Choices (the authors' builder: every image showing a category went to that category's domain, and
every annotation of the category, crowds included, became a mask; ``--both_classes both --crowd include``
reproduces it):
  * ``--both_classes skip`` (default) skips an image showing both categories: a sheep image that
    also shows giraffes would teach the context loss to keep giraffes as background and show the
    discriminators real images of the wrong domain. ``both`` writes it into both domains, each copy
    with the masks of its own category.
  * ``--crowd skip-image`` (default) skips an image with a crowd (iscrowd) annotation of its
    category, since a crowd region is one mask over many animals, not an instance, and leaving
    it out would leave unmasked objects in the "background". ``ignore`` drops the crowd
    annotations but keeps the image; ``include`` keeps each crowd region as one mask (the original).
  * Instances are measured on the written (resized, cropped) image: one the crop leaves empty or
    that covers less than ``--min_area`` of the image is dropped; then the image is skipped when
    the instances left are outside [--min_instances, --max_instances]. Masks are written largest
    first.
  * ``--phase`` defaults to ``test`` for a *val* annotation file and ``train`` for a *train* one,
    so train and test come from two calls (from the repository root):

    python -m datasets.generate_coco_dataset --annotations annotations/instances_train2017.json \\
        --images train2017 --cat1 sheep --cat2 giraffe --out datasets/sheep2giraffe
    python -m datasets.generate_coco_dataset --annotations annotations/instances_val2017.json \\
        --images val2017 --cat1 sheep --cat2 giraffe --out datasets/sheep2giraffe
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
    add_instance_count_arguments,
    add_sample,
    check_fraction,
    domains_shown,
    require_dir,
    require_file,
    run_cli,
)

CROWD_CHOICES = ("skip-image", "ignore", "include")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.generate_coco_dataset",
        description="Build <out>/<phase>A|B[_seg] from COCO instance annotations (see the module docstring).")
    parser.add_argument("--annotations", type=Path, required=True,
                        help="COCO instances JSON, e.g. annotations/instances_train2017.json")
    parser.add_argument("--images", type=Path, required=True,
                        help="folder of that split's images, e.g. train2017")
    parser.add_argument("--out", type=Path, default=None,
                        help="dataset root to write (default: datasets/<cat1>2<cat2>_coco)")
    parser.add_argument("--cat1", default="sheep", help="category name of domain A (default: sheep)")
    parser.add_argument("--cat2", default="giraffe", help="category name of domain B (default: giraffe)")
    parser.add_argument("--phase", default=None,
                        help="phase folder prefix (default: test for a *val* annotation file, train for *train*)")
    parser.add_argument("--crowd", choices=CROWD_CHOICES, default="skip-image",
                        help="iscrowd annotations of a domain's category: skip-image skips the image (default), "
                             "ignore drops them but keeps the image, include makes each one a mask like any "
                             "other annotation (the authors' builder). The default differs because a crowd "
                             "region is one mask over many animals, not an instance")
    add_both_classes_argument(parser)
    add_instance_count_arguments(parser)
    parser.add_argument("--min_area", type=float, default=0.0,
                        help="drop instances covering less than this fraction of the written image (default: 0)")
    parser.add_argument("--size", type=int, default=256,
                        help="resize the shorter side to N and centre-crop NxN; 0 keeps the original size "
                             "(default: 256, as the authors)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace this phase's folders if they already hold files")
    return parser


def default_phase(annotation_file: Path) -> str:
    stem = annotation_file.stem.lower()
    if "val" in stem:
        return "test"
    if "train" in stem:
        return "train"
    raise BuilderError(f"cannot tell the phase from the name {annotation_file.name}; "
                       f"pass --phase train or --phase test")


def load_coco(annotation_file: Path):
    """pycocotools' COCO index of ``annotation_file``, with load failures as one-line errors."""
    from pycocotools.coco import COCO

    try:
        return COCO(str(annotation_file))
    except (ValueError, AssertionError, KeyError, TypeError) as error:
        raise BuilderError(f"--annotations {annotation_file} is not a COCO instances JSON file ({error})") from None


def category_id(coco, name: str, option: str) -> int:
    """The id of the category called ``name`` (case-insensitive); unknown names list the valid ones."""
    categories = coco.loadCats(coco.getCatIds())
    matches = [c["id"] for c in categories if c["name"].lower() == name.strip().lower()]
    if not matches:
        valid = ", ".join(sorted(c["name"] for c in categories)) or "(none)"
        raise BuilderError(f"unknown category {option} {name!r}; categories in this file: {valid}")
    return matches[0]


def select_annotations(anns: list[dict], crowd: str, writer: DatasetWriter, label: str) -> list[dict] | None:
    """The annotations that become instances, or None when the image must be skipped for crowds."""
    crowds = [a for a in anns if a.get("iscrowd", 0)]
    if not crowds or crowd == "include":
        return anns
    if crowd == "skip-image":
        writer.skip(f"has a crowd (iscrowd) annotation of {label} (see --crowd)")
        return None
    writer.drop("crowd annotation ignored (--crowd ignore)", len(crowds))
    singles = [a for a in anns if not a.get("iscrowd", 0)]
    if not singles:
        writer.skip(f"only crowd annotations of {label}")
        return None
    return singles


def open_image(path: Path, info: dict, writer: DatasetWriter) -> Image.Image | None:
    """The RGB image, or None (counted as a skip) when it is missing, unreadable or of another size."""
    if not path.is_file():
        writer.skip("image file missing under --images")
        return None
    try:
        image = Image.open(path).convert("RGB")
    except (UnidentifiedImageError, OSError):
        writer.skip("unreadable image file")
        return None
    if image.size != (info["width"], info["height"]):
        writer.skip("image size differs from the annotation file")
        return None
    return image


def is_well_formed(segmentation: object) -> bool:
    """Polygons with 3+ points each, or an RLE dict; pycocotools fails with unclear errors on anything else."""
    if isinstance(segmentation, dict):
        return isinstance(segmentation.get("counts"), (list, str)) and len(segmentation.get("size", ())) == 2
    return (isinstance(segmentation, list) and bool(segmentation)
            and all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in segmentation))


def instance_masks(coco, anns: list[dict], writer: DatasetWriter) -> list[np.ndarray]:
    """One boolean mask per annotation, largest first (ties by annotation id); malformed ones are dropped."""
    masks = []
    for ann in anns:
        info = coco.imgs[ann["image_id"]]
        mask = coco.annToMask(ann).astype(bool) if is_well_formed(ann.get("segmentation")) else None
        if mask is None or mask.shape != (info["height"], info["width"]):
            writer.drop("malformed segmentation")
        else:
            masks.append((mask, ann["id"]))
    masks.sort(key=lambda item: (-int(item[0].sum()), item[1]))
    return [m for m, _ in masks]


def check_images_present(coco, image_ids: list[int], images: Path) -> None:
    """Fail early when --images holds none of the images, the sign of a wrong folder."""
    infos = coco.loadImgs(image_ids)
    if infos and not any((images / info["file_name"]).is_file() for info in infos):
        raise BuilderError(f"none of the {len(infos)} images to use is in --images {images} (e.g. "
                           f"{infos[0]['file_name']}); use the image folder of this annotation file's split")


def build(args: argparse.Namespace) -> DatasetWriter:
    require_dir(args.images, "--images")
    require_file(args.annotations, "--annotations")
    check_fraction(args.min_area, "--min_area")
    if args.size < 0:
        raise BuilderError(f"--size must be 0 (keep the size) or a positive number of pixels, got {args.size}")
    phase = args.phase or default_phase(args.annotations)
    out = args.out or Path("datasets") / f"{args.cat1}2{args.cat2}_coco"
    coco = load_coco(args.annotations)
    cats = {"A": category_id(coco, args.cat1, "--cat1"), "B": category_id(coco, args.cat2, "--cat2")}
    if cats["A"] == cats["B"]:
        raise BuilderError(f"--cat1 and --cat2 name the same category {args.cat1!r}; choose two different ones")
    labels = {"A": args.cat1, "B": args.cat2}
    rules = SampleFilter(height=args.size, width=args.size, min_area=args.min_area,
                         min_instances=args.min_instances, max_instances=args.max_instances)
    image_ids = sorted(set(coco.getImgIds(catIds=[cats["A"]])) | set(coco.getImgIds(catIds=[cats["B"]])))
    check_images_present(coco, image_ids, args.images)
    writer = DatasetWriter(out, phase)
    writer.prepare(args.overwrite)
    for image_id in image_ids:
        build_one(coco, image_id, cats, labels, args, rules, writer)
    print(writer.summary(labels))
    return writer


def build_one(coco, image_id: int, cats: dict[str, int], labels: dict[str, str], args: argparse.Namespace,
              rules: SampleFilter, writer: DatasetWriter) -> None:
    """Write the image into the domain of the category it shows (both with ``--both_classes both``), each
    copy with the masks of its own category only."""
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=list(cats.values()), iscrowd=None))
    present = [d for d in ("A", "B") if any(a["category_id"] == cats[d] for a in anns)]
    info = coco.loadImgs([image_id])[0]
    image = None
    for domain in domains_shown(present, args.both_classes, writer, labels):
        selected = select_annotations([a for a in anns if a["category_id"] == cats[domain]], args.crowd, writer,
                                      labels[domain])
        if selected is None:
            continue
        if image is None:
            image = open_image(args.images / info["file_name"], info, writer)
            if image is None:
                return
        add_sample(writer, domain, Path(info["file_name"]).stem, image, instance_masks(coco, selected, writer),
                   rules)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
