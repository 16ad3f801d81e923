"""Generate the built-in "shapes" dataset: ellipses (domain A) <-> rectangles (domain B).

Every image holds a few non-overlapping objects on a pale, smooth procedural background; each object gets its
own mask file, in the folder layout train.py and test.py read :

    <out>/<phase>A/<name>.png, <out>/<phase>A_seg/<name>_<k>.png, and the same for B.

Ground truth for the test split: every test image of both domains is rendered a second time with each
object's kind swapped, into

    <out>/testA_target/<name>.png, <out>/testA_target_seg/<name>_<k>.png (and testB_target, testB_target_seg),

with the same file names as the input and mask k belonging to the swapped object k. The swapped scene keeps
the background, every object's colour and texture, centre and angle, its area and its aspect ratio (long
side / short side); only the outline changes:

    ellipse with semi-axes (a, b): area pi*a*b  ->  rectangle with half-sides (a*sqrt(pi)/2, b*sqrt(pi)/2),
                                                   area 4 * (a*sqrt(pi)/2) * (b*sqrt(pi)/2) = pi*a*b;
    rectangle with half-sides (p, q): area 4*p*q ->  ellipse with semi-axes (2p/sqrt(pi), 2q/sqrt(pi)),
                                                   area pi * (2p/sqrt(pi)) * (2q/sqrt(pi)) = 4*p*q.

So testA_target shows the A test scene as it should look in domain B (rectangles) and testB_target the B
scene as it should look in domain A (ellipses): a benchmark can judge a translation against what it should
be, not only against its input. A swapped object may reach past the image border or into a neighbour (the
corners of a rectangle stick out of its ellipse, an ellipse out of its rectangle); the border crops it,
objects are painted in mask order (a later one on top) and each target mask holds the object's visible
pixels; such objects are marked "cut" in the meta file. Rendering the targets draws no random numbers, so
the training and test inputs are the same files as in format 2.

Nothing is downloaded. The same options give byte-identical files: each image draws from its own random
generator seeded by (seed, phase, domain, index), so generation order and worker count do not matter.

    python datasets/make_shapes_dataset.py --out ./datasets/shapes
    python -m datasets.make_shapes_dataset --out ./datasets/shapes128 --size 128

``--paired`` writes the paired (label map -> image) variant instead, in the aligned layout: see
datasets/shapes_paired.py and docs/paired_data.md.

    python -m datasets.make_shapes_dataset --paired --out ./datasets/shapes_paired_64 --size 64

``--style`` writes the style-pair variant instead (day <-> night, mixed kinds, objects kept), in this layout:
see datasets/shapes_style.py.

    python -m datasets.make_shapes_dataset --style --out ./datasets/shapes_style_64 --size 64

``--attributes`` writes the attribute variant instead (one object per image labelled rectangle / red / large, for
``--dataset_mode attributes``): see datasets/shapes_attributes.py.

    python -m datasets.make_shapes_dataset --attributes --out ./datasets/shapes_attributes_64 --size 64
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import multiprocessing
import shutil
import sys
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Bump when the pictures change for the same options, so an existing dataset is not reused by mistake.
FORMAT_VERSION = 3  # 3: adds the swapped-kind ground truth of the test split
META_NAME = "shapes_meta.json"
README_NAME = "README.md"
PHASES = ("train", "test")
DOMAIN_KINDS = {"A": "ellipse", "B": "rectangle"}
TARGET_PHASE = "test"  # the phase that gets swapped-kind ground truth
SWAPPED_KINDS = {"ellipse": "rectangle", "rectangle": "ellipse"}
TARGET_RULE = ("same background, colour, texture, centre, angle, area and aspect ratio; an ellipse with "
               "semi-axes (a, b) becomes the rectangle with half-sides (a*sqrt(pi)/2, b*sqrt(pi)/2), a "
               "rectangle with half-sides (p, q) the ellipse with semi-axes (2p/sqrt(pi), 2q/sqrt(pi))")

SUPERSAMPLE = 4  # sub-pixels per pixel side for anti-aliased coverage
RECT_MAX_TILT_DEG = 12.0
ASPECT_RANGE = (1.0, 2.2)  # long side / short side, same for both domains
MAX_AREA_FRACTION = 0.10  # largest object area as a fraction of the image (for max_objects <= 3)
TOTAL_AREA_FRACTION = 0.30  # caps the largest object area at this / max_objects
AREA_SPREAD = 4.0  # largest / smallest object area
BACKGROUND_VALUE_RANGE = (0.80, 0.90)  # HSV value of the pale background
BACKGROUND_MAX_SATURATION = 0.08
MIN_COLOUR_CONTRAST = 0.35  # RGB distance (0..1 scale) between an object and the background under it
MIN_OBJECT_AREA = 12.0  # pixels; smaller objects no longer read as ellipses or rectangles
PLACEMENT_TRIES = 120
SHRINK_EVERY = 12  # after this many failed placements, shrink the object a little


@dataclass(frozen=True)
class ShapeObject:
    """One object. Geometry in pixels; pixel (row i, column j) spans [j, j+1) x [i, i+1)."""

    kind: str  # "ellipse" or "rectangle"
    center: tuple[float, float]  # (x, y)
    size: tuple[float, float]  # (width, height) along the object's own axes (ellipse: full axes)
    angle: float  # degrees, counter-clockwise as displayed, from the image's horizontal to the width axis


@dataclass(frozen=True)
class DatasetOptions:
    size: int = 64
    n_train: int = 2000
    n_test: int = 200
    seed: int = 0
    min_objects: int = 1
    max_objects: int = 3

    def as_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "size": self.size, "n_train": self.n_train,
                "n_test": self.n_test, "seed": self.seed, "min_objects": self.min_objects,
                "max_objects": self.max_objects}

    def count(self, phase: str) -> int:
        return self.n_train if phase == "train" else self.n_test

    def area_range(self) -> tuple[float, float]:
        """Smallest and largest object area in pixels (same in both domains, so size is no cue)."""
        high = min(MAX_AREA_FRACTION, TOTAL_AREA_FRACTION / self.max_objects) * self.size ** 2
        return high / AREA_SPREAD, high

    def name_width(self) -> int:
        return max(5, len(str(max(self.n_train, self.n_test, 1) - 1)))


def validate_options(options: DatasetOptions) -> None:
    """Raise ValueError naming the option and the fix."""
    if options.size < 16:
        raise ValueError(f"--size {options.size} is too small to draw recognisable shapes; use 16 or more")
    if options.n_train < 0 or options.n_test < 0:
        raise ValueError("--n_train and --n_test must be 0 or more")
    if options.seed < 0:
        raise ValueError(f"--seed {options.seed} must be 0 or more")
    if options.max_objects < 1:
        raise ValueError(f"--max_objects {options.max_objects} must be 1 or more")
    if not 0 <= options.min_objects <= options.max_objects:
        raise ValueError(f"--min_objects {options.min_objects} must be between 0 and --max_objects "
                         f"({options.max_objects})")
    if options.area_range()[0] < MIN_OBJECT_AREA:
        raise ValueError(f"with --size {options.size} and --max_objects {options.max_objects} the smallest "
                         f"objects would cover under {MIN_OBJECT_AREA:g} pixels; raise --size or lower --max_objects")


# ---------------------------------------------------------------- drawing

def image_rng(seed: int, phase: str, domain: str, index: int) -> np.random.Generator:
    """The random generator of one image, independent of every other image."""
    return np.random.default_rng([seed, zlib.crc32(phase.encode()), ord(domain), index])


def value_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Smooth noise in [-1, 1], shape (size, size, channels): a random grid with smoothstep interpolation."""
    grid = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1, channels))
    t = (np.arange(size) + 0.5) / size * cells
    i = np.floor(t).astype(int)
    f = t - i
    f = f * f * (3.0 - 2.0 * f)
    rows = grid[i] * (1 - f)[:, None, None] + grid[i + 1] * f[:, None, None]
    return rows[:, i] * (1 - f)[None, :, None] + rows[:, i + 1] * f[None, :, None]


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel centre, each (size, size)."""
    c = np.arange(size) + 0.5
    return np.meshgrid(c, c)


def draw_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A pale, nearly neutral gradient plus faint low-frequency noise and sometimes a faint wide texture; float
    (size, size, 3) in [0, 1]. Pale and plain because the paper's instance norm removes each image's mean
    colour: a generator cannot know the colour of a flat background, so strongly coloured ones would measure
    the normalisation rather than the translation (docs/shapes_benchmark.md)."""
    x, y = pixel_grid(size)
    start = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.0, BACKGROUND_MAX_SATURATION),
                                         rng.uniform(*BACKGROUND_VALUE_RANGE)))
    end = np.clip(start + rng.normal(0.0, 0.02, 3), 0.05, 0.98)
    direction = rng.uniform(0, 2 * math.pi)
    ramp = ((x - size / 2) * math.cos(direction) + (y - size / 2) * math.sin(direction)) / size + 0.5
    ramp = np.clip(ramp, 0, 1)[..., None]
    image = start * (1 - ramp) + end * ramp
    tint = value_noise(rng, size, int(rng.integers(2, 5)), 3)
    shade = value_noise(rng, size, int(rng.integers(2, 5)), 1)
    image = image + rng.uniform(0.005, 0.01) * tint + rng.uniform(0.01, 0.02) * shade
    texture = rng.choice(["none", "stripes", "blotches"])
    if texture == "stripes":
        period = rng.uniform(0.3, 0.6) * size
        angle = rng.uniform(0, math.pi)
        phase = x * math.cos(angle) + y * math.sin(angle)
        image = image + rng.uniform(0.01, 0.02) * np.sin(2 * math.pi * phase / period)[..., None]
    elif texture == "blotches":
        image = image + rng.uniform(0.01, 0.02) * value_noise(rng, size, int(rng.integers(6, 9)), 1)
    return np.clip(image, 0.0, 1.0)


