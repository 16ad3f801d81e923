"""Binary attribute label files (CelebA's ``list_attr_celeba.txt`` or a ``filename,attr1,...`` CSV): read by
the attributes dataset (data/attributes_dataset.py) and by evaluate.py, which scores conditional translations
against them, so both read one format one way.

Two label formats, told apart by the first line:

* CelebA's ``list_attr_celeba.txt``: the number of images, then the attribute names separated by spaces,
  then one line per image, ``<file name> v1 v2 ...`` with values 1 / -1 (runs of spaces allowed);
* a CSV with the header ``filename,attr1,attr2,...`` (any name for the first column) and one row per image.

Values may be 1/0, 1/-1 or true/false in either format; labels are 0/1. Rows are keyed by file name without its
extension (``000001.jpg`` labels ``000001.png``), compared with ``same_name``.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .image_files import DatasetError, same_name

__all__ = ["CELEBA_LABELS", "CSV_LABELS", "LabelTable", "default_label_file", "read_label_file"]

CSV_LABELS = "{phase}_labels.csv"
CELEBA_LABELS = "list_attr_celeba.txt"
LABEL_VALUES = {"1": 1.0, "true": 1.0, "0": 0.0, "-1": 0.0, "false": 0.0}


@dataclass(frozen=True)
class LabelTable:
    """The chosen columns of a label file: 0/1 labels by image stem (NFC), and the file names as written."""

    path: Path
    attribute_names: list[str]
    labels: dict[str, tuple[float, ...]]
    file_names: list[str]


# ------------------------------------------------------------------------------------------- label file
def read_label_file(path: Path, wanted: list[str] | None = None) -> LabelTable:
    """Read a CelebA ``list_attr`` file or a labels CSV, keeping the ``wanted`` columns (all when None)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # utf-8-sig: spreadsheets start CSVs with a BOM
    except OSError as err:
        raise DatasetError(f"cannot read label file {path}: {err.strerror or err}; check --label_file") from None
    except UnicodeDecodeError:
        raise DatasetError(f"label file {path} is not UTF-8 text; give a CSV or a list_attr_celeba.txt") from None
    header, rows = _split_format(path, lines)
    columns = _pick_columns(path, header, wanted)
    labels: dict[str, tuple[float, ...]] = {}
    first_line: dict[str, int] = {}
    file_names = []
    for number, name, values in rows:
        if len(values) != len(header):
            raise DatasetError(f"label file {path} line {number} has {len(values)} values for {len(header)} "
                               f"attributes; fix the line")
        stem = same_name(Path(name).stem)
        if stem in labels:
            raise DatasetError(f"label file {path} line {number} labels {name} again (first on line "
                               f"{first_line[stem]}); remove one of the rows")
        labels[stem] = tuple(_label_value(path, number, header[c], values[c]) for c in columns)
        first_line[stem] = number
        file_names.append(name)
    if not labels:
        raise DatasetError(f"label file {path} has no label rows; add one row per image")
    _warn_if_count_differs(path, lines, len(labels))
    return LabelTable(path, [header[c] for c in columns], labels, file_names)


def _split_format(path: Path, lines: list[str]) -> tuple[list[str], Iterator[tuple[int, str, list[str]]]]:
    """The attribute names and the rows ``(line number, file name, values)``, by the format of the first line."""
    first = lines[0].strip() if lines else ""
    if "," in first:
        header = [cell.strip() for cell in next(csv.reader([first]))][1:]
        rows = _csv_rows(lines)
    elif first.isdigit():
        header = lines[1].split() if len(lines) > 1 else []
        rows = _celeba_rows(lines)
    else:
        raise DatasetError(f"label file {path} is neither a CelebA list_attr file (line 1: the number of images) "
                           f"nor a CSV with the header filename,attr1,attr2,...; check --label_file")
    if not header or not all(header):
        raise DatasetError(f"label file {path}: the header names no attributes (or an empty one); name every "
                           f"column")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DatasetError(f"label file {path} names the attribute(s) {', '.join(repeated)} twice; rename one")
    return header, rows


def _csv_rows(lines: list[str]) -> Iterator[tuple[int, str, list[str]]]:
    for number, cells in enumerate(csv.reader(lines[1:]), start=2):
        cells = [cell.strip() for cell in cells]
        if any(cells):
            yield number, cells[0], cells[1:]


def _celeba_rows(lines: list[str]) -> Iterator[tuple[int, str, list[str]]]:
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if parts:
            yield number, parts[0], parts[1:]


def _pick_columns(path: Path, header: list[str], wanted: list[str] | None) -> list[int]:
    if wanted is None:
        return list(range(len(header)))
    missing = [name for name in wanted if name not in header]
    if missing:
        raise DatasetError(f"--attributes: {', '.join(missing)} not in label file {path}; its attributes are "
                           f"{', '.join(header)}")
    return [header.index(name) for name in wanted]


def _label_value(path: Path, number: int, attribute: str, value: str) -> float:
    try:
        return LABEL_VALUES[value.lower()]
    except KeyError:
        raise DatasetError(f"label file {path} line {number}: {value!r} for {attribute} is not a label (use 1/0, "
                           f"1/-1 or true/false); fix the line") from None


def _warn_if_count_differs(path: Path, lines: list[str], rows: int) -> None:
    """CelebA's first line counts the rows; a mismatch hints at a truncated or hand-cut file."""
    first = lines[0].strip()
    if first.isdigit() and int(first) != rows:
        warnings.warn(f"label file {path}: line 1 says {first} images but {rows} rows follow; the file may be "
                      f"truncated (all {rows} rows are used)", stacklevel=3)


def default_label_file(root: Path, phase: str) -> Path:
    """``<root>/<phase>_labels.csv`` when it exists, else ``<root>/list_attr_celeba.txt``."""
    csv_path = root / CSV_LABELS.format(phase=phase)
    return csv_path if csv_path.is_file() else root / CELEBA_LABELS
