"""Score a test.py results folder: FID/KID, domain and shape scores, background preservation, instance fidelity,
and, where the dataset has ground truth, the distance to it.

    python evaluate.py --results ./results/shapes_instagan/test_latest
    python evaluate.py --results ./results/shapes_instagan/test_latest --direction BtoA
    python evaluate.py --results ./results/run_seed0/test_latest ./results/run_seed1/test_latest   # mean +- spread

Reads, per input ``<stem>``, the input and translated images and the translated masks (one
``<stem>_<visual>_<k>.png`` per instance) that test.py writes, found through the roles in its
``visuals.json`` (``real_A_img``, ``fake_B_img``, ``fake_B_seg`` for InstaGAN), the input masks from
``<dataroot>/<phase><source>_seg`` and the real target images from ``<dataroot>/<phase><target>``.
``--dataroot``, ``--phase``, ``--ins_max`` and ``--max_instances`` default to what test.py ran with. Prints a
table and writes JSON (``--json``, default ``<results>/metrics.json``; an unchanged background gives
``background_psnr`` Infinity, as Python's json writes it; metrics that could not run are null, with the
reason under ``skipped``).

Input masks and translated masks are paired by the input mask file each translation came from (test.py names
both ``<stem>_<visual>_<k>.png`` after the mask file ``<stem>_<k>.png``). ``--match iou`` pairs them by best
total IoU instead.

Ground truth (``<dataroot>/<phase><source>_target/<stem>.png`` and ``..._target_seg/<stem>_<k>.png``, target mask
k being input object k translated; the shapes data has it): target PSNR and SSIM of the whole image, the target
PSNR the output would score with perfect objects (``true_objects_target_psnr``: the target's pixels within one
pixel of its masks pasted in, the most that keeping objects could add), PSNR inside the target masks, the
objects' colour error, the translated masks' IoU with the target masks, and the background PSNR against the input
on the pixels outside the input and target masks, each beside a reference: the input left unchanged, and
backgrounds painted in one flat colour. The shape change score is the share of the pixels
inside exactly one of an object's input and target masks (rims it loses, corners it gains) that the output shows
as the target does, object or background as judged by the output's own colours: 0 for the input itself, 1 for
the target, whatever the colours. Where the dataset's ``shapes_meta.json`` records each object's kind and its
target's (the shapes data), each object is also read out of the output image (what stands out from its
surroundings near its masks): its IoU with the target mask (object position) and whether a mask classifier
reads it as the target's kind (object kind score; util/object_kinds.py); images translated without masks are
scored too. Without ground truth these are null and
``skipped["target"]`` says why. Several ``--results`` folders (e.g. one per seed) are scored one by one and the
table adds each metric's mean +- spread (half the range).

Paired results (pix2pix, pix2pixhd: visuals.json names a ``target_image``, the real image of each input, e.g.
``{"input_image": "real_A", "output_image": "fake_B", "target_image": "real_B"}``) get their own table and JSON
keys instead (``"paired": true``; the unpaired keys above are absent), read from ``<dataroot>/<phase>_label``
(label ids), ``<phase>_inst`` (instance ids) and ``<phase>_img`` (real images, for FID/KID as above):

- ``psnr``, ``ssim``: each synthesised image against its real image (torchmetrics, data range 1), the mean over
  images (an image equal to its real one gives PSNR Infinity, so the mean is Infinity too).
- ``segmentation_miou``, ``segmentation_pixel_accuracy`` beside ``oracle_miou``, ``oracle_pixel_accuracy`` and
  ``miou_ratio`` (synthesised / oracle), pix2pixHD's protocol: a small U-Net (util/segmenter.py) trained on the
  REAL training images (``<dataroot>/train_img`` with ``train_label``; ``--segmenter_steps`` steps at
  ``--segmenter_size`` px) and cached as ``<dataroot>/.cache/segmenter.pt`` keyed by the training files and the
  settings (changed files retrain it; ``--retrain_segmenter``), or ``--segmenter PATH`` (a SegmenterNet state
  dict), segments the synthesised and the real test images; mean IoU over the classes present in the label
  maps or the predictions (confusion matrix pooled over images; per class in ``*_class_iou``) and pixel
  accuracy against the label maps. The classes are ``--label_nc``, else the run's
  ``<checkpoints_dir>/<name>/train_opt.json`` (``label_nc_from`` says which), else the largest label id + 1.
  ``segmenter_trained_now`` says whether this call trained it.
- ``touching_boundary_gradient`` beside ``touching_boundary_gradient_real``: on the pixels (both sides) where two
  different non-zero instance ids of one label id are 4-neighbours, the mean Sobel gradient magnitude of the
  grey image in [0, 1] (scaled so a sharp step of height h reads h on both sides), pooled over the pixels of
  all such images; ``touching_boundary_images`` and ``_pixels`` say how much it covered. A model that draws
  the boundary between touching same-class objects (e.g. with the instance map) scores higher.
- Styles, when the folder has ``<stem>_<output>_style<k>.png`` (pix2pixhd's ``fake_B_style1..N-1``; style 0 is
  the output itself): per input, the mean RGB colour of every object instance in each style; the colour
  distance of two styles is the per-channel mean absolute difference of those colours (0..1), averaged over
  the instances. ``style_colour_distance``: the mean over style pairs and inputs; ``style_distinct_mean`` /
  ``_min``: greedily counted styles whose distance to every style counted before exceeds ``style_threshold``
  (``--style_threshold``, default 0.1), mean and fewest over the inputs; ``style_count``: styles per input.

A paired metric that cannot run is null with the reason under ``skipped`` (``segmentation``: no label maps or
no segmenter training data; ``touching_boundary``: no label or instance maps, or no touching same-class
objects; ``styles``: no style images or no instance maps; ``fid``). Several paired ``--results`` folders give
mean +- spread as above.

Attribute results (stargan, match_gan: visuals.json's options list the model's ``attributes``) get a table and
JSON keys of their own (``"attributes"``: the names, in order). test.py writes per input ``<stem>_real_A.png`` and,
per attribute ``a``, ``<stem>_fake_<a>.png``: the input translated to its TRUE labels with ``a`` flipped. The labels
come from test.py's ``--label_file`` (``--label_file`` here), else ``<dataroot>/<phase>_labels.csv``, else
``<dataroot>/list_attr_celeba.txt``. A small CNN (util/attribute_classifier.py) trained on ALL the real training
images ``<dataroot>/train`` with every label (``train_labels.csv`` when it exists, else that label file;
``--classifier_steps`` steps at ``--classifier_size`` px) and cached as ``<dataroot>/.cache/attribute_classifier.pt``
(keyed by the images, the label file, the attributes and the settings; ``--retrain_classifier``) reads each
attribute of each image as 0 or 1:

- ``attribute_accuracy``: over every translation and EVERY attribute, the share read as its target value (the
  StarGAN / MatchGAN papers' figure); ``attribute_flip_accuracy``: the share of translations whose flipped
  attribute reads as its new value (per attribute: ``attribute_flip_accuracy_<name>``);
  ``attribute_kept_accuracy``: the share of the other attributes still read as before;
  ``attribute_vector_accuracy``: the share of translations whose whole vector reads as the target.
- references: ``real_attribute_accuracy`` (the real inputs against their labels: the ceiling; per attribute
  ``real_attribute_accuracy_<name>``), ``identity_attribute_accuracy`` and ``identity_attribute_flip_accuracy``
  (the input unchanged scored as its translation: the floor, (n - 1) / n and 0 for n attributes with a perfect
  classifier).
- ``input_l1``: the mean absolute difference of the translations and their inputs (0..1 scale): content kept.
- FID/KID of all the translations against the real images ``<dataroot>/<phase>``, as above.

Errors name the file: a test input without a label row, an attribute the label file lacks, missing
``_fake_<a>.png`` outputs. Without training images or labels the classifier's metrics are null with the reason
under ``skipped["attributes"]``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from util import attribute_classifier as ac
from util import domain_classifier as dc
from util import metrics
from util import paired_metrics as pm
from util import segmenter as sg
from util.attribute_labels import CSV_LABELS, default_label_file, read_label_file
from util.image_files import MASK_NAME, DatasetError, domain_letters, index_mask_files, list_image_files, same_name
from util.object_kinds import ObjectKindScores
from util.results_manifest import read_manifest


class EvaluationError(RuntimeError):
    """A missing or inconsistent input, described in one line with the fix."""


def find_image_dir(results_dir: str | Path, output_image: str) -> Path:
    """The folder holding test.py's images: ``<results>/images`` or ``<results>`` itself."""
    results = Path(results_dir)
    for folder in (results / "images", results):
        if folder.is_dir() and any(folder.glob(f"*_{output_image}.png")):
            return folder
    raise EvaluationError(f"no *_{output_image}.png in {results} or {results / 'images'}: pass --results the "
                          f"page folder test.py wrote (<results_dir>/<name>/<phase>_<epoch>)")