def half_extents(obj: ShapeObject) -> tuple[float, float]:
    """Half width and half height of the object's axis-aligned bounding box."""
    a, b = obj.size[0] / 2, obj.size[1] / 2
    c, s = abs(math.cos(math.radians(obj.angle))), abs(math.sin(math.radians(obj.angle)))
    if obj.kind == "ellipse":
        return math.hypot(a * c, b * s), math.hypot(a * s, b * c)
    return a * c + b * s, a * s + b * c


def coverage(obj: ShapeObject, size: int) -> np.ndarray:
    """Fraction of each pixel the object covers (supersampled), float (size, size) in [0, 1]."""
    hx, hy = half_extents(obj)
    cx, cy = obj.center
    x0, x1 = max(0, math.floor(cx - hx)), min(size, math.ceil(cx + hx) + 1)
    y0, y1 = max(0, math.floor(cy - hy)), min(size, math.ceil(cy + hy) + 1)
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    xs = (np.arange(x0, x1)[:, None] + sub).ravel() - cx
    ys = (np.arange(y0, y1)[:, None] + sub).ravel() - cy
    dx, dy = xs[None, :], ys[:, None]
    theta = math.radians(obj.angle)
    # Screen y points down, so a counter-clockwise (as displayed) width axis is (cos, -sin).
    u = dx * math.cos(theta) - dy * math.sin(theta)
    v = dx * math.sin(theta) + dy * math.cos(theta)
    a, b = obj.size[0] / 2, obj.size[1] / 2
    if obj.kind == "ellipse":
        inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    else:
        inside = (np.abs(u) <= a) & (np.abs(v) <= b)
    patch = inside.reshape(y1 - y0, SUPERSAMPLE, x1 - x0, SUPERSAMPLE).mean(axis=(1, 3))
    full = np.zeros((size, size))
    full[y0:y1, x0:x1] = patch
    return full


