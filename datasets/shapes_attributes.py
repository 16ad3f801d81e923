"""The attribute shapes dataset (``python -m datasets.make_shapes_dataset --attributes``): one object per image,
labelled with three binary attributes, for conditional translation (StarGAN, MatchGAN; ``--dataset_mode
attributes``).

Each image shows the pale smooth background of the unpaired shapes dataset and ONE object with

* ``rectangle``: 1 for a rectangle (within +-RECT_MAX_TILT_DEG of axis-aligned), 0 for an ellipse (any angle);
* ``red``: 1 for a red colour (hue near 0), 0 for a blue one (hue near 0.62), from well separated palettes;
* ``large``: 1 for an area in LARGE_AREA, 0 for one in SMALL_AREA (pixels at 64 px, scaled with the square of
  the size), two ranges far apart.

The three bits are drawn independently and uniformly, so all 8 combinations are equally likely.

``--distractors N`` (default 0) adds up to N unlabelled objects to every image (one that finds no room is left
out), drawn before the labelled one and clear of it: any kind, either size class, in green or grey (never red or
blue). The labels still describe the one red or blue object, so a model also has to learn from its labels WHICH
object they describe; StarGAN needs its labels more there than on the plain set
(docs/attributes_benchmark_distractors.md). Every image
draws from its own random generator seeded by (seed, phase, index), so the files are byte-identical for the
same options whatever the number of ``--workers``.

    <out>/<phase>/<name>.png     images (phase: train, test)
    <out>/<phase>_labels.csv     filename,rectangle,red,large with 0/1 values
"""

from __future__ import annotations

import colorsys
import math
import multiprocessing
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.make_shapes_dataset import (
    ASPECT_RANGE,
    META_NAME,
    MIN_OBJECT_AREA,
    PHASES,
    README_NAME,
    RECT_MAX_TILT_DEG,
    ShapeObject,
    Variant,
    clear_output,
    coverage,
    describe_object,
    draw_background,
    half_extents,
    image_name,
    object_fill,
    paint,
    readme_tail,
    write_dataset,
)

ATTRIBUTES_FORMAT_VERSION = 1
ATTRIBUTES = ("rectangle", "red", "large")
ATTRIBUTE_MEANINGS = {"rectangle": "1: the object is a rectangle, 0: an ellipse",
                      "red": "1: the object is red, 0: blue",
                      "large": "1: the object is large, 0: small (see area_ranges)"}
PALETTE_HUES = {"red": 0.0, "blue": 0.62}
HUE_JITTER = 0.025
SATURATION_RANGE = (0.6, 0.9)
VALUE_RANGE = (0.55, 0.85)
DISTRACTOR_PALETTES = {"green": (0.33, (0.35, 0.6)), "grey": (0.0, (0.0, 0.06))}  # hue, saturation range
MAX_DISTRACTORS = 4
PLACEMENT_TRIES = 60  # draws per distractor before it is left out (when the image is too crowded)
REFERENCE_SIZE = 64  # the area ranges are given at this image side and scale with its square
SMALL_AREA = (120.0, 200.0)
LARGE_AREA = (450.0, 700.0)


@dataclass(frozen=True)
class AttributeOptions:
    size: int = 64
    n_train: int = 2000
    n_test: int = 200
    seed: int = 0
    distractors: int = 0

    def as_dict(self) -> dict:
        options = {"format_version": ATTRIBUTES_FORMAT_VERSION, "size": self.size, "n_train": self.n_train,
                   "n_test": self.n_test, "seed": self.seed, "attributes": list(ATTRIBUTES)}
        # Only when set, so the plain dataset's meta (and a folder already generated) stays as it was.
        return {**options, "distractors": self.distractors} if self.distractors else options

    def count(self, phase: str) -> int:
        return self.n_train if phase == "train" else self.n_test

    def name_width(self) -> int:
        return max(5, len(str(max(self.n_train, self.n_test, 1) - 1)))

    def area_range(self, large: bool) -> tuple[float, float]:
        """Object areas in pixels of one size class at this image size."""
        scale = (self.size / REFERENCE_SIZE) ** 2
        low, high = LARGE_AREA if large else SMALL_AREA
        return low * scale, high * scale


