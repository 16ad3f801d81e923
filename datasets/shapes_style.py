"""The style-pair shapes dataset (``python -m datasets.make_shapes_dataset --style``): day (A) <-> night (B).

The two domains differ in style only; a translation must keep every object where it is, with its kind:

* day (A): the pale smooth background of the unpaired shapes dataset, flat vivid objects;
* night (B): the same kind of scene, with the background darkened and tinted blue plus per-pixel noise, and
  every object colour mapped from its day colour by a fixed rule (``night_colour``).

Each object is an ellipse or a rectangle at random (both kinds in both domains), with the geometry, placement
and object count of the unpaired generator; objects never overlap or touch. Every scene is drawn as a day
scene first, so both domains share one distribution, and a night image is its day scene mapped by

    object colour:  night = NIGHT_VALUE_SCALE * (day with its hue turned by --night_hue_shift, 60 degrees)
    background:     night = day background * NIGHT_BACKGROUND_TINT (per channel) + N(0, NIGHT_NOISE_STD)

(objects stay flat; the noise lies on the background only). The folders are the unpaired dataset's, so
train.py, test.py and evaluate.py read them unchanged; the ground truth of the test split is each testA scene
rendered at night (``testA_target``, noise from its own seeded generator) and each testB scene by day
(``testB_target``, the inverse rules, no noise), with masks equal to the input's since nothing moves.

Every image draws from its own random generator seeded by (seed, phase, domain, index), so the files are
byte-identical for the same options whatever the number of ``--workers``.
"""

from __future__ import annotations

import colorsys
import math
import multiprocessing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.make_shapes_dataset import (
    META_NAME,
    MIN_COLOUR_CONTRAST,
    PHASES,
    RECT_MAX_TILT_DEG,
    TARGET_PHASE,
    DatasetOptions,
    ShapeObject,
    Variant,
    clear_output,
    describe_object,
    draw_background,
    image_name,
    image_rng,
    instance_histogram,
    is_complete,
    paint,
    read_meta,
    readme_tail,
    save_scene,
    summarise,
    target_folder,
    validate_options,
    write_dataset,
)
from datasets.shapes_paired import place_paired_objects

STYLE_FORMAT_VERSION = 1
KINDS = ("ellipse", "rectangle")
DOMAIN_STYLES = {"A": "day", "B": "night"}
TARGET_STYLES = {"A": "night", "B": "day"}
NIGHT_HUE_SHIFT_DEG = 60.0
NIGHT_VALUE_SCALE = 0.55
NIGHT_BACKGROUND_TINT = (0.16, 0.19, 0.32)  # RGB factors: dark, bluish
NIGHT_NOISE_STD = 0.03
VIVID_SATURATION = (0.6, 1.0)
VIVID_VALUE = (0.7, 1.0)
NIGHT_MIN_CONTRAST = 0.25  # RGB distance between a night object and the night background under it
COLOUR_TRIES = 30
FLAT = "flat"  # the texture name recorded for every object
BALANCED = 0.5  # --kind_skew's default: either kind at even odds in both domains
HUE_EXAMPLE = ", e.g. red becomes a dark yellow, green a dark cyan, blue a dark magenta"   # at the default turn
BACKGROUND_RULE = (f"night = day background * {NIGHT_BACKGROUND_TINT} (R, G, B) + Gaussian noise of std "
                   f"{NIGHT_NOISE_STD:g} per pixel and channel, clipped to [0, 1]; day = night without the noise, "
                   f"divided by the same factors")


@dataclass(frozen=True)
class StyleOptions(DatasetOptions):
    """The unpaired generator's options, recorded as the style variant, plus the training split's kind skew:
    the chance that a training object of domain A is an ellipse and one of domain B a rectangle (0.5: both
    kinds alike in both domains; the test split is always drawn at 0.5), and the night colours' hue turn."""

    kind_skew: float = BALANCED
    night_hue_shift: float = NIGHT_HUE_SHIFT_DEG

    def as_dict(self) -> dict:
        skew = {} if self.kind_skew == BALANCED else {"kind_skew": self.kind_skew}
        hue = {} if self.night_hue_shift == NIGHT_HUE_SHIFT_DEG else {"night_hue_shift": self.night_hue_shift}
        return {**super().as_dict(), "format_version": STYLE_FORMAT_VERSION, "style": True, **skew, **hue}

    def ellipse_chance(self, phase: str, domain: str) -> float:
        """The chance that an object of this phase and domain is an ellipse."""
        if phase != "train":
            return BALANCED
        return self.kind_skew if domain == "A" else 1.0 - self.kind_skew