def results_manifest(results_dir: str | Path) -> dict:
    """test.py's visuals.json: the roles of the saved visuals per direction, and the options it ran with."""
    try:
        return read_manifest(results_dir)
    except ValueError as err:
        raise EvaluationError(str(err)) from None


def result_roles(results_dir: str | Path, direction: str) -> dict[str, str]:
    """Which saved visuals are the input and its translation in ``direction``."""
    all_roles = results_manifest(results_dir)["roles"]
    if direction not in all_roles:
        raise EvaluationError(f"{results_dir} holds no {direction} translations (it has: {', '.join(all_roles)}); "
                              f"pass --direction {next(iter(all_roles), 'AtoB')} or rerun test.py for {direction}")
    roles = all_roles[direction]
    missing = [role for role in ("input_image", "output_image") if role not in roles]
    if missing:
        raise EvaluationError(f"{results_dir}: visuals.json names no {missing[0]} for {direction}; the model's "
                              f"result_roles must declare input_image and output_image")
    return roles


def index_slot_files(image_dir: Path, visual: str, separator: str = "_") -> dict[str, dict[int, Path]]:
    """``<stem>_<visual><separator><k>.png`` files of the folder by stem and number k (one directory listing):
    per-instance files (``_``) or pix2pixHD's styles (``_style``)."""
    pattern = re.compile(r"^(?P<stem>.+)_" + re.escape(visual + separator) + r"(?P<k>\d+)\.png$")
    found: dict[str, dict[int, Path]] = {}
    for path in image_dir.iterdir():
        match = pattern.match(path.name)
        if match:
            found.setdefault(match["stem"], {})[int(match["k"])] = path
    return found


def read_result_pair(image_dir: Path, stem: str, fake_suffix: str,
                     real_suffix: str) -> tuple[np.ndarray, np.ndarray]:
    """The translation of ``stem`` and, at its size, the image test.py saved beside it (the input, or the real
    image of paired results)."""
    real_path = image_dir / f"{stem}{real_suffix}"
    if not real_path.is_file():
        raise EvaluationError(f"missing {real_path} beside {stem}{fake_suffix}: rerun test.py to write it")
    fake = metrics.read_rgb(image_dir / f"{stem}{fake_suffix}")
    return fake, metrics.read_rgb(real_path, fake.shape[:2])


def read_translated_masks(files: dict[int, Path], size: tuple[int, int], ins_max: int) -> dict[int, np.ndarray]:
    """Translated masks of one input by k, the number of the input mask file each one came from."""
    if len(files) > ins_max:
        raise EvaluationError(f"{len(files)} translated masks for {files[max(files)].name} but --ins_max is "
                              f"{ins_max}: pass the --ins_max that test.py ran with (or leave it out)")
    return {k: metrics.read_mask(path, size) for k, path in files.items()}


class InputMasks:
    """The input masks of each stem, as the model saw them (resized to the result size, model order)."""

    def __init__(self, image_dir: Path, dataroot: Path, folder: str, max_instances: int, ins_max: int,
                 saved_visual: str | None):
        self.image_dir = image_dir
        self.max_instances = max_instances
        self.ins_max = ins_max
        seg = dataroot / f"{folder}_seg"
        self.saved = index_slot_files(image_dir, saved_visual) if saved_visual else {}
        if not seg.is_dir() and not self.saved:
            raise EvaluationError(f"no folder {seg}: the input masks are read from <dataroot>/<phase><source>_seg; "
                                  f"check --dataroot, --phase and --direction")
        self.files = index_mask_files(seg) if seg.is_dir() else {}
        self.warned_aspect = False

    def load(self, stem: str, size: tuple[int, int]) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
        """(all input masks, the ones the model translated by mask-file number k)."""
        saved = self.saved.get(stem)
        if saved:  # test.py's own copy of the masks it translated, named by their mask file's k
            masks = {k: metrics.read_mask(saved[k], size) for k in sorted(saved)}
            return list(masks.values()), masks
        files = self.files.get(stem, [])[: self.max_instances]
        if files:
            self._check_aspect(files[0], size)
        numbers = [int(MASK_NAME.match(path.name)["k"]) for path in files]
        masks = [metrics.read_mask(path, size) for path in files]
        return masks, {numbers[index]: masks[index] for index in metrics.model_order(masks, self.ins_max)}

    def _check_aspect(self, path: Path, size: tuple[int, int]) -> None:
        from PIL import Image

        with Image.open(path) as mask:
            width, height = mask.size
        if not self.warned_aspect and abs(width / height - size[1] / size[0]) > 0.02:
            self.warned_aspect = True
            warnings.warn(f"mask {path} is {width}x{height} but the results are {size[1]}x{size[0]}: test.py "
                          f"cropped, so input masks and results may not line up; run test.py with load size = "
                          f"crop size for exact background and IoU figures", stacklevel=2)


class GroundTruth:
    """The test split's targets, when the dataset has them (``<phase><source>_target/<stem>.png`` and its masks
    ``..._target_seg/<stem>_<k>.png``, mask k being input object k translated; the shapes data writes them),
    and the scores of the outputs against them, beside two references: the input left unchanged (identity) and
    flat-colour backgrounds (floors).

    The model may have translated other masks than the dataset's (predicted by a mask predictor, or degraded on
    purpose): each mask it was given is then paired with the true input mask it overlaps most
    (``util.metrics.pair_by_iou``), and the scores judge the true objects the model would have translated
    with the dataset's masks (the ``ins_max`` largest). So an object whose mask was missing counts as not
    translated, the background is always the pixels off the true objects and their targets, and a mask that
    matches no true object is scored only through the full-image figures. With the dataset's own masks this
    changes nothing."""

    def __init__(self, dataroot: Path, folder: str, ins_max: int, kinds: ObjectKindScores | None = None):
        self.ins_max = ins_max
        self.kinds = kinds if kinds is not None and kinds.available else None
        self.images = dataroot / f"{folder}_target"
        seg = dataroot / f"{folder}_target_seg"
        self.available = self.images.is_dir() and seg.is_dir()
        self.mask_files = index_mask_files(seg) if self.available else {}
        true_seg = dataroot / f"{folder}_seg"
        self.source_files = index_mask_files(true_seg) if self.available and true_seg.is_dir() else {}
        self.model, self.identity = metrics.TargetComparison(), metrics.TargetComparison()
        self.background = metrics.RegionError()
        # The target itself as the output: below inf, since anti-aliased object rims lie outside the binary masks.
        self.target_background = metrics.RegionError()
        self.inputs: list[np.ndarray] = []
        self.regions: list[np.ndarray] = []
        self.mask_ious: list[float] = []
        self.identity_mask_ious: list[float] = []   # the input masks left unchanged, against the target masks

    def skip_reason(self) -> str:
        return (f"target metrics skipped: no ground truth {self.images} (and its _seg folder); only datasets with "
                f"known translations have it, e.g. the shapes data (python -m datasets.make_shapes_dataset)")

    def add_image(self, stem: str, real: np.ndarray, fake: np.ndarray, input_masks: list[np.ndarray],
                  kept_inputs: dict[int, np.ndarray], outputs: dict[int, np.ndarray]) -> None:
        size = fake.shape[:2]
        path = self.images / f"{stem}.png"
        if not path.is_file():
            raise EvaluationError(f"no target {path} for result {stem}: the dataset's {self.images.name} folder must "
                                  f"hold every test image; regenerate the dataset")
        target = metrics.read_rgb(path, size)
        masks = {int(MASK_NAME.match(file.name)["k"]): metrics.read_mask(file, size)
                 for file in self.mask_files.get(stem, [])}
        true_inputs = {int(MASK_NAME.match(file.name)["k"]): metrics.read_mask(file, size)
                       for file in self.source_files.get(stem, [])}
        if true_inputs:
            kept_inputs, outputs = as_true_objects(kept_inputs, outputs, true_inputs, self.ins_max)
            input_masks = list(true_inputs.values())
            if self.kinds is not None:
                self.kinds.add_image(stem, {"model": fake, "identity": real}, true_inputs, masks)
        self.model.add_image(fake, target, masks, kept_inputs)
        self.identity.add_image(real, target, masks, kept_inputs)
        region = metrics.background_mask(input_masks + list(masks.values()), size)
        self.background += metrics.region_error(real, fake, region)
        self.target_background += metrics.region_error(real, target, region)
        self.inputs.append(real)
        self.regions.append(region)
        self.mask_ious += [metrics.mask_iou(masks[k], outputs.get(k, np.zeros(size, bool)))
                           for k in kept_inputs if k in masks]
        self.identity_mask_ious += [metrics.mask_iou(masks[k], kept_inputs[k]) for k in kept_inputs if k in masks]

    def scores(self, with_masks: bool) -> dict[str, float | None]:
        identity = {f"identity_{key}": value for key, value in self.identity.scores().items()
                    if key != "true_objects_target_psnr"}   # the target's objects in the input: no reference
        floors = metrics.flat_background_floors(self.inputs, self.regions)
        kinds = self.kinds.scores() if self.kinds is not None else {}
        return {**self.model.scores(), **kinds, "target_background_psnr": self.background.psnr,
                "target_mask_iou": float(np.mean(self.mask_ious)) if with_masks and self.mask_ious else None,
                "identity_target_mask_iou": (float(np.mean(self.identity_mask_ious))
                                             if with_masks and self.identity_mask_ious else None),
                **identity, **{f"background_{key}": value for key, value in floors.items()},
                "background_target_itself": self.target_background.psnr}


