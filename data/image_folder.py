"""Finding image files and their instance masks on disk (SPEC section 6 layout).

Images live flat in ``<dataroot>/<phase>A``; the k-th mask of image ``<stem>.<ext>`` is
``<dataroot>/<phase>A_seg/<stem>_<k>.png``. Masks are matched to images by file stem only.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Greedy stem: the LAST "_<digits>" is the instance number, so "img_12_0.png" is instance 0 of "img_12".
MASK_NAME = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)


class DatasetError(ValueError):
    """A problem with the files on disk, described in one line naming the file or folder and the fix."""


def is_image_file(name: str | Path) -> bool:
    return Path(name).suffix.lower() in IMG_EXTENSIONS


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