@dataclass(frozen=True)
class StyleObject:
    """One flat object of a scene: its shape, anti-aliased coverage, day colour (8-bit exact) and night colour."""

    obj: ShapeObject
    cover: np.ndarray
    day_colour: np.ndarray
    night_colour: np.ndarray


@dataclass(frozen=True)
class Scene:
    """A scene in day style: the noise-free day background and its objects in paint order."""

    background: np.ndarray
    objects: list[StyleObject]


# ---------------------------------------------------------------- style rules

def turn_hue(colour: np.ndarray, degrees: float) -> np.ndarray:
    hue, saturation, value = colorsys.rgb_to_hsv(*colour)
    return np.array(colorsys.hsv_to_rgb((hue + degrees / 360.0) % 1.0, saturation, value))


def night_colour(day: np.ndarray, hue_shift: float = NIGHT_HUE_SHIFT_DEG) -> np.ndarray:
    """The night colour of a day object colour (RGB in [0, 1])."""
    return NIGHT_VALUE_SCALE * turn_hue(np.asarray(day, dtype=float), hue_shift)


def day_colour(night: np.ndarray, hue_shift: float = NIGHT_HUE_SHIFT_DEG) -> np.ndarray:
    """The inverse of ``night_colour``."""
    return turn_hue(np.asarray(night, dtype=float) / NIGHT_VALUE_SCALE, -hue_shift)


def colour_rule(hue_shift: float) -> str:
    return (f"night = {NIGHT_VALUE_SCALE:g} * (day colour with its HSV hue turned by +{hue_shift:g} degrees); "
            f"day = the inverse (hue turned back, divided by {NIGHT_VALUE_SCALE:g})")


def night_background(day: np.ndarray) -> np.ndarray:
    """The noise-free night background of a day background (float (H, W, 3))."""
    return day * np.array(NIGHT_BACKGROUND_TINT)


