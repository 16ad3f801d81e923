"""The dataset layout on disk : which files are images, where masks are and how they are named.

Images live flat in ``<dataroot>/<phase>A``; the k-th mask of image ``<stem>.<ext>`` is
``<dataroot>/<phase>A_seg/<stem>_<k>.png``. Masks are matched to images by file stem only.

This lives in util, not data, because evaluation (evaluate.py, util/domain_classifier.py) reads the same
layout and must not depend on the training data pipeline.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Greedy stem: the LAST "_<digits>" is the instance number, so "img_12_0.png" is instance 0 of "img_12".
MASK_NAME = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)

__all__ = ["IMG_EXTENSIONS", "MASK_NAME", "DatasetError", "check_unique_stems", "domain_letters", "index_mask_files",
           "is_image_file", "list_image_files", "mask_file_name", "mask_number"]


class DatasetError(ValueError):
    """A problem with the files on disk, described in one line naming the file or folder and the fix."""


def domain_letters(opt: argparse.Namespace) -> tuple[str, str]:
    """Folder letters of the source and target domain (``--direction BtoA`` reads ``<phase>B`` as the source)."""
    return ("B", "A") if opt.direction == "BtoA" else ("A", "B")


def is_image_file(name: str | Path) -> bool:
    return Path(name).suffix.lower() in IMG_EXTENSIONS


def mask_file_name(stem: str, k: int) -> str:
    """The file name of instance ``k`` of image ``stem``, as builders write it and ``MASK_NAME`` reads it."""
    return f"{stem}_{k}.png"


def mask_number(path: str | Path) -> int:
    """The instance number k of a mask file ``<stem>_<k>.<ext>`` (what ``index_mask_files`` orders by)."""
    match = MASK_NAME.match(Path(path).name)
    if match is None:
        raise DatasetError(f"{path} is not named <stem>_<k>.png, so it has no instance number k; rename it")
    return int(match["k"])


def list_image_files(folder: Path, max_count: float = math.inf) -> list[Path]:
    """Sorted image files directly inside ``folder``, the first ``max_count`` of them.

    Raises DatasetError when the folder is missing or holds no image; the caller adds which
    folder of the layout it was meant to be.
    """
    if not folder.is_dir():
        raise DatasetError(f"no folder {folder}")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p.name))
    if not paths:
        raise DatasetError(f"no images ({', '.join(IMG_EXTENSIONS)}) in {folder}")
    check_unique_stems(paths)
    if math.isfinite(max_count):
        paths = paths[: int(max_count)]
    return paths


def check_unique_stems(paths: list[Path]) -> None:
    """Masks are matched by stem, so two images with one stem (a.png, a.jpg) would share masks."""
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise DatasetError(f"images {seen[path.stem]} and {path} share the stem {path.stem!r}, so their "
                               f"masks cannot be told apart; rename or remove one")
        seen[path.stem] = path


def index_mask_files(seg_folder: Path) -> dict[str, list[Path]]:
    """Map each image stem to its mask files ordered by instance number k (numerically: 2 before 10).

    One directory listing; files whose names do not match ``<stem>_<k>.<png|jpg|jpeg>`` are ignored.
    """
    numbered: dict[str, list[tuple[int, Path]]] = {}
    for path in seg_folder.iterdir():
        match = MASK_NAME.match(path.name)
        if match and path.is_file():
            numbered.setdefault(match["stem"], []).append((int(match["k"]), path))
    return {stem: [p for _, p in sorted(items)] for stem, items in numbered.items()}