def smallest_size() -> int:
    """The smallest image side at which a small object still covers MIN_OBJECT_AREA pixels."""
    return math.ceil(REFERENCE_SIZE * math.sqrt(MIN_OBJECT_AREA / SMALL_AREA[0]))


def validate_attribute_options(options: AttributeOptions) -> None:
    """Raise ValueError naming the option and the fix."""
    if options.size < smallest_size():
        raise ValueError(f"--size {options.size} is too small: the small objects would cover under "
                         f"{MIN_OBJECT_AREA:g} pixels; use {smallest_size()} or more")
    if options.n_train < 0 or options.n_test < 0:
        raise ValueError("--n_train and --n_test must be 0 or more")
    if options.seed < 0:
        raise ValueError(f"--seed {options.seed} must be 0 or more")
    if not 0 <= options.distractors <= MAX_DISTRACTORS:
        raise ValueError(f"--distractors {options.distractors} is out of range; use 0 to {MAX_DISTRACTORS}")


# ---------------------------------------------------------------- drawing

def attribute_rng(seed: int, phase: str, index: int) -> np.random.Generator:
    """The generator of one image ("attributes" in the seed: a stream of its own)."""
    return np.random.default_rng([seed, zlib.crc32(f"{phase}/attributes".encode()), index])


def sample_object(rng: np.random.Generator, labels: dict[str, int], options: AttributeOptions) -> ShapeObject:
    """The object of ``labels``: its kind and area class, a random aspect ratio and angle, placed inside."""
    kind = "rectangle" if labels["rectangle"] else "ellipse"
    area = rng.uniform(*options.area_range(bool(labels["large"])))
    aspect = math.exp(rng.uniform(math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1])))
    if kind == "ellipse":
        short = 2 * math.sqrt(area / (math.pi * aspect))
        dims, angle = (short * aspect, short), float(rng.uniform(0, 180))
    else:
        short = math.sqrt(area / aspect)
        dims = (short * aspect, short) if rng.random() < 0.5 else (short, short * aspect)
        angle = float(rng.uniform(-RECT_MAX_TILT_DEG, RECT_MAX_TILT_DEG))
    hx, hy = half_extents(ShapeObject(kind, (0.0, 0.0), dims, angle))
    size = options.size
    center = (float(rng.uniform(hx + 1, size - hx - 1)), float(rng.uniform(hy + 1, size - hy - 1)))
    return ShapeObject(kind, center, dims, angle)


def boxes_apart(first: ShapeObject, second: ShapeObject, gap: float = 2.0) -> bool:
    """Whether the two objects' bounding boxes are at least ``gap`` pixels apart along some axis."""
    (fx, fy), (sx, sy) = half_extents(first), half_extents(second)
    return (abs(first.center[0] - second.center[0]) >= fx + sx + gap
            or abs(first.center[1] - second.center[1]) >= fy + sy + gap)


def sample_distractors(rng: np.random.Generator, labelled: ShapeObject, options: AttributeOptions
                       ) -> list[ShapeObject]:
    """Up to ``options.distractors`` unlabelled objects of random kind and size class, each clear of the labelled
    object and of each other (one that finds no room in PLACEMENT_TRIES draws is left out)."""
    placed: list[ShapeObject] = []
    for _ in range(options.distractors):
        for _ in range(PLACEMENT_TRIES):
            bits = {"rectangle": int(rng.integers(2)), "large": int(rng.integers(2))}
            candidate = sample_object(rng, bits, options)
            if all(boxes_apart(candidate, other) for other in [labelled, *placed]):
                placed.append(candidate)
                break
    return placed


def distractor_colour(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """A green or grey colour (the palette's name and RGB), never mistaken for red or blue."""
    palette = str(rng.choice(list(DISTRACTOR_PALETTES)))
    hue, saturation = DISTRACTOR_PALETTES[palette]
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(*saturation), rng.uniform(*VALUE_RANGE))
    return palette, np.array(rgb)