def as_true_objects(kept: dict[int, np.ndarray], outputs: dict[int, np.ndarray], true_inputs: dict[int, np.ndarray],
                    ins_max: int) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """(the true objects the model translates given the dataset's masks, by their numbers k; the translations
    ``outputs`` of the masks it was given (``kept``, by its own numbers), renumbered as the true object each
    given mask overlaps most)."""
    numbers, masks = list(true_inputs), list(true_inputs.values())
    given = list(kept)
    renumber = {given[i]: numbers[j] for i, j, _ in metrics.pair_by_iou(list(kept.values()), masks)}
    return ({numbers[index]: masks[index] for index in metrics.model_order(masks, ins_max)},
            {renumber[k]: mask for k, mask in outputs.items() if k in renumber})


TARGET_KEYS = ("target_psnr", "true_objects_target_psnr", "target_ssim", "object_psnr", "object_colour_error",
               "shape_change_score",
               "object_kind_score", "object_position_iou", "identity_object_kind_score",
               "identity_object_position_iou", "object_kind_classifier_val_accuracy",
               "target_background_psnr",
               "target_mask_iou", "identity_target_mask_iou", "identity_target_psnr", "identity_target_ssim", "identity_object_psnr",
               "identity_object_colour_error", "identity_shape_change_score", "background_floor_dataset_colour",
               "background_floor_image_colour", "background_target_itself")


def _same_size(images: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    from PIL import Image

    return [image if image.shape[:2] == size else
            np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BICUBIC)) for image in images]


def _fid_kid(fakes: list[np.ndarray], real_paths: list[Path], feature_extractor: nn.Module | None,
             inception_weights: str | None, kid_subset_size: int) -> dict[str, float]:
    if feature_extractor is None:
        feature_extractor = metrics.inception_feature_extractor(metrics.find_inception_weights(inception_weights))
    size = fakes[0].shape[:2]
    reals = [metrics.read_rgb(path, size) for path in real_paths]
    return metrics.fid_and_kid(metrics.to_uint8_batch(_same_size(fakes, size)), metrics.to_uint8_batch(reals),
                               feature_extractor, kid_subset_size=kid_subset_size)


def _classifier_score(kind: str, inputs: list, dataroot: Path, target_label: int, settings: dc.ClassifierSettings,
                      retrain: bool, log: Callable[[str], None]) -> tuple[float, dc.ClassifierInfo]:
    net, info = dc.load_or_train(dataroot, kind, settings, retrain=retrain, log=log)
    side = settings.input_side(kind)
    if kind == "image":
        batch = dc.stack_inputs([dc.image_input(path, side) for path in inputs], kind, side)
    else:
        batch = dc.stack_inputs([dc.mask_input(mask, side) for mask in inputs], kind, side)
    return metrics.domain_score(net, batch, target_label), info


def evaluate_results(results_dir: str | Path, dataroot: str | Path, phase: str = "test", direction: str = "AtoB",
                     *, ins_max: int = 4, max_instances: int = 20, match: str = "slot",
                     inception_weights: str | None = None, feature_extractor: nn.Module | None = None,
                     fid: bool = True, domain_score: bool = True, shape_score: bool = True,
                     classifier_settings: dc.ClassifierSettings | None = None, retrain_classifier: bool = False,
                     kid_subset_size: int = 1000, log: Callable[[str], None] = print) -> dict[str, Any]:
    """All metrics of one results folder as a flat dict (see the module docstring for the inputs); paired
    results (a ``target_image`` role) are scored by ``evaluate_paired_results`` and a conditional model's (test.py
    recorded its ``attributes``) by ``evaluate_attribute_results``, with their default settings."""
    if is_attribute_results(results_dir):
        return evaluate_attribute_results(results_dir, dataroot, phase, retrain_classifier=retrain_classifier,
                                          inception_weights=inception_weights, feature_extractor=feature_extractor,
                                          fid=fid, kid_subset_size=kid_subset_size, log=log)
    if is_paired(results_dir, direction):
        return evaluate_paired_results(results_dir, dataroot, phase, direction, inception_weights=inception_weights,
                                       feature_extractor=feature_extractor, fid=fid, kid_subset_size=kid_subset_size,
                                       log=log)
    start = time.perf_counter()
    dataroot = Path(dataroot)
    roles = result_roles(results_dir, direction)
    fake_suffix, real_suffix = f"_{roles['output_image']}.png", f"_{roles['input_image']}.png"
    image_dir = find_image_dir(results_dir, roles["output_image"])
    source, target = domain_letters(argparse.Namespace(direction=direction))
    input_masks = InputMasks(image_dir, dataroot, f"{phase}{source}", max_instances, ins_max, roles.get("input_masks"))
    stems = sorted(path.name[: -len(fake_suffix)] for path in image_dir.glob(f"*{fake_suffix}"))
    translated_files = index_slot_files(image_dir, roles["output_masks"]) if "output_masks" in roles else {}
    background, fidelity = metrics.RegionError(), metrics.InstanceFidelity()
    settings = classifier_settings or dc.ClassifierSettings()
    kinds = ObjectKindScores(dataroot, phase, source, settings, log) if shape_score else None
    truth = GroundTruth(dataroot, f"{phase}{source}", ins_max, kinds)
    fakes, fake_masks, per_image = [], [], []
    for stem in stems:
        fake, real = read_result_pair(image_dir, stem, fake_suffix, real_suffix)
        size = fake.shape[:2]
        all_inputs, kept_inputs = input_masks.load(stem, size)
        outputs = read_translated_masks(translated_files.get(stem, {}), size, ins_max)
        error = metrics.background_error(real, fake, all_inputs + list(outputs.values()))
        background += error
        if truth.available:
            truth.add_image(stem, real, fake, all_inputs, kept_inputs, outputs)
        ious_before = len(fidelity.ious)
        fidelity.add_image(kept_inputs, outputs, match)
        fakes.append(fake)
        fake_masks.extend(outputs.values())
        per_image.append({"stem": stem, "background_l1": error.l1, "background_psnr": error.psnr,
                          "input_instances": len(kept_inputs),
                          "translated_instances": sum(bool(m.any()) for m in outputs.values()),
                          "ious": fidelity.ious[ious_before:]})
    result: dict[str, Any] = {
        "results": str(image_dir), "dataroot": str(dataroot), "phase": phase, "direction": direction,
        "ins_max": ins_max, "match": match, "num_images": len(stems),
        "background_l1": background.l1, "background_psnr": background.psnr,
        "mean_iou": fidelity.mean_iou, "instance_count_kept": fidelity.count_kept_fraction,
        "empty_translated_masks": fidelity.empty_translated, "num_input_instances": len(fidelity.ious),
        "fid": None, "kid_mean": None, "kid_std": None,
        "domain_score": None, "domain_classifier_val_accuracy": None,
        "shape_score": None, "shape_classifier_val_accuracy": None, "skipped": {},
        **dict.fromkeys(TARGET_KEYS),
    }
    if truth.available:
        result.update(truth.scores(with_masks="output_masks" in roles))
    else:
        result["skipped"]["target"] = truth.skip_reason()
        log(truth.skip_reason())
    if fid:
        try:
            real_paths = list_image_files(dataroot / f"{phase}{target}")
            result.update(_fid_kid(fakes, real_paths, feature_extractor, inception_weights, kid_subset_size))
        except (metrics.InceptionWeightsMissing, DatasetError, ValueError) as err:
            result["skipped"]["fid"] = str(err)
            log(str(err))
    target_label = 1 if target == "B" else 0
    fake_paths = [image_dir / f"{stem}{fake_suffix}" for stem in stems]
    for enabled, kind, inputs, key in ((domain_score, "image", fake_paths, "domain"),
                                       (shape_score, "mask", fake_masks, "shape")):
        if not enabled:
            continue
        try:
            score, info = _classifier_score(kind, inputs, dataroot, target_label, settings, retrain_classifier, log)
        except (DatasetError, FileNotFoundError, ValueError) as err:
            result["skipped"][f"{key}_score"] = f"{key} score skipped: {err}"
            log(result["skipped"][f"{key}_score"])
            continue
        result[f"{key}_score"] = score
        result[f"{key}_classifier_val_accuracy"] = info.val_accuracy
        result[f"{key}_classifier_trained_now"] = info.trained
    result["seconds"] = time.perf_counter() - start
    result["per_image"] = per_image
    return result


