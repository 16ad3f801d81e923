"""The paired shapes dataset (``python -m datasets.make_shapes_dataset --paired``): label map -> image.

Every image holds ellipses and rectangles on the pale background of the unpaired shapes dataset, written in
the aligned layout that ``--dataset_mode aligned`` reads (data/aligned_dataset.py):

    <out>/<phase>_label/<name>.png   label ids, 8-bit grey: 0 background, 1 ellipse, 2 rectangle
    <out>/<phase>_inst/<name>.png    instance ids, 8-bit grey: 0 background, 1..n one per object (paint order)
    <out>/<phase>_img/<name>.png     the RGB image

for the phases train and test. Two things make it a test of what a label-to-image model must learn:

* touching objects: in about ``TOUCH_FRACTION`` of the images (when ``--max_objects`` is 2 or more) two
  objects of one class touch: the later one overlaps the earlier one a little and is painted on top. Their
  label ids are the same, so the label map shows one blob; only the instance map tells them apart. All other
  objects keep a gap of free pixels around them.
* several styles per label map: an object's colour comes from one of ``len(PALETTES[kind])`` palettes of
  clearly different hues for its class, drawn per object.

Every image draws from its own random generator seeded by (seed, phase, index), so the files are
byte-identical for the same options whatever the number of ``--workers``.
"""

from __future__ import annotations

import colorsys
import math
import multiprocessing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.make_shapes_dataset import (
    META_NAME,
    PLACEMENT_TRIES,
    README_NAME,
    SHRINK_EVERY,
    DatasetOptions,
    ShapeObject,
    Variant,
    clear_output,
    coverage,
    dilate,
    draw_background,
    half_extents,
    image_name,
    object_fill,
    paint,
    sample_geometry,
    validate_options,
    write_dataset,
)

PAIRED_FORMAT_VERSION = 1
PHASES = ("train", "test")
KINDS = ("ellipse", "rectangle")
LABEL_IDS = {"background": 0, "ellipse": 1, "rectangle": 2}
FOLDERS = ("label", "inst", "img")
TOUCH_FRACTION = 0.3  # share of images (with room for two objects) that get one touching same-class pair
SLIDE_STEP = 0.5  # pixels the second object of a touching pair moves towards the first per step
# Palettes per class: name -> hue (0..1). Colours vary in saturation and value within each and a little in hue.
PALETTES = {"ellipse": {"red": 0.0, "green": 0.33, "blue": 0.62},
            "rectangle": {"orange": 0.08, "teal": 0.47, "purple": 0.78}}
HUE_JITTER = 0.025
SATURATION_RANGE = (0.55, 0.9)
VALUE_RANGE = (0.45, 0.8)


@dataclass(frozen=True)
class PairedOptions:
    """The unpaired generator's options plus the share of images with a touching pair."""

    base: DatasetOptions
    touch_fraction: float = TOUCH_FRACTION

    def as_dict(self) -> dict:
        return {**self.base.as_dict(), "format_version": PAIRED_FORMAT_VERSION, "paired": True,
                "touch_fraction": self.touch_fraction}


def scene_rng(seed: int, phase: str, index: int) -> np.random.Generator:
    """The random generator of one paired image (its own stream: "paired" in the seed)."""
    return np.random.default_rng([seed, *(phase + "/paired").encode(), index])


def pick_palette_colour(rng: np.random.Generator, kind: str) -> tuple[str, np.ndarray]:
    """A palette of the class and a colour from it: saturated and mid-bright, so it stands out from the pale
    background."""
    names = list(PALETTES[kind])
    name = names[int(rng.integers(len(names)))]
    hue = (PALETTES[kind][name] + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
    colour = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(*SATURATION_RANGE), rng.uniform(*VALUE_RANGE)))
    return name, colour


def _inside(obj: ShapeObject, size: int) -> bool:
    hx, hy = half_extents(obj)
    cx, cy = obj.center
    return hx + 1 <= cx <= size - hx - 1 and hy + 1 <= cy <= size - hy - 1