def palette_colour(rng: np.random.Generator, palette: str) -> np.ndarray:
    """A saturated, mid-bright colour of the palette: clearly red or clearly blue on the pale background."""
    hue = (PALETTE_HUES[palette] + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(*SATURATION_RANGE), rng.uniform(*VALUE_RANGE)))


def render_attribute_image(options: AttributeOptions, phase: str, index: int) -> tuple[np.ndarray, dict]:
    """One image (RGB uint8) and its record: ``labels`` ({attribute: 0/1}) and ``object`` (its description)."""
    rng = attribute_rng(options.seed, phase, index)
    labels = {name: int(bit) for name, bit in zip(ATTRIBUTES, rng.integers(2, size=len(ATTRIBUTES)))}
    image = draw_background(rng, options.size)
    obj = sample_object(rng, labels, options)
    cover = coverage(obj, options.size)
    palette = "red" if labels["red"] else "blue"
    colour = palette_colour(rng, palette)
    fill, texture = object_fill(rng, obj, colour, options.size)
    record = {"labels": labels}
    if options.distractors:  # drawn after the labelled object's draws, so 0 distractors leaves the images as before
        record["distractors"] = []
        for other in sample_distractors(rng, obj, options):
            other_palette, other_colour = distractor_colour(rng)
            other_fill, other_texture = object_fill(rng, other, other_colour, options.size)
            other_cover = coverage(other, options.size)
            image = paint(image, other_cover, other_fill)
            record["distractors"].append({**describe_object(other, other_cover >= 0.5, other_colour, other_texture),
                                          "palette": other_palette})
    image = paint(image, cover, fill)
    record["object"] = {**describe_object(obj, cover >= 0.5, colour, texture), "palette": palette,
                        "size_class": "large" if labels["large"] else "small"}
    return np.round(image * 255).astype(np.uint8), record


# ---------------------------------------------------------------- files

def label_file(phase: str) -> str:
    return f"{phase}_labels.csv"


def write_attribute_image(out: Path, options: AttributeOptions, phase: str, index: int) -> dict:
    """Render one image and write it; returns its meta record."""
    image, record = render_attribute_image(options, phase, index)
    name = image_name(options, index)
    path = f"{phase}/{name}.png"
    Image.fromarray(image, "RGB").save(out / path)
    return {"name": name, "image": path, **record}


def _write_task(task: tuple) -> dict:
    return write_attribute_image(*task)


def labels_csv(records: list[dict]) -> str:
    rows = [",".join(["filename", *ATTRIBUTES])]
    rows += [",".join([Path(r["image"]).name, *(str(r["labels"][name]) for name in ATTRIBUTES)]) for r in records]
    return "\n".join(rows) + "\n"


def generate_attributes(out: Path, options: AttributeOptions, workers: int) -> dict:
    """Write every image and both label files; returns {phase: [record, ...]} in index order."""
    tasks = {phase: [(out, options, phase, i) for i in range(options.count(phase))] for phase in PHASES}
    for phase in PHASES:
        (out / phase).mkdir(parents=True, exist_ok=True)
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            records = {phase: pool.map(_write_task, jobs, chunksize=32) for phase, jobs in tasks.items()}
    else:
        records = {phase: [write_attribute_image(*job) for job in jobs] for phase, jobs in tasks.items()}
    for phase in PHASES:
        (out / label_file(phase)).write_text(labels_csv(records[phase]))
    return records


def attribute_owned_paths(out: Path) -> list[Path]:
    """Everything the attribute mode writes under ``out`` (so only these are ever removed)."""
    return ([out / phase for phase in PHASES] + [out / label_file(phase) for phase in PHASES]
            + [out / README_NAME, out / META_NAME])