def add_noise(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    return np.clip(background + rng.normal(0.0, NIGHT_NOISE_STD, background.shape), 0.0, 1.0)


# ---------------------------------------------------------------- scenes

def scene_rng(seed: int, phase: str, domain: str, index: int, target: bool = False) -> np.random.Generator:
    """The generator of one style image ("style" in the seed: its own stream); ``target`` gives the separate
    one of its ground truth's noise."""
    return image_rng(seed, f"{phase}/style{'/target' if target else ''}", domain, index)


def pick_day_colour(rng: np.random.Generator, day_under: np.ndarray, night_under: np.ndarray,
                    hue_shift: float = NIGHT_HUE_SHIFT_DEG) -> np.ndarray:
    """A vivid, 8-bit exact colour that stands out from the background under the object in both styles."""
    best, best_margin = None, -math.inf
    for _ in range(COLOUR_TRIES):
        hsv = rng.uniform(0, 1), rng.uniform(*VIVID_SATURATION), rng.uniform(*VIVID_VALUE)
        colour = np.round(np.array(colorsys.hsv_to_rgb(*hsv)) * 255) / 255
        margin = min(np.linalg.norm(colour - day_under) - MIN_COLOUR_CONTRAST,
                     np.linalg.norm(night_colour(colour, hue_shift) - night_under) - NIGHT_MIN_CONTRAST)
        if margin >= 0:
            return colour
        if margin > best_margin:
            best, best_margin = colour, margin
    return best


def draw_kinds(rng: np.random.Generator, count: int, ellipse_chance: float) -> list[str]:
    """``count`` object kinds, each an ellipse with ``ellipse_chance``."""
    if ellipse_chance == BALANCED:  # the draw of the balanced datasets, so their files stay as they were
        return [KINDS[int(k)] for k in rng.integers(len(KINDS), size=count)]
    return [KINDS[0] if u < ellipse_chance else KINDS[1] for u in rng.random(count)]


def sample_scene(rng: np.random.Generator, options: StyleOptions, ellipse_chance: float = BALANCED) -> Scene:
    """A day scene: background, object count, a random kind per object (an ellipse with ``ellipse_chance``),
    non-touching placement, colours."""
    background = draw_background(rng, options.size)
    night = night_background(background)
    count = int(rng.integers(options.min_objects, options.max_objects + 1))
    kinds = draw_kinds(rng, count, ellipse_chance)
    objects = []
    for obj, cover in place_paired_objects(rng, kinds, touching=False, options=options):
        mask = cover >= 0.5
        colour = pick_day_colour(rng, background[mask].mean(axis=0), night[mask].mean(axis=0), options.night_hue_shift)
        objects.append(StyleObject(obj, cover, colour, night_colour(colour, options.night_hue_shift)))
    return Scene(background, objects)


def object_colour(item: StyleObject, style: str) -> np.ndarray:
    return item.day_colour if style == "day" else item.night_colour


def hue_kept_colour(item: StyleObject, style: str) -> np.ndarray:
    """The colour in ``style`` of a translation that keeps the hue its input shows: the value rule applied, the hue
    turn not (night: the day colour darkened; day: the night colour brightened)."""
    if style == "night":
        return NIGHT_VALUE_SCALE * np.asarray(item.day_colour, dtype=float)
    return item.night_colour / NIGHT_VALUE_SCALE


def render(scene: Scene, style: str, noise_rng: np.random.Generator | None = None,
           colour: Callable[[StyleObject, str], np.ndarray] = object_colour) -> np.ndarray:
    """The scene in ``style`` ("day" or "night"), RGB uint8, each object painted in ``colour(object, style)``;
    night draws its noise from ``noise_rng``."""
    image = scene.background
    if style == "night":
        image = add_noise(noise_rng, night_background(image))
    for item in scene.objects:
        image = paint(image, item.cover, colour(item, style))
    return np.round(image * 255).astype(np.uint8)


# ---------------------------------------------------------------- files

def save_style_image(out: Path, folder: str, name: str, scene: Scene, style: str,
                     noise_rng: np.random.Generator | None) -> dict:
    """Write the scene in ``style`` and its masks under ``folder``; returns {image, style, objects}."""
    masks, objects = [], []
    for item in scene.objects:
        mask = item.cover >= 0.5
        masks.append(np.where(mask, 255, 0).astype(np.uint8))
        objects.append(describe_object(item.obj, mask, object_colour(item, style), FLAT))
    path = save_scene(out, folder, name, render(scene, style, noise_rng), masks, objects)
    return {"image": path, "style": style, "objects": objects}


def indexed_scene(options: StyleOptions, phase: str, domain: str, index: int) -> tuple[Scene, np.random.Generator]:
    """Scene ``index`` of a folder, and its generator, which draws the input's noise next."""
    rng = scene_rng(options.seed, phase, domain, index)
    return sample_scene(rng, options, options.ellipse_chance(phase, domain)), rng


def write_style_image(out: Path, options: StyleOptions, phase: str, domain: str, index: int) -> dict:
    """Render one scene in its domain's style (and, for the test phase, in the other style as ground truth) and
    write the images and masks; returns its meta record."""
    scene, rng = indexed_scene(options, phase, domain, index)
    name = image_name(options, index)
    # The input's noise comes after the scene in its generator, so both domains share the scene distribution.
    saved = save_style_image(out, f"{phase}{domain}", name, scene, DOMAIN_STYLES[domain], rng)
    record = {"name": name, "image": saved["image"], "style": saved["style"], "n_objects": len(saved["objects"]),
              "objects": saved["objects"]}
    if phase == TARGET_PHASE:
        target_rng = scene_rng(options.seed, phase, domain, index, target=True)
        record["target"] = save_style_image(out, target_folder(domain), name, scene, TARGET_STYLES[domain],
                                            target_rng)
    return record


def _write_task(task: tuple) -> dict:
    return write_style_image(*task)


def generate_style(out: Path, options: StyleOptions, workers: int) -> dict:
    """Write every image, mask and target; returns {phase: {domain: [record, ...]}} in index order."""
    tasks = {(phase, domain): [(out, options, phase, domain, i) for i in range(options.count(phase))]
             for phase in PHASES for domain in DOMAIN_STYLES}
    folders = [f"{phase}{domain}" for phase, domain in tasks]
    folders += [target_folder(domain) for domain in DOMAIN_STYLES]
    for folder in folders:
        (out / folder).mkdir(parents=True, exist_ok=True)
        (out / f"{folder}_seg").mkdir(parents=True, exist_ok=True)
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            records = {key: pool.map(_write_task, jobs, chunksize=32) for key, jobs in tasks.items()}
    else:
        records = {key: [write_style_image(*job) for job in jobs] for key, jobs in tasks.items()}
    return {phase: {domain: records[phase, domain] for domain in DOMAIN_STYLES} for phase in PHASES}


def clear_style_output(out: Path, meta: dict | None, force: bool) -> None:
    """Remove an earlier style dataset in ``out``; refuse to replace another shapes dataset unless forced."""
    if meta is not None and not meta.get("options", {}).get("style") and not force:
        raise FileExistsError(f"{out} holds another shapes dataset (not --style); choose another --out for "
                              f"--style or pass --force to replace it")
    clear_output(out, meta, force)


# ---------------------------------------------------------------- summary and README

def kind_counts(records: list[dict]) -> dict[str, int]:
    counts = Counter(obj["kind"] for record in records for obj in record["objects"])
    return {kind: counts[kind] for kind in KINDS}


def style_summary(out: Path, meta: dict, skipped: bool) -> dict:
    """The unpaired generator's summary plus ``kinds``: {phase: {domain: {kind: n_objects}}}."""
    phases = meta["phases"]
    return {**summarise(out, meta, skipped),
            "kinds": {p: {d: kind_counts(phases[p][d]) for d in phases[p]} for p in phases}}


def target_layout() -> dict:
    """The ground-truth folders, as listed in the meta file."""
    return {domain: {"phase": TARGET_PHASE, "images": target_folder(domain), "masks": f"{target_folder(domain)}_seg",
                     "style": TARGET_STYLES[domain]} for domain in DOMAIN_STYLES}


def style_regenerate_command(options: StyleOptions) -> str:
    return (f"python -m datasets.make_shapes_dataset --style --out <this folder> --size {options.size} "
            f"--n_train {options.n_train} --n_test {options.n_test} --seed {options.seed} "
            f"--min_objects {options.min_objects} --max_objects {options.max_objects}"
            + ("" if options.kind_skew == BALANCED else f" --kind_skew {options.kind_skew:g}")
            + ("" if options.night_hue_shift == NIGHT_HUE_SHIFT_DEG
               else f" --night_hue_shift {options.night_hue_shift:g}"))


def contents_table(meta: dict) -> list[str]:
    phases = meta["phases"]
    counts = sorted({int(n) for phase in PHASES for domain in DOMAIN_STYLES
                     for n in instance_histogram(phases[phase][domain])})
    lines = ["| phase | domain | images | masks (= objects) | ellipses | rectangles | "
             + " | ".join(f"{n} obj." for n in counts) + " |", "| --- " * (6 + len(counts)) + "|"]
    for phase in PHASES:
        for domain, style in DOMAIN_STYLES.items():
            records = phases[phase][domain]
            histogram = instance_histogram(records)
            kinds = kind_counts(records)
            cells = [str(histogram.get(str(n), 0)) for n in counts]
            lines.append(f"| {phase} | {domain} ({style}) | {len(records)} | {sum(r['n_objects'] for r in records)} "
                         f"| {kinds['ellipse']} | {kinds['rectangle']} | " + " | ".join(cells) + " |")
    return lines


def style_readme_text(options: StyleOptions, meta: dict) -> str:
    low, high = options.area_range()
    lines = [
        "# Style-pair shapes dataset: day (A) <-> night (B)",
        "",
        (f"Generated by `python -m datasets.make_shapes_dataset --style` (style format version "
         f"{STYLE_FORMAT_VERSION}); procedural, no downloads. The same options give byte-identical files. "
         "The domains differ in style only: a translation must keep every object, its place, shape and kind."),
        "",
        ("- Domain A, day: the pale smooth background of the unpaired shapes dataset; flat (untextured) objects "
         "in vivid colours."),
        ("- Domain B, night: the background darkened and tinted blue, with per-pixel noise; flat objects in the "
         "night colours of the rule below."),
        (f"- In both: {options.min_objects}-{options.max_objects} objects per image, each an ellipse (any angle) "
         f"or a rectangle (within +-{RECT_MAX_TILT_DEG:g} degrees of axis-aligned) at random; areas log-uniform "
         f"from about {low:.0f} to {high:.0f} px. Objects never overlap or touch."),
        ("- Every scene is drawn as a day scene (background, objects, colours), so both domains share one "
         "distribution; a night image is its day scene mapped by the rules."),
    ]
    if options.kind_skew != BALANCED:
        lines.append(
            f"- Kind skew {options.kind_skew:g} (`--kind_skew`): in the training split an object of domain A is an "
            f"ellipse with chance {options.kind_skew:g} and one of domain B a rectangle with the same chance, so the "
            "domains also differ in which kind is common. The test split is drawn at even odds in both domains. "
            "A translation that turns objects into the other domain's common kind loses them (kind_skew 0.5: no "
            "skew).")
    lines += [
        "",
        "## Style rules",
        "",
        (f"- Object colour: night = {NIGHT_VALUE_SCALE:g} * (day colour with its HSV hue turned by "
         f"+{options.night_hue_shift:g} degrees)"
         f"{HUE_EXAMPLE if options.night_hue_shift == NIGHT_HUE_SHIFT_DEG else ''}; "
         f"day = the inverse (hue turned back by {options.night_hue_shift:g} degrees, divided by "
         f"{NIGHT_VALUE_SCALE:g}). Day colours are picked to stand out from the background in both styles."),
        (f"- Background: night = day background * ({', '.join(f'{t:g}' for t in NIGHT_BACKGROUND_TINT)}) per "
         f"(R, G, B) channel, plus Gaussian noise of std {NIGHT_NOISE_STD:g} (0..1 scale) per pixel and channel, "
         "clipped to [0, 1]; day = night without the noise, divided by the same factors. The noise lies on the "
         "background only: objects are flat in both styles (their anti-aliased rims blend the two)."),
        "",
        "## Options",
        "",
        "| option | value |",
        "| --- | --- |",
    ]
    lines += [f"| {key} | {value} |" for key, value in options.as_dict().items()]
    lines += ["", "## Contents", ""] + contents_table(meta)
    lines += [
        "",
        "## Layout",
        "",
        "    <phase>A/<name>.png          RGB day image (phase: train, test)",
        "    <phase>A_seg/<name>_<k>.png  its k-th object mask, 8-bit grey: 255 inside, 0 outside",
        "    <phase>B/..., <phase>B_seg/...  the same for the night domain B",
        f"    {TARGET_PHASE}A_target/<name>.png       ground truth: the {TARGET_PHASE}A scene at night",
        f"    {TARGET_PHASE}A_target_seg/<name>_<k>.png  its mask k, equal to {TARGET_PHASE}A_seg/<name>_<k>.png",
        f"    {TARGET_PHASE}B_target/..., {TARGET_PHASE}B_target_seg/...  the same for B: the scene by day",
        f"    {META_NAME}            options, rules and every object's kind, centre, size, angle, area,",
        "                                 bbox, colour (as painted in that image) and mask file; each test",
        "                                 record's `target` holds the same for its ground truth",
        "",
        "## Ground truth of the test split",
        "",
        (f"Every {TARGET_PHASE} image is also rendered in the other style under the same file name: the same "
         "background scene, geometry, kinds and paint order, colours and background mapped by the rules above. "
         f"The noise of {TARGET_PHASE}A_target comes from a generator of its own (seeded by seed, phase and index), "
         f"so it differs from any input's; {TARGET_PHASE}B_target has none. Objects do not move, so target mask k "
         "equals input mask k."),
        "",
        "| ground truth | style | images | masks |",
        "| --- | --- | --- | --- |",
    ]
    for domain in DOMAIN_STYLES:
        targets = [r["target"] for r in meta["phases"][TARGET_PHASE][domain]]
        lines.append(f"| {target_folder(domain)} | {TARGET_STYLES[domain]} | {len(targets)} | "
                     f"{sum(len(t['objects']) for t in targets)} |")
    lines += [
        "",
        *readme_tail("`bbox` is (x0, y0, x1, y1) of the mask, end-exclusive; `area` counts mask pixels; `color` is "
                     "8-bit RGB. A mask is the object's anti-aliased coverage thresholded at one half.",
                     style_regenerate_command(options)),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- references

def hue_kept_references(out: Path, domain: str) -> dict[str, float] | None:
    """What a translation of test``domain`` scores that is right in everything (kinds, places, background, its
    noise) but the objects' hue turn, keeping each object's hue from its input (:func:`hue_kept_colour`): target
    PSNR and object PSNR inside the target masks, pooled over the test images. Day object hues are drawn
    uniformly and thinned only where a colour would not stand out from its background, so unpaired images show
    the turn only through that thinning: this is what the object colours cost a translator that misses it. None
    without a style dataset's ground truth."""
    from util import metrics  # imports torch: only the benchmark needs it, not the generator's start-up

    meta = read_meta(out)
    records = (meta or {}).get("phases", {}).get(TARGET_PHASE, {}).get(domain, [])
    if not (meta or {}).get("options", {}).get("style") or not records:
        return None
    options = StyleOptions(**{k: v for k, v in meta["options"].items() if k not in ("format_version", "style")})
    whole, objects = metrics.RegionError(), metrics.RegionError()
    for record in records:
        index = int(record["name"])
        scene, _ = indexed_scene(options, TARGET_PHASE, domain, index)
        noise = scene_rng(options.seed, TARGET_PHASE, domain, index, target=True)
        drawn = render(scene, TARGET_STYLES[domain], noise, hue_kept_colour)
        target = metrics.read_rgb(out / record["target"]["image"])
        masks = [metrics.read_mask(out / described["mask"]) for described in record["target"]["objects"]]
        whole += metrics.region_error(target, drawn, np.ones(target.shape[:2], dtype=bool))
        objects += metrics.region_error(target, drawn, ~metrics.background_mask(masks, target.shape[:2]))
    return {"target_psnr": whole.psnr, "object_psnr": objects.psnr}


# ---------------------------------------------------------------- entry point

def make_style_shapes_dataset(out_dir: str | Path, size: int = 64, n_train: int = 2000, n_test: int = 200,
                              seed: int = 0, min_objects: int = 1, max_objects: int = 3, force: bool = False,
                              workers: int = 1, kind_skew: float = BALANCED,
                              night_hue_shift: float = NIGHT_HUE_SHIFT_DEG) -> dict:
    """Generate the style-pair dataset into ``out_dir`` (skipped if it is already there) and return a summary:
    out_dir, skipped, options, counts, masks, instance_histogram and kinds ({phase: {domain: {kind: n}}})."""
    options = StyleOptions(size, n_train, n_test, seed, min_objects, max_objects, kind_skew, night_hue_shift)
    validate_options(options)
    if not 0.0 <= kind_skew <= 1.0:
        raise ValueError(f"--kind_skew {kind_skew:g} is not a chance; give a value from 0 to 1 (0.5: both kinds "
                         "alike in both domains, 0.9: training A mostly ellipses, training B mostly rectangles)")
    if not 0.0 <= night_hue_shift < 360.0:
        raise ValueError(f"--night_hue_shift {night_hue_shift:g} is not a hue turn; give degrees from 0 to below 360 "
                         f"(default {NIGHT_HUE_SHIFT_DEG:g}; 0: night objects keep their day hue, only darkened)")
    return write_dataset(out_dir, options, STYLE, force, workers)


def style_meta(out: Path, options: StyleOptions, workers: int) -> dict:
    return {"generator": "datasets/make_shapes_dataset.py --style", "complete": True, "options": options.as_dict(),
            "domains": DOMAIN_STYLES, "kinds": list(KINDS),
            "rules": {"object_colour": colour_rule(options.night_hue_shift), "background": BACKGROUND_RULE,
                      "night_hue_shift_deg": options.night_hue_shift, "night_value_scale": NIGHT_VALUE_SCALE,
                      "night_background_tint": list(NIGHT_BACKGROUND_TINT), "night_noise_std": NIGHT_NOISE_STD},
            "targets": target_layout(), "phases": generate_style(out, options, workers)}


STYLE = Variant(is_complete, clear_style_output, style_meta, style_readme_text, style_summary)