def _place_one(rng: np.random.Generator, kind: str, options: DatasetOptions, occupied: np.ndarray,
               attempt: int) -> tuple[ShapeObject, np.ndarray] | None:
    """One object fully inside the image, not touching ``occupied``; None if this try failed."""
    size = options.size
    shape = sample_geometry(rng, kind, options, shrink=0.9 ** (attempt // SHRINK_EVERY))
    hx, hy = half_extents(shape)
    if 2 * (hx + 1) >= size or 2 * (hy + 1) >= size:
        return None
    center = (float(rng.uniform(hx + 1, size - hx - 1)), float(rng.uniform(hy + 1, size - hy - 1)))
    obj = ShapeObject(kind, center, shape.size, shape.angle)
    cover = coverage(obj, size)
    if ((cover > 0) & occupied).any():
        return None
    return obj, cover


def _slide_to_touch(rng: np.random.Generator, first: ShapeObject, first_mask: np.ndarray, options: DatasetOptions,
                    attempt: int) -> tuple[ShapeObject, np.ndarray] | None:
    """A second object of ``first``'s kind that just overlaps ``first`` (slid towards it from a random side
    until their masks share pixels), fully inside the image; None if this try failed."""
    size = options.size
    shape = sample_geometry(rng, first.kind, options, shrink=0.9 ** (attempt // SHRINK_EVERY))
    direction = rng.uniform(0, 2 * math.pi)
    reach = sum(math.hypot(*half_extents(obj)) for obj in (first, shape)) + 1
    steps = int(reach / SLIDE_STEP)
    for step in range(steps + 1):
        distance = reach - step * SLIDE_STEP
        center = (first.center[0] + distance * math.cos(direction), first.center[1] + distance * math.sin(direction))
        obj = ShapeObject(first.kind, center, shape.size, shape.angle)
        if not _inside(obj, size):  # objects stay inside the image; try closer
            continue
        cover = coverage(obj, size)
        overlap = (cover >= 0.5) & first_mask
        if overlap.any():
            # a touch, not a merge: the first object must keep most of its pixels
            if overlap.sum() > 0.2 * first_mask.sum():
                return None
            return obj, cover
    return None


def place_paired_objects(rng: np.random.Generator, kinds: list[str], touching: bool,
                         options: DatasetOptions) -> list[tuple[ShapeObject, np.ndarray]]:
    """Objects of ``kinds`` in paint order; with ``touching`` the first two (one kind) touch, and every other
    object keeps a gap of free pixels to all others."""
    size = options.size
    gap = max(1, round(size / 32))
    occupied = np.zeros((size, size), dtype=bool)
    placed: list[tuple[ShapeObject, np.ndarray]] = []
    if touching:
        for attempt in range(PLACEMENT_TRIES):
            first = _place_one(rng, kinds[0], options, occupied, attempt)
            if first is None:
                continue
            second = _slide_to_touch(rng, first[0], first[1] >= 0.5, options, attempt)
            if second is not None:
                placed += [first, second]
                occupied |= dilate((first[1] > 0) | (second[1] > 0), gap)
                break
        else:
            raise RuntimeError(f"could not fit two touching {kinds[0]}s into a {size}x{size} image; raise --size")
    for kind in kinds[len(placed):]:
        for attempt in range(PLACEMENT_TRIES):
            one = _place_one(rng, kind, options, occupied, attempt)
            if one is not None:
                placed.append(one)
                occupied |= dilate(one[1] > 0, gap)
                break
        else:
            raise RuntimeError(f"could not fit {len(kinds)} objects into a {size}x{size} image; "
                               f"lower --max_objects ({options.max_objects}) or raise --size")
    return placed


def render_paired_scene(options: PairedOptions, phase: str,
                        index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """One scene: label map and instance map (uint8 (H, W)), RGB image (uint8 (H, W, 3)) and its record."""
    base = options.base
    rng = scene_rng(base.seed, phase, index)
    size = base.size
    image = draw_background(rng, size)
    count = int(rng.integers(base.min_objects, base.max_objects + 1))
    touching = base.max_objects >= 2 and bool(rng.random() < options.touch_fraction)
    if touching:
        count = max(count, 2)
    kinds = [KINDS[int(k)] for k in rng.integers(len(KINDS), size=count)]
    if touching:
        kinds[1] = kinds[0]
    label = np.zeros((size, size), dtype=np.uint8)
    inst = np.zeros((size, size), dtype=np.uint8)
    objects = []
    for number, (obj, cover) in enumerate(place_paired_objects(rng, kinds, touching, base), start=1):
        palette, colour = pick_palette_colour(rng, obj.kind)
        fill, texture = object_fill(rng, obj, colour, size)
        image = paint(image, cover, fill)
        mask = cover >= 0.5
        label[mask] = LABEL_IDS[obj.kind]
        inst[mask] = number
        objects.append((obj, palette, colour, texture))
    record = {"n_objects": len(objects), "touching": [[1, 2]] if touching else [],
              "objects": [describe(obj, number, inst == number, palette, colour, texture)
                          for number, (obj, palette, colour, texture) in enumerate(objects, start=1)]}
    return label, inst, np.round(image * 255).astype(np.uint8), record


def describe(obj: ShapeObject, number: int, mask: np.ndarray, palette: str, colour: np.ndarray, texture: str) -> dict:
    """An object's record: ids, geometry (as the unpaired meta file), visible area and bbox, palette and colour."""
    rows, cols = np.nonzero(mask)
    bbox = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1] if rows.size else None
    return {"instance": number, "label": LABEL_IDS[obj.kind], "kind": obj.kind,
            "center": [round(obj.center[0], 3), round(obj.center[1], 3)],
            "size": [round(obj.size[0], 3), round(obj.size[1], 3)], "angle": round(obj.angle, 3),
            "area": int(mask.sum()), "bbox": bbox, "palette": palette,
            "color": [round(float(c) * 255) for c in colour], "texture": texture}


# ---------------------------------------------------------------- files

def write_paired_image(out: Path, options: PairedOptions, phase: str, index: int) -> dict:
    """Render one scene and write its three files; returns its meta record."""
    label, inst, image, record = render_paired_scene(options, phase, index)
    name = image_name(options.base, index)
    paths = {kind: f"{phase}_{kind}/{name}.png" for kind in FOLDERS}
    Image.fromarray(label, "L").save(out / paths["label"])
    Image.fromarray(inst, "L").save(out / paths["inst"])
    Image.fromarray(image, "RGB").save(out / paths["img"])
    return {"name": name, **paths, **record}


def _write_task(task: tuple) -> dict:
    return write_paired_image(*task)


def paired_owned_paths(out: Path) -> list[Path]:
    """Everything the paired mode writes under ``out`` (so only these are ever removed)."""
    return [out / f"{phase}_{kind}" for phase in PHASES for kind in FOLDERS] + [out / README_NAME, out / META_NAME]


def is_paired_complete(out: Path, meta: dict | None, options: PairedOptions) -> bool:
    if not meta or not meta.get("complete") or meta.get("options") != options.as_dict():
        return False
    try:
        for phase in PHASES:
            records = meta["phases"][phase]
            if len(records) != options.base.count(phase):
                return False
            if not all((out / record[kind]).is_file() for record in records for kind in FOLDERS):
                return False
    except (KeyError, TypeError):
        return False
    return (out / README_NAME).is_file()


def clear_paired_output(out: Path, meta: dict | None, force: bool) -> None:
    """Remove an earlier paired shapes dataset in ``out``; refuse to touch anything else unless forced."""
    if meta is not None and not meta.get("options", {}).get("paired") and not force:
        raise FileExistsError(f"{out} holds the unpaired shapes dataset; choose another --out for --paired (or "
                              f"pass --force to replace its {META_NAME} and README)")
    clear_output(out, meta, force, paired_owned_paths(out))


def generate_paired(out: Path, options: PairedOptions, workers: int) -> dict:
    """Write every scene; returns {phase: [record, ...]} in index order."""
    tasks = {phase: [(out, options, phase, i) for i in range(options.base.count(phase))] for phase in PHASES}
    for phase in PHASES:
        for kind in FOLDERS:
            (out / f"{phase}_{kind}").mkdir(parents=True, exist_ok=True)
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            return {phase: pool.map(_write_task, jobs, chunksize=32) for phase, jobs in tasks.items()}
    return {phase: [write_paired_image(*job) for job in jobs] for phase, jobs in tasks.items()}


# ---------------------------------------------------------------- summary and README

def paired_summary(out: Path, meta: dict, skipped: bool) -> dict:
    phases = meta["phases"]
    return {"out_dir": str(out), "skipped": skipped, "options": meta["options"],
            "counts": {p: len(phases[p]) for p in phases},
            "objects": {p: sum(r["n_objects"] for r in phases[p]) for p in phases},
            "touching_images": {p: sum(bool(r["touching"]) for r in phases[p]) for p in phases},
            "palettes": {p: dict(sorted(Counter(f"{o['kind']}/{o['palette']}" for r in phases[p]
                                                for o in r["objects"]).items())) for p in phases}}


def paired_regenerate_command(options: PairedOptions) -> str:
    base = options.base
    return (f"python -m datasets.make_shapes_dataset --paired --out <this folder> --size {base.size} "
            f"--n_train {base.n_train} --n_test {base.n_test} --seed {base.seed} --min_objects {base.min_objects} "
            f"--max_objects {base.max_objects}")


def paired_readme_text(options: PairedOptions, meta: dict) -> str:
    summary = paired_summary(Path("."), meta, skipped=False)
    palettes = "; ".join(f"{kind}: {', '.join(PALETTES[kind])}" for kind in KINDS)
    lines = [
        "# Paired shapes dataset: label map -> image",
        "",
        (f"Generated by `python -m datasets.make_shapes_dataset --paired` (paired format version "
         f"{PAIRED_FORMAT_VERSION}); procedural, no downloads. The same options give byte-identical files. "
         "Read it with `--dataset_mode aligned --label_nc 3`."),
        "",
        "## Layout",
        "",
        "    <phase>_label/<name>.png  label ids, 8-bit grey: 0 background, 1 ellipse, 2 rectangle",
        "    <phase>_inst/<name>.png   instance ids, 8-bit grey: 0 background, 1..n one per object",
        "    <phase>_img/<name>.png    RGB image",
        f"    {META_NAME}         options, label ids, palettes and every object's instance id, label id,",
        "                              geometry, visible area, bbox, palette, colour; `touching` lists the",
        "                              instance ids of the touching pair",
        "",
        "Phases: train, test.",
        "",
        "## Label ids",
        "",
        "| id | class |",
        "| --- | --- |",
    ]
    lines += [f"| {value} | {name} |" for name, value in LABEL_IDS.items()]
    lines += [
        "",
        "## Contents",
        "",
        (f"- {options.base.min_objects}-{options.base.max_objects} objects per image, each an ellipse or a "
         "rectangle at random (more where a touching pair needs two), on a pale background."),
        (f"- In about {options.touch_fraction:.0%} of the images two objects of one class touch: the second "
         "overlaps the first a little and is painted on top. Both have the same label id, so the label map "
         "shows one blob; only the instance map separates them. Other objects never touch."),
        f"- Each object's colour comes from one of several palettes of its class ({palettes}).",
        "",
        "| phase | images | objects | images with a touching pair |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {p} | {summary['counts'][p]} | {summary['objects'][p]} | {summary['touching_images'][p]} |"
              for p in PHASES]
    lines += ["", "## Regenerate", "", "From the repository root:", "", f"    {paired_regenerate_command(options)}",
              "", "Add `--force` to rebuild a folder that already holds this dataset.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- entry point

def make_paired_shapes_dataset(out_dir: str | Path, size: int = 64, n_train: int = 2000, n_test: int = 200,
                               seed: int = 0, min_objects: int = 1, max_objects: int = 3,
                               touch_fraction: float = TOUCH_FRACTION, force: bool = False,
                               workers: int = 1) -> dict:
    """Generate the paired dataset into ``out_dir`` (skipped if it is already there) and return a summary:
    out_dir, skipped, options, counts, objects, touching_images and palettes ({phase: {kind/palette: n}})."""
    options = PairedOptions(DatasetOptions(size, n_train, n_test, seed, min_objects, max_objects), touch_fraction)
    validate_options(options.base)
    if not 0.0 <= touch_fraction <= 1.0:
        raise ValueError(f"touch_fraction {touch_fraction} must be between 0 and 1")
    return write_dataset(out_dir, options, PAIRED, force, workers)


def paired_meta(out: Path, options: PairedOptions, workers: int) -> dict:
    return {"generator": "datasets/make_shapes_dataset.py --paired", "complete": True, "options": options.as_dict(),
            "label_ids": LABEL_IDS, "palettes": PALETTES, "folders": list(FOLDERS),
            "phases": generate_paired(out, options, workers)}


PAIRED = Variant(is_paired_complete, clear_paired_output, paired_meta, paired_readme_text, paired_summary)