def is_attributes_complete(out: Path, meta: dict | None, options: AttributeOptions) -> bool:
    """True if ``out`` already holds every file of an attribute dataset generated with exactly these options."""
    if not meta or not meta.get("complete") or meta.get("options") != options.as_dict():
        return False
    try:
        for phase in PHASES:
            records = meta["phases"][phase]
            if len(records) != options.count(phase) or not (out / label_file(phase)).is_file():
                return False
            if not all((out / record["image"]).is_file() for record in records):
                return False
    except (KeyError, TypeError):
        return False
    return (out / README_NAME).is_file()


def clear_attributes_output(out: Path, meta: dict | None, force: bool) -> None:
    """Remove an earlier attribute dataset in ``out``; refuse to replace another shapes dataset unless forced."""
    if meta is not None and not meta.get("options", {}).get("attributes") and not force:
        raise FileExistsError(f"{out} holds another shapes dataset (not --attributes); choose another --out for "
                              f"--attributes or pass --force to replace it")
    clear_output(out, meta, force, attribute_owned_paths(out))


# ---------------------------------------------------------------- summary and README

def combination_key(labels: dict[str, int]) -> str:
    """The bits in ATTRIBUTES order, e.g. "101" for a large blue rectangle."""
    return "".join(str(labels[name]) for name in ATTRIBUTES)


def attribute_summary(out: Path, meta: dict, skipped: bool) -> dict:
    """out_dir, skipped, options, counts ({phase: images}), positives ({phase: {attribute: images with 1}}) and
    combinations ({phase: {bits in ATTRIBUTES order: images}})."""
    phases = meta["phases"]
    return {"out_dir": str(out), "skipped": skipped, "options": meta["options"],
            "counts": {p: len(phases[p]) for p in phases},
            "positives": {p: {name: sum(r["labels"][name] for r in phases[p]) for name in ATTRIBUTES}
                          for p in phases},
            "combinations": {p: dict(sorted(Counter(combination_key(r["labels"]) for r in phases[p]).items()))
                             for p in phases}}


def attribute_regenerate_command(options: AttributeOptions) -> str:
    command = (f"python -m datasets.make_shapes_dataset --attributes --out <this folder> --size {options.size} "
               f"--n_train {options.n_train} --n_test {options.n_test} --seed {options.seed}")
    return command + (f" --distractors {options.distractors}" if options.distractors else "")


def count_tables(summary: dict) -> list[str]:
    lines = ["| phase | images | " + " | ".join(f"{name} = 1" for name in ATTRIBUTES) + " |",
             "| --- " * (2 + len(ATTRIBUTES)) + "|"]
    for phase in PHASES:
        positives = summary["positives"][phase]
        lines.append(f"| {phase} | {summary['counts'][phase]} | "
                     + " | ".join(str(positives[name]) for name in ATTRIBUTES) + " |")
    lines += ["", "| " + " | ".join(ATTRIBUTES) + " | " + " | ".join(PHASES) + " |",
              "| --- " * (len(ATTRIBUTES) + len(PHASES)) + "|"]
    for code in range(2 ** len(ATTRIBUTES)):
        bits = format(code, f"0{len(ATTRIBUTES)}b")
        counts = [str(summary["combinations"][phase].get(bits, 0)) for phase in PHASES]
        lines.append("| " + " | ".join(bits) + " | " + " | ".join(counts) + " |")
    return lines


def distractor_readme_lines(options: AttributeOptions) -> list[str]:
    if not options.distractors:
        return []
    palettes = " or ".join(DISTRACTOR_PALETTES)
    return [(f"Every image also holds up to {options.distractors} unlabelled distractor objects ({palettes}, any "
             "kind, either size class), drawn first and at least 2 px clear of the labelled object and of each "
             "other. The labels describe only the red or blue object; the meta file lists the distractors under "
             "`distractors`."), ""]