def paint(image: np.ndarray, cover: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``image`` with ``fill`` (an RGB colour or image, 0..1) laid over it where ``cover`` (0..1 per pixel) says."""
    alpha = cover[..., None]
    return image * (1 - alpha) + fill * alpha


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by `radius` pixels (square neighbourhood)."""
    grown = mask.copy()
    for _ in range(radius):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= step[:, :-1].copy()
        step[:, :-1] |= step[:, 1:].copy()
        grown = step
    return grown


def sample_geometry(rng: np.random.Generator, kind: str, options: DatasetOptions, shrink: float) -> ShapeObject:
    """Area, aspect ratio and angle from distributions shared by both domains; position still unset."""
    low, high = options.area_range()
    area = math.exp(rng.uniform(math.log(low), math.log(high))) * shrink
    aspect = math.exp(rng.uniform(math.log(ASPECT_RANGE[0]), math.log(ASPECT_RANGE[1])))
    if kind == "ellipse":
        short = 2 * math.sqrt(area / (math.pi * aspect))
        return ShapeObject(kind, (0.0, 0.0), (short * aspect, short), float(rng.uniform(0, 180)))
    short = math.sqrt(area / aspect)
    size = (short * aspect, short) if rng.random() < 0.5 else (short, short * aspect)
    return ShapeObject(kind, (0.0, 0.0), size, float(rng.uniform(-RECT_MAX_TILT_DEG, RECT_MAX_TILT_DEG)))


def place_objects(rng: np.random.Generator, kind: str, count: int,
                  options: DatasetOptions) -> list[tuple[ShapeObject, np.ndarray]]:
    """`count` objects fully inside the image, each with a gap of free pixels around it."""
    size = options.size
    gap = max(1, round(size / 32))
    occupied = np.zeros((size, size), dtype=bool)
    placed = []
    for _ in range(count):
        for attempt in range(PLACEMENT_TRIES):
            shape = sample_geometry(rng, kind, options, shrink=0.9 ** (attempt // SHRINK_EVERY))
            hx, hy = half_extents(shape)
            if 2 * (hx + 1) >= size or 2 * (hy + 1) >= size:
                continue
            center = (float(rng.uniform(hx + 1, size - hx - 1)), float(rng.uniform(hy + 1, size - hy - 1)))
            obj = ShapeObject(kind, center, shape.size, shape.angle)
            cover = coverage(obj, size)
            support = cover > 0
            if (support & occupied).any():
                continue
            occupied |= dilate(support, gap)
            placed.append((obj, cover))
            break
        else:
            raise RuntimeError(f"could not fit {count} {kind}s into a {size}x{size} image; "
                               f"lower --max_objects ({options.max_objects}) or raise --size")
    return placed


def pick_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour that stands out from `background` (mean RGB under the object)."""
    best, best_distance = None, -1.0
    for _ in range(30):
        hsv = rng.uniform(0, 1), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0)
        colour = np.array(colorsys.hsv_to_rgb(*hsv))
        distance = float(np.linalg.norm(colour - background))
        if distance >= MIN_COLOUR_CONTRAST:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def object_fill(rng: np.random.Generator, obj: ShapeObject, colour: np.ndarray, size: int) -> tuple[np.ndarray, str]:
    """The object's colour with a mild texture, over the whole image (only its covered pixels are used)."""
    x, y = pixel_grid(size)
    texture = str(rng.choice(["noise", "stripes", "shading"]))
    fill = np.broadcast_to(colour, (size, size, 3)).copy()
    if texture == "stripes":
        period = rng.uniform(0.1, 0.2) * size
        angle = rng.uniform(0, math.pi)
        phase = x * math.cos(angle) + y * math.sin(angle)
        fill += rng.uniform(0.04, 0.08) * np.sin(2 * math.pi * phase / period)[..., None]
    elif texture == "shading":
        angle = rng.uniform(0, 2 * math.pi)
        reach = max(obj.size) / 2
        ramp = ((x - obj.center[0]) * math.cos(angle) + (y - obj.center[1]) * math.sin(angle)) / reach
        fill += rng.uniform(0.05, 0.1) * np.clip(ramp, -1, 1)[..., None]
    fill += rng.normal(0.0, rng.uniform(0.01, 0.03), (size, size, 3))
    return np.clip(fill, 0.0, 1.0), texture


@dataclass
class Layer:
    """One painted object: its shape, coverage, fill over the whole image, colour and texture name."""

    obj: ShapeObject
    cover: np.ndarray
    fill: np.ndarray
    colour: np.ndarray
    texture: str


def render_scene(options: DatasetOptions, phase: str, domain: str,
                 index: int) -> tuple[np.ndarray, np.ndarray, list[Layer]]:
    """One scene: its float background, the float image and the objects painted on it, in order."""
    rng = image_rng(options.seed, phase, domain, index)
    size = options.size
    background = draw_background(rng, size)
    image = background
    count = int(rng.integers(options.min_objects, options.max_objects + 1))
    layers = []
    for obj, cover in place_objects(rng, DOMAIN_KINDS[domain], count, options):
        mask = cover >= 0.5
        colour = pick_colour(rng, image[mask].mean(axis=0))
        fill, texture = object_fill(rng, obj, colour, size)
        image = paint(image, cover, fill)
        layers.append(Layer(obj, cover, fill, colour, texture))
    return background, image, layers


def swap_kind(obj: ShapeObject) -> ShapeObject:
    """The other kind with the same centre, angle, area and aspect ratio (the rule in the module docstring)."""
    scale = math.sqrt(math.pi) / 2 if obj.kind == "ellipse" else 2 / math.sqrt(math.pi)
    return ShapeObject(SWAPPED_KINDS[obj.kind], obj.center, (obj.size[0] * scale, obj.size[1] * scale), obj.angle)


def render_target(background: np.ndarray, layers: list[Layer],
                  size: int) -> tuple[np.ndarray, list[np.ndarray], list[dict]]:
    """The scene with every object's kind swapped: RGB uint8 image, one 0/255 mask per object (its visible
    pixels; a later object is painted on top) and each swapped object's description."""
    image = background
    swapped = [swap_kind(layer.obj) for layer in layers]
    covers = [coverage(obj, size) for obj in swapped]
    for layer, cover in zip(layers, covers):
        image = paint(image, cover, layer.fill)
    whole = [cover >= 0.5 for cover in covers]
    masks, described = [], []
    for k, (layer, obj) in enumerate(zip(layers, swapped)):
        mask = whole[k].copy()
        for later in whole[k + 1:]:
            mask &= ~later
        hx, hy = half_extents(obj)
        cx, cy = obj.center
        cut = bool(cx - hx < 0 or cy - hy < 0 or cx + hx > size or cy + hy > size or (whole[k] & ~mask).any())
        masks.append(np.where(mask, 255, 0).astype(np.uint8))
        described.append({**describe_object(obj, mask, layer.colour, layer.texture), "cut": cut})
    return np.round(image * 255).astype(np.uint8), masks, described


def in_domain_angle(kind: str, angle: float) -> float:
    """The angle closest to ``angle`` (degrees) at which the training data draw a ``kind``: ellipses take any,
    rectangles lie within RECT_MAX_TILT_DEG of upright, either side the long one."""
    if kind == "ellipse":
        return angle
    candidates = [base + min(max(angle - base, -RECT_MAX_TILT_DEG), RECT_MAX_TILT_DEG)
                  for base in (-180.0, -90.0, 0.0, 90.0, 180.0)]
    return min(candidates, key=lambda candidate: abs(candidate - angle))


def in_domain_references(out: Path, domain: str) -> dict[str, float] | None:
    """What a translator scores on test``domain`` that draws exactly what the other domain's training images
    show: every target object at the nearest angle its kind takes there (:func:`in_domain_angle`), painted with
    the object's own fill on the scene's background. Returns the benchmark's two figures for it: the mean
    target-mask IoU, and the background PSNR against the input on the pixels outside the input and target
    masks (pooled). Both fall short of a perfect score where the rule keeps an angle that domain never draws
    (a steeply rotated ellipse becomes a steeply rotated rectangle). None without ground truth."""
    from util import metrics  # imports torch: only the benchmark needs it, not the generator's start-up

    meta = read_meta(out)
    records = (meta or {}).get("phases", {}).get(TARGET_PHASE, {}).get(domain, [])
    if not records:
        return None
    options = DatasetOptions(**{k: v for k, v in meta["options"].items() if k != "format_version"})
    ious, background = [], metrics.RegionError()
    for record in records:
        background_image, _, layers = render_scene(options, TARGET_PHASE, domain, int(record["name"]))
        drawn, targets = background_image, []
        for layer, described in zip(layers, record["target"]["objects"], strict=True):
            swapped = swap_kind(layer.obj)
            obj = ShapeObject(swapped.kind, swapped.center, swapped.size, in_domain_angle(swapped.kind, swapped.angle))
            cover = coverage(obj, options.size)
            drawn = paint(drawn, cover, layer.fill)
            targets.append(metrics.read_mask(out / described["mask"]))
            ious.append(metrics.mask_iou(cover >= 0.5, targets[-1]))
        inputs = [metrics.read_mask(out / described["mask"]) for described in record["objects"]]
        region = metrics.background_mask(inputs + targets, drawn.shape[:2])
        background += metrics.region_error(metrics.read_rgb(out / record["image"]),
                                           np.round(drawn * 255).astype(np.uint8), region)
    return {"target_mask_iou": float(np.mean(ious)) if ious else 1.0, "target_background_psnr": background.psnr}


def describe_object(obj: ShapeObject, mask: np.ndarray, colour: np.ndarray, texture: str) -> dict:
    rows, cols = np.nonzero(mask)
    bbox = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1] if rows.size else None
    return {"kind": obj.kind,
            "center": [round(obj.center[0], 3), round(obj.center[1], 3)],
            "size": [round(obj.size[0], 3), round(obj.size[1], 3)],
            "angle": round(obj.angle, 3),
            "area": int(mask.sum()),
            "bbox": bbox,
            "color": [round(float(c) * 255) for c in colour],
            "texture": texture}


# ---------------------------------------------------------------- files

def image_name(options: DatasetOptions, index: int) -> str:
    return f"{index:0{options.name_width()}d}"


def save_scene(out: Path, folder: str, name: str, image: np.ndarray, masks: list[np.ndarray],
               objects: list[dict]) -> str:
    """Write an image to <folder>/<name>.png and its masks to <folder>_seg/<name>_<k>.png (named in `objects`)."""
    Image.fromarray(image, "RGB").save(out / folder / f"{name}.png")
    for k, (mask, obj) in enumerate(zip(masks, objects)):
        obj["mask"] = f"{folder}_seg/{name}_{k}.png"
        Image.fromarray(mask, "L").save(out / obj["mask"])
    return f"{folder}/{name}.png"


def write_image(out: Path, options: DatasetOptions, phase: str, domain: str, index: int) -> dict:
    """Render one image and write it and its masks (and, for the test phase, its swapped-kind ground truth);
    returns its meta record."""
    background, image, layers = render_scene(options, phase, domain, index)
    masks, objects = [], []
    for layer in layers:
        mask = layer.cover >= 0.5
        masks.append(np.where(mask, 255, 0).astype(np.uint8))
        objects.append(describe_object(layer.obj, mask, layer.colour, layer.texture))
    name = image_name(options, index)
    path = save_scene(out, f"{phase}{domain}", name, np.round(image * 255).astype(np.uint8), masks, objects)
    record = {"name": name, "image": path, "n_objects": len(objects), "objects": objects}
    if phase == TARGET_PHASE:
        target, target_masks, target_objects = render_target(background, layers, options.size)
        target_path = save_scene(out, target_folder(domain), name, target, target_masks, target_objects)
        record["target"] = {"image": target_path, "objects": target_objects}
    return record


def target_folder(domain: str) -> str:
    return f"{TARGET_PHASE}{domain}_target"


def _write_image_task(task: tuple) -> dict:
    return write_image(*task)


def owned_paths(out: Path) -> list[Path]:
    """Everything this generator writes under `out` (so only these are ever removed)."""
    folders = [out / f"{phase}{domain}{suffix}" for phase in PHASES for domain in DOMAIN_KINDS
               for suffix in ("", "_seg")]
    folders += [out / f"{target_folder(domain)}{suffix}" for domain in DOMAIN_KINDS for suffix in ("", "_seg")]
    return folders + [out / README_NAME, out / META_NAME]


def read_meta(out: Path) -> dict | None:
    try:
        return json.loads((out / META_NAME).read_text())
    except (OSError, ValueError):
        return None


def is_complete(out: Path, meta: dict | None, options: DatasetOptions) -> bool:
    """True if `out` already holds every file of a dataset generated with exactly these options."""
    if not meta or not meta.get("complete") or meta.get("options") != options.as_dict():
        return False
    try:
        for phase in PHASES:
            for domain in DOMAIN_KINDS:
                records = meta["phases"][phase][domain]
                if len(records) != options.count(phase):
                    return False
                for record in records:
                    paths = [record["image"]] + [obj["mask"] for obj in record["objects"]]
                    if phase == TARGET_PHASE:
                        target = record["target"]
                        if len(target["objects"]) != len(record["objects"]):
                            return False
                        paths += [target["image"]] + [obj["mask"] for obj in target["objects"]]
                    if not all((out / p).is_file() for p in paths):
                        return False
    except (KeyError, TypeError):
        return False
    return (out / README_NAME).is_file()


def clear_output(out: Path, meta: dict | None, force: bool, owned: list[Path] | None = None) -> None:
    """Remove an earlier shapes dataset in `out` (the files and folders `owned`, by default the unpaired
    dataset's); refuse to touch another dataset unless forced."""
    existing = [p for p in (owned_paths(out) if owned is None else owned) if p.exists()]
    if existing and meta is None and not (out / META_NAME).exists() and not force:
        names = ", ".join(p.name for p in existing)
        raise FileExistsError(f"{out} already holds {names} but no {META_NAME}, so it is not a shapes dataset; "
                              f"choose another --out or pass --force to replace those files")
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def meta_text(meta: dict) -> str:
    """Indented JSON, except that each image record takes one line (keeps the file small yet greppable).
    ``meta["phases"]`` maps each phase to its records (paired data) or to ``{domain: records}``."""
    record_lists = {}

    def stand_in(records: list, *names: str) -> str:
        placeholder = "@records " + " ".join(names) + "@"
        lines = ",".join("\n    " + json.dumps(r, separators=(",", ":")) for r in records)
        record_lists[json.dumps(placeholder)] = f"[{lines}\n   ]" if records else "[]"
        return placeholder

    phases = {phase: stand_in(value, phase) if isinstance(value, list)
              else {domain: stand_in(records, phase, domain) for domain, records in value.items()}
              for phase, value in meta.get("phases", {}).items()}
    text = json.dumps({**meta, "phases": phases} if phases else meta, indent=1)
    for placeholder, records_text in record_lists.items():
        text = text.replace(placeholder, records_text)
    return text + "\n"


def write_meta(path: Path, meta: dict) -> None:
    """Write, then rename (this file also runs as a script, without util.fileio's helper)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(meta_text(meta))
    temporary.replace(path)


def generate(out: Path, options: DatasetOptions, workers: int) -> dict:
    """Write every image and mask; returns {phase: {domain: [record, ...]}} in index order."""
    tasks = {(phase, domain): [(out, options, phase, domain, i) for i in range(options.count(phase))]
             for phase in PHASES for domain in DOMAIN_KINDS}
    for phase, domain in tasks:
        (out / f"{phase}{domain}").mkdir(parents=True, exist_ok=True)
        (out / f"{phase}{domain}_seg").mkdir(parents=True, exist_ok=True)
        if phase == TARGET_PHASE:
            (out / target_folder(domain)).mkdir(parents=True, exist_ok=True)
            (out / f"{target_folder(domain)}_seg").mkdir(parents=True, exist_ok=True)
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            records = {key: pool.map(_write_image_task, jobs, chunksize=32) for key, jobs in tasks.items()}
    else:
        records = {key: [write_image(*job) for job in jobs] for key, jobs in tasks.items()}
    return {phase: {domain: records[phase, domain] for domain in DOMAIN_KINDS} for phase in PHASES}


# ---------------------------------------------------------------- summary and README

def instance_histogram(records: list[dict]) -> dict[str, int]:
    counts = Counter(r["n_objects"] for r in records)
    return {str(n): counts[n] for n in sorted(counts)}


def summarise(out: Path, meta: dict, skipped: bool) -> dict:
    phases = meta["phases"]
    return {"out_dir": str(out), "skipped": skipped, "options": meta["options"],
            "counts": {p: {d: len(phases[p][d]) for d in phases[p]} for p in phases},
            "masks": {p: {d: sum(r["n_objects"] for r in phases[p][d]) for d in phases[p]} for p in phases},
            "instance_histogram": {p: {d: instance_histogram(phases[p][d]) for d in phases[p]} for p in phases}}


def target_layout() -> dict:
    """The ground-truth folders, as listed in the meta file."""
    return {domain: {"phase": TARGET_PHASE, "images": target_folder(domain), "masks": f"{target_folder(domain)}_seg",
                     "kind": SWAPPED_KINDS[kind], "rule": TARGET_RULE}
            for domain, kind in DOMAIN_KINDS.items()}


def regenerate_command(options: DatasetOptions) -> str:
    return (f"python -m datasets.make_shapes_dataset --out <this folder> --size {options.size} "
            f"--n_train {options.n_train} --n_test {options.n_test} --seed {options.seed} "
            f"--min_objects {options.min_objects} --max_objects {options.max_objects}")


GEOMETRY_NOTES = (
    "Geometry in the meta file is in pixels, with pixel (row i, column j) covering [j, j+1) x [i, i+1):",
    "`center` is (x, y); `size` is (width, height) along the object's own axes (full axes for ellipses);",
    "`angle` is in degrees, counter-clockwise as displayed, from the horizontal to the width axis;",
)


def readme_tail(last_geometry_line: str, command: str) -> list[str]:
    """The end every shapes README shares: the meta file's geometry conventions (closed by the variant's own
    ``last_geometry_line``) and how to regenerate the folder with ``command``."""
    return [*GEOMETRY_NOTES, last_geometry_line, "", "## Regenerate", "", "From the repository root:", "",
            f"    {command}", "", "Add `--force` to rebuild a folder that already holds this dataset.", ""]


def readme_text(options: DatasetOptions, meta: dict) -> str:
    low, high = options.area_range()
    lines = [
        "# Shapes dataset: ellipses (A) <-> rectangles (B)",
        "",
        (f"Generated by `datasets/make_shapes_dataset.py` (format version {FORMAT_VERSION}); procedural, "
         "no downloads. The same options give byte-identical files."),
        "",
        f"- Domain A: {options.min_objects}-{options.max_objects} ellipses per image, at any angle.",
        (f"- Domain B: {options.min_objects}-{options.max_objects} rectangles per image, within "
         f"+-{RECT_MAX_TILT_DEG:g} degrees of axis-aligned."),
        (f"- Both domains draw object areas from the same distribution (log-uniform, about {low:.0f} to "
         f"{high:.0f} px) and aspect ratios from {ASPECT_RANGE[0]:g} to {ASPECT_RANGE[1]:g}, so size is no cue."),
        "- Objects never overlap or touch; backgrounds are smooth gradients with low-frequency noise.",
        "",
        "## Options",
        "",
        "| option | value |",
        "| --- | --- |",
    ]
    lines += [f"| {key} | {value} |" for key, value in options.as_dict().items()]
    counts = sorted({int(n) for phase in PHASES for domain in DOMAIN_KINDS
                     for n in instance_histogram(meta["phases"][phase][domain])})
    lines += ["", "## Contents", "",
              "| phase | domain | images | masks | " + " | ".join(f"{n} obj." for n in counts) + " |",
              "| --- " * (4 + len(counts)) + "|"]
    for phase in PHASES:
        for domain in DOMAIN_KINDS:
            records = meta["phases"][phase][domain]
            histogram = instance_histogram(records)
            cells = [str(histogram.get(str(n), 0)) for n in counts]
            masks = sum(r["n_objects"] for r in records)
            lines.append(f"| {phase} | {domain} | {len(records)} | {masks} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Layout",
        "",
        "    <phase>A/<name>.png          RGB image of domain A (phase: train, test)",
        "    <phase>A_seg/<name>_<k>.png  its k-th object mask, 8-bit grey: 255 inside, 0 outside",
        "    <phase>B/..., <phase>B_seg/...  the same for domain B",
        f"    {TARGET_PHASE}A_target/<name>.png       ground truth: the {TARGET_PHASE}A scene as domain B (rectangles)",
        f"    {TARGET_PHASE}A_target_seg/<name>_<k>.png  its mask k: object k of {TARGET_PHASE}A_seg/<name>_<k>.png, swapped",
        f"    {TARGET_PHASE}B_target/..., {TARGET_PHASE}B_target_seg/...  the same for B (rectangles become ellipses)",
        f"    {META_NAME}            options and every object's kind, centre, size, angle, area, bbox,",
        "                                 colour, texture and mask file; each test record's `target` holds",
        "                                 the same for the swapped objects, plus `cut`",
        "",
        "## Ground truth of the test split",
        "",
        (f"Every {TARGET_PHASE} image of both domains is also rendered with each object's kind swapped, under "
         "the same file name"),
        "(mask k of the target is object k of the input). Kept: the background, each object's colour and texture,",
        "centre and angle, its area and its aspect ratio (long side / short side). The rule:",
        "",
        "- an ellipse with semi-axes (a, b) has area pi*a*b; it becomes the rectangle with half-sides",
        "  (a*sqrt(pi)/2, b*sqrt(pi)/2), whose area 4 * a*sqrt(pi)/2 * b*sqrt(pi)/2 is pi*a*b again;",
        "- a rectangle with half-sides (p, q) has area 4*p*q; it becomes the ellipse with semi-axes",
        "  (2p/sqrt(pi), 2q/sqrt(pi)), whose area is 4*p*q again.",
        "",
        "A rectangle's corners reach past its ellipse, and an ellipse past its rectangle's sides, so a swapped",
        "object can cross the image border or a neighbour: the border crops it, objects are painted in mask",
        "order (a later one on top), a target mask holds the object's visible pixels, and `cut` is true for",
        "such objects in the meta file. Away from the objects and their anti-aliased rims the target equals",
        "its input pixel for pixel.",
        "",
        "| ground truth | images | masks | cut objects |",
        "| --- | --- | --- | --- |",
    ]
    for domain in DOMAIN_KINDS:
        targets = [r["target"] for r in meta["phases"][TARGET_PHASE][domain]]
        lines.append(f"| {target_folder(domain)} | {len(targets)} | {sum(len(t['objects']) for t in targets)} | "
                     f"{sum(o['cut'] for t in targets for o in t['objects'])} |")
    lines += [
        "",
        *readme_tail("`bbox` is (x0, y0, x1, y1) of the mask, end-exclusive; `area` counts mask pixels. A mask is the "
                     "object's anti-aliased coverage thresholded at one half.", regenerate_command(options)),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- entry points

@dataclass(frozen=True)
class Variant:
    """How one kind of shapes dataset (plain, ``--paired``, ``--style``) is recognised, cleared, generated and
    described; :func:`write_dataset` does the rest the same way for all."""

    is_complete: Callable[[Path, dict | None, Any], bool]
    clear: Callable[[Path, dict | None, bool], None]
    meta: Callable[[Path, Any, int], dict]          # (out, options, workers) -> the complete meta, files written
    readme: Callable[[Any, dict], str]
    summary: Callable[[Path, dict, bool], dict]


def write_dataset(out_dir: str | Path, options: Any, variant: Variant, force: bool, workers: int) -> dict:
    """Generate a dataset into ``out_dir`` unless an identical complete one is there; returns its summary."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder path")
    meta = read_meta(out)
    if not force and variant.is_complete(out, meta, options):
        return variant.summary(out, meta, True)
    variant.clear(out, meta, force)
    out.mkdir(parents=True, exist_ok=True)
    # Marked incomplete first, so an interrupted run is recognised as ours and redone next time.
    write_meta(out / META_NAME, {"complete": False, "options": options.as_dict()})
    meta = variant.meta(out, options, max(1, workers))
    (out / README_NAME).write_text(variant.readme(options, meta))
    write_meta(out / META_NAME, meta)
    return variant.summary(out, meta, False)