# ---------------------------------------------------------------------------------------------- paired results
PAIRED_KEYS = ("psnr", "ssim", "segmentation_miou", "segmentation_pixel_accuracy", "oracle_miou",
               "oracle_pixel_accuracy", "miou_ratio", "touching_boundary_gradient", "touching_boundary_gradient_real",
               "touching_boundary_images", "touching_boundary_pixels", "style_count", "style_colour_distance",
               "style_distinct_mean", "style_distinct_min", "style_inputs", "style_threshold")


def is_paired(results_dir: str | Path, direction: str = "AtoB") -> bool:
    """Whether the results are paired (the model names a ``target_image``, the real image of each input)."""
    return "target_image" in results_manifest(results_dir)["roles"].get(direction, {})


class IdMaps:
    """The label or instance maps of a split (``<dataroot>/<phase>_label`` / ``_inst``) by stem."""

    def __init__(self, folder: Path, kind: str):
        self.folder, self.kind = folder, kind
        self.available = folder.is_dir()
        self.files = {path.stem: path for path in list_image_files(folder)} if self.available else {}
        self.warned_aspect = False

    def load(self, stem: str, size: tuple[int, int]) -> np.ndarray:
        path = self.files.get(stem)
        if path is None:
            raise EvaluationError(f"no {self.kind} {self.folder / stem}.png for result {stem}: the folder must hold "
                                  f"every test input; check --dataroot and --phase")
        ids = sg.read_ids(path)
        height, width = ids.shape
        if not self.warned_aspect and abs(width / height - size[1] / size[0]) > 0.02:
            self.warned_aspect = True
            warnings.warn(f"{self.kind} {path} is {width}x{height} but the results are {size[1]}x{size[0]}: test.py "
                          f"cropped, so maps and results may not line up; run test.py with load size = crop size",
                          stacklevel=2)
        return sg.resize_ids(ids, size)


def _label_nc_of_data(dataroot: Path, phase: str) -> int:
    highest = -1
    for folder in {dataroot / "train_label", dataroot / f"{phase}_label"}:
        if folder.is_dir():
            for path in list_image_files(folder):
                highest = max(highest, int(sg.read_ids(path).max()))
    if highest < 0:
        raise FileNotFoundError(f"no label maps in {dataroot / 'train_label'} or {dataroot / f'{phase}_label'}")
    return highest + 1


def resolve_label_nc(label_nc: int | None, results_dir: str | Path, checkpoints_dir: str | Path | None,
                     dataroot: Path, phase: str) -> tuple[int, str]:
    """(number of label classes, where it came from): ``label_nc`` when given, else the manifest's options,
    else the run's ``<checkpoints_dir>/<name>/train_opt.json`` (name: the folder above the results page),
    else the largest label id of the train and test label maps + 1."""
    if label_nc is not None:
        return int(label_nc), "--label_nc"
    recorded = results_manifest(results_dir)["options"].get("label_nc")
    if recorded is not None:
        return int(recorded), "visuals.json"
    page = Path(results_dir).resolve()
    page = page.parent if page.name == "images" else page
    train_opt = Path(checkpoints_dir or "./checkpoints") / page.parent.name / "train_opt.json"
    if train_opt.is_file():
        try:
            value = json.loads(train_opt.read_text()).get("label_nc")
        except ValueError:
            value = None
        if value is not None:
            return int(value), str(train_opt)
    return _label_nc_of_data(dataroot, phase), "label maps (largest id + 1)"


def _segmenter(dataroot: Path, label_nc: int, path: str | None, settings: sg.SegmenterSettings, retrain: bool,
               log: Callable[[str], None]) -> tuple[sg.SegmenterNet, sg.SegmenterInfo]:
    if label_nc <= 0:
        raise ValueError(f"--label_nc {label_nc}: the label maps are RGB images, not class ids; there is "
                         f"nothing to compare a segmentation with")
    if path:
        return sg.load_segmenter_file(path, label_nc, settings)
    return sg.load_or_train(dataroot, label_nc, settings, retrain=retrain, log=log)