def attribute_readme_text(options: AttributeOptions, meta: dict) -> str:
    small, large = options.area_range(False), options.area_range(True)
    lines = [
        "# Attribute shapes dataset: one object, three binary attributes",
        "",
        (f"Generated by `python -m datasets.make_shapes_dataset --attributes` (attributes format version "
         f"{ATTRIBUTES_FORMAT_VERSION}); procedural, no downloads. The same options give byte-identical files. "
         "For conditional translation with attribute labels (StarGAN, MatchGAN): `--dataset_mode attributes`."),
        "",
        "Each image holds one object on the pale smooth background of the unpaired shapes dataset. Its attributes:",
        "",
        (f"- `rectangle`: 1 for a rectangle (within +-{RECT_MAX_TILT_DEG:g} degrees of axis-aligned), 0 for an "
         "ellipse (any angle);"),
        (f"- `red`: 1 for a red object (hue {PALETTE_HUES['red']:g} +- {HUE_JITTER:g}), 0 for a blue one (hue "
         f"{PALETTE_HUES['blue']:g} +- {HUE_JITTER:g}); saturation {SATURATION_RANGE[0]:g}-{SATURATION_RANGE[1]:g}, "
         f"value {VALUE_RANGE[0]:g}-{VALUE_RANGE[1]:g} (HSV), with a mild texture;"),
        (f"- `large`: 1 for an area of {large[0]:.0f}-{large[1]:.0f} px, 0 for {small[0]:.0f}-{small[1]:.0f} px "
         f"(at {REFERENCE_SIZE} px: {LARGE_AREA[0]:g}-{LARGE_AREA[1]:g} and {SMALL_AREA[0]:g}-{SMALL_AREA[1]:g}, "
         "scaled with the square of the size)."),
        "",
        (f"Each bit is drawn independently with probability one half, so all {2 ** len(ATTRIBUTES)} combinations "
         f"are equally likely; aspect ratios (long side / short side) range from {ASPECT_RANGE[0]:g} to "
         f"{ASPECT_RANGE[1]:g} whatever the attributes."),
        "",
        *distractor_readme_lines(options),
        "## Options",
        "",
        "| option | value |",
        "| --- | --- |",
    ]
    lines += [f"| {key} | {', '.join(value) if isinstance(value, list) else value} |"
              for key, value in options.as_dict().items()]
    lines += ["", "## Contents", ""] + count_tables(attribute_summary(Path("."), meta, skipped=False))
    lines += [
        "",
        "## Layout",
        "",
        "    <phase>/<name>.png         RGB image (phase: train, test)",
        f"    <phase>_labels.csv         header filename,{','.join(ATTRIBUTES)}; one row per image, values 0/1",
        f"    {META_NAME}          options, attributes and per image its labels and the object's kind,",
        "                               palette, size class, centre, size, angle, area, bbox, colour, texture",
        "",
        *readme_tail("`bbox` is (x0, y0, x1, y1), end-exclusive, and `area` counts the pixels the object covers at "
                     "least half.", attribute_regenerate_command(options)),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- entry point

def make_attribute_shapes_dataset(out_dir: str | Path, size: int = 64, n_train: int = 2000, n_test: int = 200,
                                  seed: int = 0, force: bool = False, workers: int = 1, distractors: int = 0) -> dict:
    """Generate the attribute dataset into ``out_dir`` (skipped if it is already there) and return its summary
    (see ``attribute_summary``)."""
    options = AttributeOptions(size, n_train, n_test, seed, distractors)
    validate_attribute_options(options)
    return write_dataset(out_dir, options, ATTRIBUTE_VARIANT, force, workers)


def attribute_meta(out: Path, options: AttributeOptions, workers: int) -> dict:
    return {"generator": "datasets/make_shapes_dataset.py --attributes", "complete": True,
            "options": options.as_dict(), "attributes": ATTRIBUTE_MEANINGS, "palette_hues": PALETTE_HUES,
            "area_ranges": {"small": list(options.area_range(False)), "large": list(options.area_range(True))},
            "label_files": {phase: label_file(phase) for phase in PHASES},
            "phases": generate_attributes(out, options, workers)}


ATTRIBUTE_VARIANT = Variant(is_attributes_complete, clear_attributes_output, attribute_meta, attribute_readme_text,
                            attribute_summary)