def plain_meta(out: Path, options: DatasetOptions, workers: int) -> dict:
    return {"generator": "datasets/make_shapes_dataset.py", "complete": True, "options": options.as_dict(),
            "domains": DOMAIN_KINDS, "targets": target_layout(), "phases": generate(out, options, workers)}


PLAIN = Variant(is_complete, clear_output, plain_meta, readme_text, summarise)


def make_shapes_dataset(out_dir: str | Path, size: int = 64, n_train: int = 2000, n_test: int = 200,
                        seed: int = 0, min_objects: int = 1, max_objects: int = 3, force: bool = False,
                        workers: int = 1) -> dict:
    """Generate the dataset into `out_dir` (skipped if it is already there) and return a summary.

    The summary holds out_dir, skipped (True if an identical complete dataset was found), options,
    counts, masks and instance_histogram ({phase: {domain: {n_objects: n_images}}}).
    """
    options = DatasetOptions(size, n_train, n_test, seed, min_objects, max_objects)
    validate_options(options)
    return write_dataset(out_dir, options, PLAIN, force, workers)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = DatasetOptions()
    parser = argparse.ArgumentParser(description="Generate the built-in shapes dataset (ellipses <-> rectangles) "
                                                 "with one mask per object.")
    parser.add_argument("--out", default=None,
                        help="output folder (default: ./datasets/shapes, with --paired ./datasets/shapes_paired, "
                             "with --style ./datasets/shapes_style, with --attributes ./datasets/shapes_attributes)")
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument("--paired", action="store_true",
                         help="write the paired dataset instead (label map, instance map and image per scene, in "
                              "<phase>_label, <phase>_inst, <phase>_img; see datasets/shapes_paired.py)")
    variant.add_argument("--style", action="store_true",
                         help="write the style-pair dataset instead: day (A) <-> night (B), ellipses and "
                              "rectangles in both, in this layout (see datasets/shapes_style.py)")
    variant.add_argument("--attributes", action="store_true",
                         help="write the attribute dataset instead: one object per image with the labels "
                              "rectangle, red and large, in <phase>/ and <phase>_labels.csv (see "
                              "datasets/shapes_attributes.py); --min_objects/--max_objects do not apply")
    parser.add_argument("--size", type=int, default=defaults.size, help="image side in pixels (default: %(default)s)")
    parser.add_argument("--n_train", type=int, default=defaults.n_train, help="training images per domain")
    parser.add_argument("--n_test", type=int, default=defaults.n_test, help="test images per domain")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)")
    parser.add_argument("--min_objects", type=int, default=defaults.min_objects, help="fewest objects per image")
    parser.add_argument("--max_objects", type=int, default=defaults.max_objects, help="most objects per image")
    parser.add_argument("--kind_skew", type=float, default=None,
                        help="--style only: the chance that a training object is an ellipse in A and a "
                             "rectangle in B (default 0.5, no skew; the test split is always even), so that "
                             "translations which swap kinds show up")
    parser.add_argument("--night_hue_shift", type=float, default=None,
                        help="--style only: degrees by which a night object's hue is turned from its day hue "
                             "(default 60; 0: only darkened, a colour rule unpaired images show plainly)")
    parser.add_argument("--distractors", type=int, default=None,
                        help="--attributes only: up to this many unlabelled green or grey objects in every image beside the "
                             "labelled red or blue one (default 0), so that the labels must say which object they "
                             "describe")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes to generate with; the files do not depend on it (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="regenerate even if --out already holds this dataset")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = ("./datasets/shapes_paired" if args.paired else "./datasets/shapes_style" if args.style else
                    "./datasets/shapes_attributes" if args.attributes else "./datasets/shapes")
    return args