def evaluate_paired_results(results_dir: str | Path, dataroot: str | Path, phase: str = "test",
                            direction: str = "AtoB", *, label_nc: int | None = None,
                            checkpoints_dir: str | Path | None = None, segmenter: str | None = None,
                            segmenter_settings: sg.SegmenterSettings | None = None, retrain_segmenter: bool = False,
                            segmentation: bool = True, style_threshold: float = pm.STYLE_THRESHOLD,
                            inception_weights: str | None = None, feature_extractor: nn.Module | None = None,
                            fid: bool = True, kid_subset_size: int = 1000,
                            log: Callable[[str], None] = print) -> dict[str, Any]:
    """All metrics of one paired results folder (its roles name a ``target_image``) as a flat dict: PSNR/SSIM
    against the real images, segmentation mIoU beside the oracle's, the gradient on touching same-class
    boundaries and the spread of the styles (see the module docstring)."""
    start = time.perf_counter()
    dataroot = Path(dataroot)
    roles = result_roles(results_dir, direction)
    if "target_image" not in roles:
        raise EvaluationError(f"{results_dir}: visuals.json names no target_image for {direction}; paired "
                              f"results (pix2pix, pix2pixhd) declare it")
    output = roles["output_image"]
    fake_suffix, real_suffix = f"_{output}.png", f"_{roles['target_image']}.png"
    image_dir = find_image_dir(results_dir, output)
    stems = sorted(path.name[: -len(fake_suffix)] for path in image_dir.glob(f"*{fake_suffix}"))
    styles = index_slot_files(image_dir, output, "_style")
    labels = IdMaps(dataroot / f"{phase}_label", "label map")
    instances = IdMaps(dataroot / f"{phase}_inst", "instance map")
    skipped: dict[str, str] = {}
    result: dict[str, Any] = {"results": str(image_dir), "dataroot": str(dataroot), "phase": phase,
                              "direction": direction, "paired": True, "num_images": len(stems), "label_nc": None,
                              "label_nc_from": None, "fid": None, "kid_mean": None, "kid_std": None,
                              **dict.fromkeys(PAIRED_KEYS), "skipped": skipped}
    net = info = None
    if not segmentation:
        skipped["segmentation"] = "segmentation skipped: --no_segmentation"
    elif not labels.available:
        skipped["segmentation"] = (f"segmentation skipped: no label maps {labels.folder} to compare the "
                                   f"segmentation with; check --dataroot and --phase")
    else:
        try:
            result["label_nc"], result["label_nc_from"] = resolve_label_nc(label_nc, results_dir, checkpoints_dir,
                                                                           dataroot, phase)
            net, info = _segmenter(dataroot, result["label_nc"], segmenter,
                                   segmenter_settings or sg.SegmenterSettings(), retrain_segmenter, log)
        except (DatasetError, FileNotFoundError, ValueError) as err:
            skipped["segmentation"] = f"segmentation skipped: {err}"
    classes = info.num_classes if info else 1
    fake_seg, real_seg = pm.SegmentationScore(classes), pm.SegmentationScore(classes)
    boundary, spread = pm.BoundaryGradient(), pm.StyleSpread(style_threshold)
    fakes, psnrs, ssims, per_image = [], [], [], []
    for stem in stems:
        fake, real = read_result_pair(image_dir, stem, fake_suffix, real_suffix)
        size = fake.shape[:2]
        psnr, ssim = pm.image_psnr_ssim(fake, real)
        label = labels.load(stem, size) if labels.available else None
        inst = instances.load(stem, size) if instances.available else None
        if net is not None:
            if label.min() < 0 or label.max() >= classes:
                raise EvaluationError(f"label map {labels.files[stem]} holds id {int(label.max())} but there are "
                                      f"{classes} classes ({result['label_nc_from']}); pass --label_nc")
            fake_seg.add(label, sg.predict(net, fake, info.side))
            real_seg.add(label, sg.predict(net, real, info.side))
        pixels = boundary.add(fake, real, label, inst) if label is not None and inst is not None else None
        if stem in styles and inst is not None:
            spread.add([fake] + [metrics.read_rgb(styles[stem][k], size) for k in sorted(styles[stem])], inst)
        fakes.append(fake)
        psnrs.append(psnr)
        ssims.append(ssim)
        per_image.append({"stem": stem, "psnr": psnr, "ssim": ssim, "touching_boundary_pixels": pixels})
    if stems:
        result.update(psnr=float(np.mean(psnrs)), ssim=float(np.mean(ssims)))
    if net is not None:
        result.update(segmentation_miou=fake_seg.mean_iou, segmentation_pixel_accuracy=fake_seg.pixel_accuracy,
                      oracle_miou=real_seg.mean_iou, oracle_pixel_accuracy=real_seg.pixel_accuracy,
                      segmentation_class_iou=fake_seg.class_iou(), oracle_class_iou=real_seg.class_iou(),
                      segmenter=info.source, segmenter_trained_now=info.trained,
                      segmenter_train_images=info.train_images)
        if real_seg.mean_iou > 0:
            result["miou_ratio"] = fake_seg.mean_iou / real_seg.mean_iou
        if real_seg.mean_iou < 0.5:
            log(f"warning: the segmenter reaches only {real_seg.mean_iou:.3f} mIoU on the real test images; "
                f"its scores say little (more --segmenter_steps, or --segmenter with a better net)")
    if not (labels.available and instances.available):
        missing = labels.folder if not labels.available else instances.folder
        skipped["touching_boundary"] = (f"touching boundary gradient skipped: no {missing}; it needs the label "
                                        f"and instance maps of the test split")
    else:
        result.update(touching_boundary_images=boundary.images, touching_boundary_pixels=boundary.pixels)
        if boundary.pixels:
            result.update(touching_boundary_gradient=boundary.fake, touching_boundary_gradient_real=boundary.real)
        else:
            skipped["touching_boundary"] = ("touching boundary gradient skipped: no test image has two touching "
                                            "instances of one label")
    if not styles:
        skipped["styles"] = (f"style metrics skipped: no <stem>_{output}_style<k>.png images (pix2pixhd writes "
                             f"them with --instance_feat, a cluster file and --n_styles 2 or more)")
    elif not instances.available:
        skipped["styles"] = (f"style metrics skipped: no instance maps {instances.folder}; the colours are "
                             f"compared per object instance")
    else:
        result.update(spread.scores())
        if not result["style_inputs"]:
            skipped["styles"] = "style metrics skipped: no input with styles has an instance in its instance map"
    if fid:
        try:
            real_paths = list_image_files(dataroot / f"{phase}_img")
            result.update(_fid_kid(fakes, real_paths, feature_extractor, inception_weights, kid_subset_size))
        except (metrics.InceptionWeightsMissing, DatasetError, ValueError) as err:
            skipped["fid"] = str(err)
    for reason in skipped.values():
        log(reason)
    result["seconds"] = time.perf_counter() - start
    result["per_image"] = per_image
    return result


# ---------------------------------------------------------------------------------------------- attribute results
ATTRIBUTE_INPUT = "real_A"            # test.py's visual names for conditional models: the input (unless the roles
ATTRIBUTE_OUTPUT = "fake_{name}"      # name another), and the input translated to its true labels, ``name`` flipped
FLIP_PREFIX = "attribute_flip_accuracy_"
ATTRIBUTE_KEYS = ("attribute_accuracy", "attribute_flip_accuracy", "attribute_kept_accuracy",
                  "attribute_vector_accuracy", "real_attribute_accuracy", "identity_attribute_accuracy",
                  "identity_attribute_flip_accuracy", "input_l1", "attribute_classifier",
                  "attribute_classifier_trained_now", "attribute_classifier_train_images",
                  "attribute_classifier_seconds")


def is_attribute_results(results_dir: str | Path) -> bool:
    """Whether the results are a conditional model's (stargan, match_gan): test.py recorded the attributes, one
    ``fake_<name>`` translation per attribute."""
    return bool(results_manifest(results_dir)["options"].get("attributes"))


def attribute_label_file(dataroot: Path, phase: str, label_file: str | Path | None) -> Path:
    """The label file of a split: ``label_file`` when given (test.py's ``--label_file``), else what
    ``--dataset_mode attributes`` reads by default (``<dataroot>/<phase>_labels.csv``, else
    ``<dataroot>/list_attr_celeba.txt``)."""
    if label_file:
        path = Path(label_file)
        if not path.is_file():
            raise DatasetError(f"label file {path} does not exist (test.py's --label_file); pass --label_file with "
                               f"the labels of the images")
        return path
    path = default_label_file(dataroot, phase)
    if not path.is_file():
        raise DatasetError(f"no label file: neither {dataroot / CSV_LABELS.format(phase=phase)} nor {path} exists; "
                           f"put the labels there or pass --label_file")
    return path


def attribute_labels(path: Path, attributes: list[str]) -> dict[str, np.ndarray]:
    """0/1 labels (int64, ``attributes`` order) by image stem (``same_name``) of a label file; EvaluationError
    when it lacks one of the attributes."""
    table = read_label_file(path)
    missing = [name for name in attributes if name not in table.attribute_names]
    if missing:
        raise EvaluationError(f"the results translate attribute(s) {', '.join(missing)} but label file {path} has "
                              f"no such column (it has {', '.join(table.attribute_names)}); pass --label_file with "
                              f"the labels the model was trained on")
    columns = [table.attribute_names.index(name) for name in attributes]
    return {stem: np.array([values[c] for c in columns], dtype=np.int64) for stem, values in table.labels.items()}


