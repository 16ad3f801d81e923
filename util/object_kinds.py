"""Does each translated object have the kind it should, and is it where it should be?

For datasets whose ``shapes_meta.json`` records every test object's kind and its target's kind (the shapes
data: an ellipse's target is a rectangle; the style-pair data: the kind is kept), evaluate.py reads each
object out of the output image and scores it:

- the object's region in the output: within ``RING`` pixels of its input and target masks, the pixels nearer
  the output's mean colour where both masks agree than to its mean colour in the band around the object
  (outside every mask); so colours do not matter, only what stands out from the surroundings;
- ``object_position_iou``: the IoU of that region with the target mask;
- ``object_kind_score``: the share of objects whose region a mask classifier (trained on the training
  split's masks by their recorded kinds, cached in ``<dataroot>/.cache``) reads as the target's kind.

Images translated without masks (CycleGAN, OP-GAN) are scored the same way: only the output image is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from . import domain_classifier as dc
from .image_files import MASK_NAME
from .metrics import ObjectReading, mask_iou

META_FILE = "shapes_meta.json"
RING = 3


def object_region(output: np.ndarray, source: np.ndarray, target: np.ndarray, everywhere: np.ndarray,
                  ring: int = RING) -> np.ndarray:
    """The pixels of ``output`` (H, W, 3 uint8) that look like the object of masks ``source`` and ``target``
    (``metrics.ObjectReading``); ``everywhere`` is the union of all objects' masks. Empty when the object has
    no core or no surroundings."""
    pixels = output.astype(np.float64) / 255.0
    read = ObjectReading.of(pixels, source, target, everywhere, ring)
    return np.zeros_like(source) if read is None else read.region(pixels)


def target_kinds(meta: dict, phase: str, letter: str) -> dict[tuple[str, int], str]:
    """{(image stem, mask number k): the kind object k should have once translated}; empty when the meta file
    does not record kinds and targets."""
    kinds = {}
    for record in meta.get("phases", {}).get(phase, {}).get(letter, []):
        targets = record.get("target", {}).get("objects", [])
        for source, target in zip(record.get("objects", []), targets, strict=False):
            found = MASK_NAME.match(Path(source.get("mask", "")).name)
            if found and "kind" in target:
                kinds[(found["stem"], int(found["k"]))] = target["kind"]
    return kinds


def training_masks_by_kind(meta: dict, dataroot: Path) -> dict[str, list[Path]]:
    """The training split's mask files of both folders, grouped by their object's recorded kind."""
    by_kind: dict[str, list[Path]] = {}
    for letter in ("A", "B"):
        for record in meta.get("phases", {}).get("train", {}).get(letter, []):
            for obj in record.get("objects", []):
                if "kind" in obj and "mask" in obj:
                    by_kind.setdefault(obj["kind"], []).append(dataroot / obj["mask"])
    return by_kind


class ObjectKindScores:
    """Accumulates one output's objects at a time; ``available`` is False (with ``reason``) when the dataset
    cannot be scored this way."""

    def __init__(self, dataroot: str | Path, phase: str, letter: str,
                 settings: dc.ClassifierSettings | None = None, log: Callable[[str], None] = print):
        self.dataroot = Path(dataroot)
        self.settings = settings or dc.ClassifierSettings()
        self.log = log
        self.reason = ""
        meta_path = self.dataroot / META_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        self.kinds = target_kinds(meta, phase, letter)
        self.by_kind = training_masks_by_kind(meta, self.dataroot)
        if not self.kinds or len(self.by_kind) != 2:
            self.reason = (f"object kind score skipped: {meta_path} does not record two object kinds and each test "
                           f"object's target kind (the shapes datasets do)")
        self.names = sorted(self.by_kind)
        self.inputs: dict[str, list[torch.Tensor]] = {"model": [], "identity": []}
        self.labels: dict[str, list[int]] = {"model": [], "identity": []}
        self.ious: dict[str, list[float]] = {"model": [], "identity": []}

    @property
    def available(self) -> bool:
        return not self.reason

    def add_image(self, stem: str, outputs: dict[str, np.ndarray], sources: dict[int, np.ndarray],
                  targets: dict[int, np.ndarray]) -> None:
        """``outputs``: {"model": the translation, "identity": the input}; masks by object number k."""
        everywhere = np.zeros(next(iter(outputs.values())).shape[:2], bool)
        for mask in [*sources.values(), *targets.values()]:
            everywhere |= mask
        side = self.settings.input_side("mask")
        for k in sorted(sources.keys() & targets.keys()):
            kind = self.kinds.get((stem, k))
            if kind not in self.names:
                continue
            for role, image in outputs.items():
                region = object_region(image, sources[k], targets[k], everywhere)
                self.ious[role].append(mask_iou(region, targets[k]))
                self.inputs[role].append(dc.mask_input(region, side))
                self.labels[role].append(self.names.index(kind))

    def scores(self) -> dict[str, float | None]:
        """``object_kind_score`` and ``object_position_iou`` of the model and of the input unchanged
        (``identity_...``), and the kind classifier's validation accuracy."""
        if not self.available or not self.labels["model"]:
            return {}
        by_kind = self.by_kind
        net, info = dc.load_or_train_files(by_kind[self.names[0]], by_kind[self.names[1]], "mask",
                                           self.dataroot / ".cache" / "object_kind_classifier_mask.pt",
                                           f"object kind classifier ({self.names[0]} vs {self.names[1]}) on the "
                                           f"training masks of {self.dataroot}", self.settings, log=self.log)
        found: dict[str, float | None] = {"object_kind_classifier_val_accuracy": info.val_accuracy}
        for role, prefix in (("model", ""), ("identity", "identity_")):
            inputs, labels = self.inputs[role], self.labels[role]
            right = 0
            kept = [(item, label) for item, label in zip(inputs, labels, strict=True) if item is not None]
            if kept:
                with torch.no_grad():
                    logits = net(torch.stack([item for item, _ in kept]))
                right = sum(int((logit > 0) == bool(label)) for logit, (_, label) in zip(logits, kept, strict=True))
            found[f"{prefix}object_kind_score"] = right / len(labels)    # an object not found counts as wrong
            found[f"{prefix}object_position_iou"] = float(np.mean(self.ious[role]))
        return found