def variant_arguments(args: argparse.Namespace) -> dict:
    """The variant's own keyword arguments: --min_objects and --max_objects for the generators that place several
    objects (--attributes places one labelled object), --kind_skew and --night_hue_shift for --style only,
    --distractors for --attributes only."""
    for name in ("kind_skew", "night_hue_shift"):
        if getattr(args, name) is not None and not args.style:
            raise ValueError(f"--{name} applies to --style only; leave it out or add --style")
    if args.distractors is not None and not args.attributes:
        raise ValueError("--distractors applies to --attributes only; leave it out or add --attributes")
    style = {name: getattr(args, name) for name in ("kind_skew", "night_hue_shift") if getattr(args, name) is not None}
    if not args.attributes:
        return {"min_objects": args.min_objects, "max_objects": args.max_objects, **style}
    defaults = DatasetOptions()
    if (args.min_objects, args.max_objects) != (defaults.min_objects, defaults.max_objects):
        raise ValueError("--attributes draws one labelled object per image; leave out --min_objects and "
                         "--max_objects (--distractors adds unlabelled ones)")
    return {"distractors": args.distractors} if args.distractors is not None else {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variant = ("--paired" if args.paired else "--style" if args.style else
               "--attributes" if args.attributes else None)
    if variant and not __package__:  # run as a script: the variants' modules are not importable
        print(f"error: run {variant} from the repository root as "
              f"python -m datasets.make_shapes_dataset {variant} ...", file=sys.stderr)
        return 2
    # The variants import this module: not at the top.
    if args.paired:
        from datasets.shapes_paired import make_paired_shapes_dataset as make
    elif args.style:
        from datasets.shapes_style import make_style_shapes_dataset as make
    elif args.attributes:
        from datasets.shapes_attributes import make_attribute_shapes_dataset as make
    else:
        make = make_shapes_dataset
    what = ("paired shapes dataset" if args.paired else "style-pair shapes dataset" if args.style else
            "attribute shapes dataset" if args.attributes else "shapes dataset")
    try:
        summary = make(args.out, size=args.size, n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                       force=args.force, workers=args.workers, **variant_arguments(args))
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if summary["skipped"]:
        print(f"{args.out} already holds this {what} (same options); nothing to do. Pass --force to regenerate.")
        return 0
    counts = summary["counts"]
    written = [f"{p} {counts[p]} scenes" if args.paired else f"{p} {counts[p]} images" if args.attributes else
               f"{p} {counts[p]['A']} A + {counts[p]['B']} B images" for p in counts]
    print(f"Wrote the {what} to {args.out}: {', '.join(written)}; see {Path(args.out) / README_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
