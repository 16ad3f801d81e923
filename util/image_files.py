"""The dataset layout on disk : which files are images, where masks are and how they are named.

Images live flat in ``<dataroot>/<phase>A``; the k-th mask of image ``<stem>.<ext>`` is
``<dataroot>/<phase>A_seg/<stem>_<k>.png``. Masks are matched to images by file stem only.

Every listing skips the metadata files macOS leaves next to copied files: AppleDouble ``._<name>`` files
(``._cat.png`` looks like an image by its extension but holds a resource fork) and ``.DS_Store``.

Two names that differ only in their Unicode normalisation (``café.png`` typed as NFC, ``é`` one code point,
and as NFD, ``e`` plus a combining accent, as macOS writes it) are the same name to a reader: stems are
compared after NFC normalisation, so such twins are reported as duplicates (``duplicate_stems``).

16-bit greyscale files (PNG mode ``I;16``) are read scaled to 8 bits (``to_8bit``), not clipped (which
turns every value above 255 white).

This lives in util, not data, because evaluation (evaluate.py, util/domain_classifier.py) reads the same
layout and must not depend on the training data pipeline.
"""

from __future__ import annotations

import argparse
import math
import re
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Greedy stem: the LAST "_<digits>" is the instance number, so "img_12_0.png" is instance 0 of "img_12".
MASK_NAME = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)

# Files macOS writes next to copied files; never images, always skipped.
MACOS_METADATA = ".DS_Store"
APPLEDOUBLE_PREFIX = "._"
# Modes in which PIL opens a 16-bit greyscale PNG (and "I", 32-bit, as older Pillow opened them).
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})

__all__ = ["IMG_EXTENSIONS", "MASK_NAME", "SIXTEEN_BIT_MODES", "DatasetError", "check_unique_stems", "domain_letters",
           "duplicate_stem_message", "duplicate_stems", "index_mask_files", "is_image_file", "is_os_metadata_file",
           "list_image_files", "mask_file_name", "mask_number", "same_name", "to_8bit"]


class DatasetError(ValueError):
    """A problem with the files on disk, described in one line naming the file or folder and the fix."""


def domain_letters(opt: argparse.Namespace) -> tuple[str, str]:
    """Folder letters of the source and target domain (``--direction BtoA`` reads ``<phase>B`` as the source)."""
    return ("B", "A") if opt.direction == "BtoA" else ("A", "B")


def is_os_metadata_file(name: str | Path) -> bool:
    """macOS metadata (``._<name>`` AppleDouble files, ``.DS_Store``): skipped by every listing."""
    name = Path(name).name
    return name.startswith(APPLEDOUBLE_PREFIX) or name == MACOS_METADATA


def is_image_file(name: str | Path) -> bool:
    return Path(name).suffix.lower() in IMG_EXTENSIONS and not is_os_metadata_file(name)


def same_name(name: str) -> str:
    """The form in which two file names or stems are compared: NFC, so NFC and NFD spellings are one name."""
    return unicodedata.normalize("NFC", name)


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


def duplicate_stems(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(first, later) pairs of images with one stem, also when the stems differ only in Unicode normalisation."""
    seen: dict[str, Path] = {}
    pairs = []
    for path in paths:
        first = seen.setdefault(same_name(path.stem), path)
        if first is not path:
            pairs.append((first, path))
    return pairs


def duplicate_stem_message(first: Path, second: Path) -> str:
    """Why two images with one stem are refused, and the fix (the loader's and the checker's wording)."""
    if first.stem == second.stem:
        return (f"images {first} and {second} share the stem {first.stem!r}, so their masks cannot be told apart; "
                f"rename or remove one")
    return (f"images {first} and {second} are duplicates: one name in two Unicode forms ({first.name!a} in "
            f"{_unicode_form(first.name)}, {second.name!a} in {_unicode_form(second.name)}; macOS writes NFD), so "
            f"their masks cannot be told apart; remove one (or rename it)")


def _unicode_form(name: str) -> str:
    for form in ("NFC", "NFD"):
        if unicodedata.is_normalized(form, name):
            return form
    return "mixed form"


def check_unique_stems(paths: list[Path]) -> None:
    """Masks are matched by stem, so two images with one stem (a.png, a.jpg; or café.png in NFC and in NFD)
    would share masks."""
    pairs = duplicate_stems(paths)
    if pairs:
        raise DatasetError(duplicate_stem_message(*pairs[0]))


def index_mask_files(seg_folder: Path) -> dict[str, list[Path]]:
    """Map each image stem to its mask files ordered by instance number k (numerically: 2 before 10).

    One directory listing; files whose names do not match ``<stem>_<k>.<png|jpg|jpeg>`` and macOS metadata
    files (``._<stem>_<k>.png``) are ignored.
    """
    numbered: dict[str, list[tuple[int, Path]]] = {}
    for path in seg_folder.iterdir():
        match = MASK_NAME.match(path.name)
        if match and not is_os_metadata_file(path) and path.is_file():
            numbered.setdefault(match["stem"], []).append((int(match["k"]), path))
    return {stem: [p for _, p in sorted(items)] for stem, items in numbered.items()}


def to_8bit(image: Image.Image, keep_8bit_values: bool = False) -> Image.Image:
    """A 16-bit greyscale image (``SIXTEEN_BIT_MODES``) as 8-bit grey ("L"); any other image unchanged.

    PIL's own conversion clips every value above 255 to white; here 0..65535 is scaled to 0..255 (the PNG
    meaning of 16 bits: 65535 is white). With ``keep_8bit_values`` (masks), a file whose values are all at most
    255 holds 8-bit values in a 16-bit container (``numpy.uint16`` 0/255 masks) and is read as is.
    """
    if image.mode not in SIXTEEN_BIT_MODES:
        return image
    values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
    if not (keep_8bit_values and values.max(initial=0) <= 255):
        values = (values * 255 + 32767) // 65535
    return Image.fromarray(values.astype(np.uint8), "L")