def attribute_result_files(results_dir: str | Path, attributes: list[str],
                           input_visual: str = ATTRIBUTE_INPUT) -> tuple[Path, list[str]]:
    """(the folder of test.py's images, the stems of the inputs): every input ``<stem>_<input_visual>.png`` must
    have its ``<stem>_fake_<name>.png`` for every attribute."""
    results = Path(results_dir)
    suffix = f"_{input_visual}.png"
    folder = next((folder for folder in (results / "images", results)
                   if folder.is_dir() and any(folder.glob(f"*{suffix}"))), None)
    if folder is None:
        raise EvaluationError(f"no *{suffix} inputs in {results} or {results / 'images'}: pass --results the page "
                              f"folder test.py wrote (<results_dir>/<name>/<phase>_<epoch>)")
    stems = sorted(path.name[: -len(suffix)] for path in folder.glob(f"*{suffix}"))
    expected = [folder / f"{stem}_{ATTRIBUTE_OUTPUT.format(name=name)}.png" for stem in stems for name in attributes]
    missing = [path for path in expected if not path.is_file()]
    if len(missing) == len(expected):
        raise EvaluationError(f"no translations in {folder}: a conditional model's test.py run writes "
                              f"<stem>_{ATTRIBUTE_OUTPUT.format(name='<attribute>')}.png for each attribute "
                              f"({', '.join(attributes)}); rerun test.py with the model (stargan, match_gan)")
    if missing:
        raise EvaluationError(f"missing {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                              + "; rerun test.py to write every input's translations")
    return folder, stems


def attribute_training_set(dataroot: Path, label_file: str | Path | None,
                           attributes: list[str]) -> tuple[list[Path], np.ndarray, Path]:
    """(the real training images ``<dataroot>/train`` that have a label row, their labels, the label file): what
    the attribute classifier learns from, every label whatever fraction a model was trained with. The labels are
    ``<dataroot>/train_labels.csv`` when it exists (a ``label_file`` given for the test split, e.g. its
    ``test_labels.csv``, would mislabel training images of the same names), else ``label_file``, else
    ``<dataroot>/list_attr_celeba.txt``."""
    split_csv = dataroot / CSV_LABELS.format(phase="train")
    path = split_csv if split_csv.is_file() else attribute_label_file(dataroot, "train", label_file)
    labels = attribute_labels(path, attributes)
    images = [image for image in list_image_files(dataroot / "train") if same_name(image.stem) in labels]
    if not images:
        raise DatasetError(f"no image in {dataroot / 'train'} has a row in label file {path}; the attribute "
                           f"classifier learns from the labelled training images")
    return images, np.stack([labels[same_name(image.stem)] for image in images]), path


def attribute_scores(true: np.ndarray, read: np.ndarray, names: list[str], prefix: str = "") -> dict[str, float]:
    """Scores of translations read by the classifier: ``true`` (N, A) the inputs' labels, ``read`` (N, A, A) the
    attributes read off the translation of input n with attribute j flipped (``read[n, j]``). Keys (``prefix``
    first): attribute_accuracy (every attribute read as its target), attribute_flip_accuracy (the flipped
    one read as its new value; per attribute as attribute_flip_accuracy_<name>), attribute_kept_accuracy (the
    others read as before; None with one attribute), attribute_vector_accuracy (the whole target read)."""
    flipped = np.eye(true.shape[1], dtype=bool)
    targets = np.where(flipped, 1 - true[:, None, :], true[:, None, :])   # [n, j]: true[n] with j flipped
    hits = read == targets
    kept = hits[:, ~flipped]
    return {f"{prefix}attribute_accuracy": float(hits.mean()),
            f"{prefix}attribute_flip_accuracy": float(hits[:, flipped].mean()),
            f"{prefix}attribute_kept_accuracy": float(kept.mean()) if kept.size else None,
            f"{prefix}attribute_vector_accuracy": float(hits.all(-1).mean()),
            **{f"{prefix}{FLIP_PREFIX}{name}": float(hits[:, j, j].mean()) for j, name in enumerate(names)}}


def read_attribute_results(image_dir: Path, stems: list[str], names: list[str],
                           input_visual: str) -> tuple[list[np.ndarray], list[list[np.ndarray]], np.ndarray]:
    """(the inputs, their translations per attribute, the (N, A) L1 distances of translation and input on the
    0..1 scale, the input resized to the translation where they differ)."""
    reals, fakes, l1 = [], [], np.zeros((len(stems), len(names)))
    for index, stem in enumerate(stems):
        reals.append(metrics.read_rgb(image_dir / f"{stem}_{input_visual}.png"))
        row = []
        for j, name in enumerate(names):
            fake, real = read_result_pair(image_dir, stem, f"_{ATTRIBUTE_OUTPUT.format(name=name)}.png",
                                          f"_{input_visual}.png")
            l1[index, j] = float(np.abs(fake.astype(np.float64) - real).mean() / 255)
            row.append(fake)
        fakes.append(row)
    return reals, fakes, l1


def _read_attributes(net: ac.AttributeClassifierNet, side: int, reals: list[np.ndarray],
                     fakes: list[list[np.ndarray]], true: np.ndarray, names: list[str]) -> dict[str, Any]:
    """The classifier's scores of the translations beside the ceiling (the real inputs) and the floor (the
    inputs unchanged), and what it read per input."""
    count, width = true.shape
    read_real = ac.predict(net, reals, side)
    read = ac.predict(net, [fake for row in fakes for fake in row], side).reshape(count, width, width)
    identity = attribute_scores(true, np.repeat(read_real[:, None, :], width, 1), names, "identity_")
    return {**attribute_scores(true, read, names), "real_attribute_accuracy": float((read_real == true).mean()),
            **{f"real_attribute_accuracy_{name}": float((read_real[:, k] == true[:, k]).mean())
               for k, name in enumerate(names)},
            "identity_attribute_accuracy": identity["identity_attribute_accuracy"],
            "identity_attribute_flip_accuracy": identity["identity_attribute_flip_accuracy"],
            "read_real": read_real, "read": read}


def evaluate_attribute_results(results_dir: str | Path, dataroot: str | Path, phase: str = "test", *,
                               attributes: list[str] | None = None, label_file: str | Path | None = None,
                               classifier_settings: ac.AttributeClassifierSettings | None = None,
                               retrain_classifier: bool = False, inception_weights: str | None = None,
                               feature_extractor: nn.Module | None = None, fid: bool = True,
                               kid_subset_size: int = 1000, log: Callable[[str], None] = print) -> dict[str, Any]:
    """All metrics of a conditional model's results (stargan, match_gan; see the module docstring) as a flat dict
    with ``"attributes"`` (the names, in order): the attribute classifier's reading of each translation against
    its target beside the real inputs (ceiling) and the inputs unchanged (floor), the L1 distance to the input and
    FID/KID against the real test images. ``attributes`` and ``label_file`` default to test.py's."""
    start = time.perf_counter()
    dataroot = Path(dataroot)
    manifest = results_manifest(results_dir)
    options = manifest["options"]
    names = list(attributes or options.get("attributes") or [])
    if not names:
        raise EvaluationError(f"{results_dir}: visuals.json records no attributes (a test.py run of a conditional "
                              f"model records them); pass the attribute names")
    label_file = label_file or options.get("label_file")
    input_visual = manifest["roles"].get("AtoB", {}).get("input_image", ATTRIBUTE_INPUT)
    image_dir, stems = attribute_result_files(results_dir, names, input_visual)
    test_label_path = attribute_label_file(dataroot, phase, label_file)
    test_labels = attribute_labels(test_label_path, names)
    unlabelled = [stem for stem in stems if same_name(stem) not in test_labels]
    if unlabelled:
        raise EvaluationError(f"test input {image_dir / f'{unlabelled[0]}_{input_visual}.png'} ("
                              f"{len(unlabelled)} of {len(stems)} inputs) has no row in label file "
                              f"{test_label_path}; pass --label_file (and --dataroot / --phase) as test.py ran")
    true = np.stack([test_labels[same_name(stem)] for stem in stems])
    reals, fakes, l1 = read_attribute_results(image_dir, stems, names, input_visual)
    skipped: dict[str, str] = {}
    result: dict[str, Any] = {"results": str(image_dir), "dataroot": str(dataroot), "phase": phase,
                              "attributes": names, "label_file": str(test_label_path), "num_images": len(stems),
                              "num_translations": len(stems) * len(names), "fid": None, "kid_mean": None,
                              "kid_std": None, **dict.fromkeys(ATTRIBUTE_KEYS),
                              **dict.fromkeys(f"{FLIP_PREFIX}{name}" for name in names), "skipped": skipped}
    result["input_l1"] = float(l1.mean()) if stems else None
    read = None
    try:
        images, labels, train_label_path = attribute_training_set(dataroot, label_file, names)
        net, info = ac.load_or_train(dataroot, images, torch.from_numpy(labels), names, train_label_path,
                                     classifier_settings, retrain_classifier, log)
    except (DatasetError, ValueError) as err:
        skipped["attributes"] = f"attribute accuracy skipped: {err}"
    else:
        read = _read_attributes(net, info.side, reals, fakes, true, names)
        result.update({key: value for key, value in read.items() if not key.startswith("read")},
                      attribute_classifier=info.source, attribute_classifier_trained_now=info.trained,
                      attribute_classifier_train_images=info.train_images, attribute_classifier_seconds=info.seconds)
        if result["real_attribute_accuracy"] < 0.9:
            log(f"warning: the attribute classifier reads only {result['real_attribute_accuracy']:.3f} of the real "
                f"test inputs' attributes right; its scores say little (more --classifier_steps)")
    if fid:
        try:
            result.update(_fid_kid([fake for row in fakes for fake in row], list_image_files(dataroot / phase),
                                   feature_extractor, inception_weights, kid_subset_size))
        except (metrics.InceptionWeightsMissing, DatasetError, ValueError) as err:
            skipped["fid"] = str(err)
    for reason in skipped.values():
        log(reason)
    result["per_image"] = [
        {"stem": stem, "labels": true[index].tolist(), "input_l1": dict(zip(names, l1[index].tolist(), strict=True)),
         **({"read_real": read["read_real"][index].tolist(),
             "read": {name: read["read"][index, j].tolist() for j, name in enumerate(names)}} if read else {})}
        for index, stem in enumerate(stems)]
    result["seconds"] = time.perf_counter() - start
    return result


TABLE_ROWS = (
    ("num_images", "images", "{:d}"),
    ("fid", "FID (lower is better)", "{:.3f}"),
    ("kid_mean", "KID mean (lower is better)", "{:.5f}"),
    ("kid_std", "KID std", "{:.5f}"),
    ("domain_score", "domain score (translated images seen as target)", "{:.3f}"),
    ("domain_classifier_val_accuracy", "  image classifier validation accuracy", "{:.3f}"),
    ("shape_score", "shape score (translated masks seen as target)", "{:.3f}"),
    ("shape_classifier_val_accuracy", "  mask classifier validation accuracy", "{:.3f}"),
    ("background_l1", "background L1 (0..1 scale, lower is better)", "{:.4f}"),
    ("background_psnr", "background PSNR dB (higher is better)", "{:.2f}"),
    ("mean_iou", "mean IoU input vs translated mask", "{:.3f}"),
    ("instance_count_kept", "images whose instance count is kept", "{:.3f}"),
    ("empty_translated_masks", "empty translated masks", "{:d}"),
    ("num_input_instances", "input instances translated", "{:d}"),
    ("target_psnr", "target PSNR dB, full image vs ground truth", "{:.2f}"),
    ("identity_target_psnr", "  reference: the input unchanged", "{:.2f}"),
    ("true_objects_target_psnr", "  reference: this output with the target's objects pasted in", "{:.2f}"),
    ("target_ssim", "target SSIM", "{:.3f}"),
    ("identity_target_ssim", "  reference: the input unchanged", "{:.3f}"),
    ("object_psnr", "object PSNR dB, inside the target masks", "{:.2f}"),
    ("identity_object_psnr", "  reference: the input unchanged", "{:.2f}"),
    ("object_colour_error", "object colour error (0..1, lower is better)", "{:.4f}"),
    ("identity_object_colour_error", "  reference: the input unchanged", "{:.4f}"),
    ("shape_change_score", "shape change score (target 1)", "{:.3f}"),
    ("identity_shape_change_score", "  reference: the input unchanged", "{:.3f}"),
    ("object_kind_score", "object kind score (objects read as their target's kind)", "{:.3f}"),
    ("identity_object_kind_score", "  reference: the input unchanged", "{:.3f}"),
    ("object_kind_classifier_val_accuracy", "  kind classifier validation accuracy", "{:.3f}"),
    ("object_position_iou", "object position IoU (object read from the output vs target mask)", "{:.3f}"),
    ("identity_object_position_iou", "  reference: the input unchanged", "{:.3f}"),
    ("target_background_psnr", "background PSNR dB vs input, outside input and target masks", "{:.2f}"),
    ("background_floor_dataset_colour", "  floor: painted in the dataset's mean colour", "{:.2f}"),
    ("background_floor_image_colour", "  floor: painted in each image's mean colour", "{:.2f}"),
    ("background_target_itself", "  reference: the target itself", "{:.2f}"),
    ("target_mask_iou", "mean IoU translated vs target mask", "{:.3f}"),
    ("identity_target_mask_iou", "  reference: the input masks unchanged", "{:.3f}"),
    ("seconds", "seconds", "{:.1f}"),
)


PAIRED_TABLE_ROWS = (
    ("num_images", "images", "{:d}"),
    ("fid", "FID (lower is better)", "{:.3f}"),
    ("kid_mean", "KID mean (lower is better)", "{:.5f}"),
    ("kid_std", "KID std", "{:.5f}"),
    ("psnr", "PSNR dB vs the real image, mean over images", "{:.2f}"),
    ("ssim", "SSIM vs the real image, mean over images", "{:.3f}"),
    ("segmentation_miou", "segmentation mIoU vs label maps, synthesised images", "{:.3f}"),
    ("oracle_miou", "  oracle: the real images", "{:.3f}"),
    ("miou_ratio", "  synthesised / oracle", "{:.3f}"),
    ("segmentation_pixel_accuracy", "segmentation pixel accuracy, synthesised images", "{:.3f}"),
    ("oracle_pixel_accuracy", "  oracle: the real images", "{:.3f}"),
    ("touching_boundary_gradient", "gradient on boundaries of touching same-class objects", "{:.4f}"),
    ("touching_boundary_gradient_real", "  real images", "{:.4f}"),
    ("touching_boundary_images", "  images with touching same-class objects", "{:d}"),
    ("touching_boundary_pixels", "  boundary pixels", "{:d}"),
    ("style_count", "styles per input", "{:d}"),
    ("style_colour_distance", "mean colour distance between styles (0..1)", "{:.4f}"),
    ("style_distinct_mean", "clearly different styles per input, mean", "{:.2f}"),
    ("style_distinct_min", "  fewest for one input", "{:d}"),
    ("style_threshold", "  colour distance that counts as clearly different", "{:.2f}"),
    ("seconds", "seconds", "{:.1f}"),
)


ATTRIBUTE_TABLE_ROWS = (
    ("num_images", "test inputs", "{:d}"),
    ("num_translations", "translations (one per input and attribute)", "{:d}"),
    ("fid", "FID (lower is better)", "{:.3f}"),
    ("kid_mean", "KID mean (lower is better)", "{:.5f}"),
    ("kid_std", "KID std", "{:.5f}"),
    ("attribute_accuracy", "attribute accuracy (every attribute read as its target)", "{:.3f}"),
    ("real_attribute_accuracy", "  ceiling: the real inputs vs their labels", "{:.3f}"),
    ("identity_attribute_accuracy", "  floor: the input unchanged", "{:.3f}"),
    ("attribute_flip_accuracy", "flip accuracy (flipped attribute read as its new value)", "{:.3f}"),
    ("identity_attribute_flip_accuracy", "  floor: the input unchanged", "{:.3f}"),
    # here: one row per attribute, attribute_flip_accuracy_<name> (attribute_rows)
    ("attribute_kept_accuracy", "kept accuracy (the other attributes read as before)", "{:.3f}"),
    ("attribute_vector_accuracy", "vector accuracy (the whole target vector read)", "{:.3f}"),
    ("input_l1", "L1 translation vs input (0..1 scale)", "{:.4f}"),
    ("attribute_classifier_train_images", "  attribute classifier training images", "{:d}"),
    ("seconds", "seconds", "{:.1f}"),
)


def attribute_rows(names: list[str]) -> tuple[tuple[str, str, str], ...]:
    """ATTRIBUTE_TABLE_ROWS with a flip accuracy row per attribute after the flip accuracy's floor."""
    after = [key for key, _, _ in ATTRIBUTE_TABLE_ROWS].index("identity_attribute_flip_accuracy") + 1
    per_attribute = tuple((f"{FLIP_PREFIX}{name}", f"  flip accuracy, {name}", "{:.3f}") for name in names)
    return ATTRIBUTE_TABLE_ROWS[:after] + per_attribute + ATTRIBUTE_TABLE_ROWS[after:]


def result_kind(result: dict[str, Any]) -> str:
    """"attributes" (a conditional model's results), "paired" or "unpaired"."""
    return "attributes" if result.get("attributes") else "paired" if result.get("paired") else "unpaired"


def table_rows(results: list[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """The rows of the table of each kind of result present (unpaired, paired, attribute), in that order, each
    metric once and the seconds last; the unpaired table's when there is no result. Attribute results add a flip
    accuracy row per attribute (their ``"attributes"`` names)."""
    names = list(dict.fromkeys(name for result in results if isinstance(result.get("attributes"), list)
                               for name in result["attributes"]))
    kinds = {result_kind(result) for result in results} or {"unpaired"}
    tables = [rows for kind, rows in (("unpaired", TABLE_ROWS), ("paired", PAIRED_TABLE_ROWS),
                                      ("attributes", attribute_rows(names))) if kind in kinds]
    if len(tables) == 1:
        return tables[0]
    merged: dict[str, tuple[str, str, str]] = {}
    for rows in tables:
        for row in rows[:-1]:   # every table ends with the seconds
            merged.setdefault(row[0], row)
    return (*merged.values(), TABLE_ROWS[-1])


def format_table(result: dict[str, Any]) -> str:
    rows = table_rows([result])
    width = max(len(label) for _, label, _ in rows)
    lines = []
    for key, label, fmt in rows:
        value = result.get(key)
        text = "skipped" if value is None else ("nan" if isinstance(value, float) and math.isnan(value)
                                                 else fmt.format(value))
        lines.append(f"{label:<{width}}  {text}")
    return "\n".join(lines)


def _json_ready(value: Any) -> Any:
    """NaN (no data) -> null; inf stays (Python's json writes Infinity)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, nargs="+",
                        help="test.py page folder: <results_dir>/<name>/<phase>_<epoch>; several (e.g. one per "
                             "seed) also print each metric's mean +- spread")
    parser.add_argument("--dataroot", default=None, help="the dataset test.py translated (default: as test.py ran)")
    parser.add_argument("--phase", default=None, help="split test.py ran on (default: as test.py ran, else test)")
    parser.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                        help="which translation to score: folder A -> B or B -> A")
    parser.add_argument("--json", default=None, help="where to write the metrics (default <results>/metrics.json)")
    parser.add_argument("--ins_max", type=int, default=None, help="default: as test.py ran (else 4)")
    parser.add_argument("--max_instances", type=int, default=None,
                        help="masks read per image; default: as test.py ran (else 20)")
    parser.add_argument("--match", default="slot", choices=["slot", "iou"],
                        help="pair input and translated masks by slot (the model's order) or by best IoU")
    parser.add_argument("--inception_weights", default=None,
                        help=f"{metrics.INCEPTION_FILE} for FID/KID (default: torch hub's checkpoints cache)")
    parser.add_argument("--no_fid", action="store_true", help="skip FID and KID")
    parser.add_argument("--no_domain_score", action="store_true", help="skip the image domain classifier")
    parser.add_argument("--no_shape_score", action="store_true", help="skip the mask domain classifier")
    parser.add_argument("--retrain_classifier", action="store_true",
                        help="ignore the classifier cache (domain, mask and attribute classifiers)")
    parser.add_argument("--classifier_size", type=int, default=64,
                        help="classifier input side (masks use half; also the attribute classifier's)")
    parser.add_argument("--classifier_steps", type=int, default=400,
                        help="classifier training steps (batch 64; also the attribute classifier's)")
    parser.add_argument("--kid_subset_size", type=int, default=1000)
    paired = parser.add_argument_group("paired results (pix2pix, pix2pixhd)")
    paired.add_argument("--label_nc", type=int, default=None,
                        help="label classes (default: the run's <checkpoints_dir>/<name>/train_opt.json, else the "
                             "largest label id of the data + 1)")
    paired.add_argument("--checkpoints_dir", default="./checkpoints", help="where the run's train_opt.json is")
    paired.add_argument("--segmenter", default=None,
                        help="a trained SegmenterNet state dict (util/segmenter.py) instead of the one trained on "
                             "<dataroot>/train_img and cached in <dataroot>/.cache/segmenter.pt")
    paired.add_argument("--segmenter_size", type=int, default=sg.SegmenterSettings.size,
                        help="segmenter input side (images are resized to size x size)")
    paired.add_argument("--segmenter_steps", type=int, default=sg.SegmenterSettings.steps,
                        help="segmenter training steps")
    paired.add_argument("--retrain_segmenter", action="store_true", help="ignore the segmenter cache")
    paired.add_argument("--no_segmentation", action="store_true", help="skip the segmentation mIoU")
    paired.add_argument("--style_threshold", type=float, default=pm.STYLE_THRESHOLD,
                        help="colour distance (0..1) above which two styles count as clearly different")
    conditional = parser.add_argument_group("attribute results (stargan, match_gan)")
    conditional.add_argument("--label_file", default=None,
                             help="labels of the test and training images (default: test.py's --label_file, else "
                                  "<dataroot>/<phase>_labels.csv or <dataroot>/list_attr_celeba.txt)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (more only help on an idle machine)")
    return parser


# What evaluate.py assumes for results folders without recorded options (written before test.py recorded them).
FALLBACK_OPTIONS = {"phase": "test", "ins_max": 4, "max_instances": 20}


def fill_from_test_run(args: argparse.Namespace) -> argparse.Namespace:
    """Options not given take the values test.py recorded in visuals.json, so evaluate.py needs only --results."""
    recorded = results_manifest(args.results)["options"]
    for name in ("dataroot", "phase", "ins_max", "max_instances"):
        if getattr(args, name) is None:
            value = recorded.get(name)   # a model without masks (CycleGAN) records ins_max as null
            setattr(args, name, FALLBACK_OPTIONS.get(name) if value is None else value)
    if args.dataroot is None:
        raise EvaluationError(f"{args.results} records no dataroot (an older test.py run): pass --dataroot")
    return args


def evaluate_one(args: argparse.Namespace, results: str) -> dict[str, Any]:
    """evaluate_results for one --results folder, options not given taken from its test run."""
    run_args = fill_from_test_run(argparse.Namespace(**{**vars(args), "results": results}))
    log = lambda text: print(text, file=sys.stderr)
    if is_attribute_results(results):
        settings = ac.AttributeClassifierSettings(size=args.classifier_size, steps=args.classifier_steps)
        return evaluate_attribute_results(
            results, run_args.dataroot, run_args.phase, label_file=args.label_file, classifier_settings=settings,
            retrain_classifier=args.retrain_classifier, inception_weights=args.inception_weights,
            fid=not args.no_fid, kid_subset_size=args.kid_subset_size, log=log)
    if is_paired(results, args.direction):
        settings = sg.SegmenterSettings(size=args.segmenter_size, steps=args.segmenter_steps)
        return evaluate_paired_results(
            results, run_args.dataroot, run_args.phase, args.direction, label_nc=args.label_nc,
            checkpoints_dir=args.checkpoints_dir, segmenter=args.segmenter, segmenter_settings=settings,
            retrain_segmenter=args.retrain_segmenter, segmentation=not args.no_segmentation,
            style_threshold=args.style_threshold, inception_weights=args.inception_weights,
            fid=not args.no_fid, kid_subset_size=args.kid_subset_size, log=log)
    settings = dc.ClassifierSettings(size=args.classifier_size, steps=args.classifier_steps)
    return evaluate_results(
        results, run_args.dataroot, run_args.phase, args.direction, ins_max=run_args.ins_max,
        max_instances=run_args.max_instances, match=args.match, inception_weights=args.inception_weights,
        fid=not args.no_fid, domain_score=not args.no_domain_score, shape_score=not args.no_shape_score,
        classifier_settings=settings, retrain_classifier=args.retrain_classifier,
        kid_subset_size=args.kid_subset_size, log=log)


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per numeric table metric over several runs (e.g. seeds): mean and spread, the spread being half the
    range (max - min) / 2, so two seeds read as mean +- the distance of each from the mean."""
    summary = {}
    for key, _, _ in table_rows(runs):
        values = [run[key] for run in runs if isinstance(run.get(key), int | float) and not isinstance(run[key], bool)]
        values = [value for value in values if not math.isnan(value)]
        if values:
            summary[key] = {"mean": float(np.mean(values)), "spread": (max(values) - min(values)) / 2,
                            "runs": len(values)}
    return summary


def format_summary(summary: dict[str, dict[str, float]]) -> str:
    own = {kind: {key for key, _, _ in rows} for kind, rows in
           (("unpaired", TABLE_ROWS), ("paired", PAIRED_TABLE_ROWS), ("attributes", ATTRIBUTE_TABLE_ROWS))}
    only = {kind: keys - set().union(*(other for name, other in own.items() if name != kind))
            for kind, keys in own.items()}
    names = [key[len(FLIP_PREFIX):] for key in summary if key.startswith(FLIP_PREFIX)]
    kinds = [{"paired": True}] * bool(only["paired"] & set(summary))
    kinds += [{"attributes": names or True}] * bool(only["attributes"] & set(summary) or names)
    kinds += [{}] * bool(only["unpaired"] & set(summary) or not kinds)
    rows = table_rows(kinds)
    width = max(len(label) for _, label, _ in rows)
    lines = []
    for key, label, fmt in rows:
        if key in summary:
            mean, spread = summary[key]["mean"], summary[key]["spread"]
            fmt = "{:.1f}" if fmt == "{:d}" else fmt
            text = "inf" if math.isinf(mean) else f"{fmt.format(mean)} +- {fmt.format(spread)}"
            lines.append(f"{label:<{width}}  {text}")
    return "\n".join(lines)


def write_json(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_ready(content), indent=2), encoding="utf-8")
    print(f"metrics written to {path}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(args.threads, 1))
    if args.json and len(args.results) > 1:
        print("error: --json names one file, but several --results were given: leave --json out (each folder gets "
              "its metrics.json) or evaluate one folder at a time", file=sys.stderr)
        return 2
    runs = []
    try:
        for results in args.results:
            runs.append(evaluate_one(args, results))
    except (EvaluationError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for results, result in zip(args.results, runs, strict=True):
        if len(runs) > 1:
            print(f"\n== {results}")
        print(format_table(result))
        write_json(Path(args.json) if args.json else Path(results) / "metrics.json", result)
    if len(runs) > 1:
        print(f"\n== mean +- spread (half the range) over {len(runs)} runs")
        print(format_summary(summarize_runs(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
