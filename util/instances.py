"""Instance masks from a predictor's maps, their scores against true masks, and masks degraded on purpose.

Shared by the mask predictor (models/), ``scripts.predict_masks`` and the mask-sensitivity benchmark; IoU and the
one-to-one pairing of masks are util/metrics.py's, as evaluate.py uses them.

How a foreground map and a touching-boundary map become instances (``split_instances``): the seeds are the
foreground pixels off the boundary, split into 4-connected components; every foreground pixel joins the
nearest seed of its own foreground component, so two touching objects separated by a boundary line come out
as two instances, each with its boundary pixels back. A foreground component without any seed (all boundary)
is one instance by itself. Instances smaller than ``min_area`` pixels are dropped as noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .metrics import pair_by_iou

__all__ = ["InstanceScores", "degrade_masks", "split_instances", "touching_pairs"]


def split_instances(foreground: np.ndarray, boundary: np.ndarray, min_area: int = 8) -> list[np.ndarray]:
    """Boolean (H, W) maps -> boolean instance masks, largest first (see the module docstring)."""
    foreground = np.asarray(foreground, bool)
    components, _ = ndimage.label(foreground)
    instances = []
    for index, region in enumerate(ndimage.find_objects(components), start=1):
        component = components[region] == index
        seeds, seed_count = ndimage.label(component & ~np.asarray(boundary, bool)[region])
        if seed_count <= 1:
            instances.append(_full_size(component, region, foreground.shape))
            continue
        # each pixel of the component takes the label of its nearest seed pixel
        nearest = ndimage.distance_transform_edt(seeds == 0, return_distances=False, return_indices=True)
        owner = seeds[tuple(nearest)]
        instances += [_full_size(component & (owner == label), region, foreground.shape)
                      for label in range(1, seed_count + 1)]
    instances = [mask for mask in instances if mask.sum() >= min_area]
    return sorted(instances, key=lambda mask: -int(mask.sum()))


def _full_size(part: np.ndarray, region: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[region] = part
    return mask


def touching_pairs(masks: list[np.ndarray]) -> set[int]:
    """Indices of the masks that touch (4-neighbourhood) or overlap another mask."""
    grown = [ndimage.binary_dilation(mask) for mask in masks]
    return {i for i in range(len(masks)) for j in range(len(masks)) if i != j and (grown[i] & masks[j]).any()}


@dataclass
class InstanceScores:
    """Predicted instance masks against true ones, pooled over images.

    ``mean_iou``: each true instance's IoU with the prediction matched to it (0 when none is), averaged over
    all true instances; ``count_right``: share of images with as many predicted instances as true ones;
    ``touching_iou``: the mean IoU over true instances that touch another (None when there are none)."""

    ious: list[float] = field(default_factory=list)
    touching_ious: list[float] = field(default_factory=list)
    images: int = 0
    counts_right: int = 0
    predicted: int = 0
    true: int = 0

    def add_image(self, predicted: list[np.ndarray], true: list[np.ndarray]) -> None:
        best = dict.fromkeys(range(len(true)), 0.0)
        for _, t, iou in pair_by_iou(predicted, true):
            best[t] = iou
        self.ious += best.values()
        touching = touching_pairs(true)
        self.touching_ious += [best[t] for t in touching]
        self.images += 1
        self.counts_right += len(predicted) == len(true)
        self.predicted += len(predicted)
        self.true += len(true)

    def summary(self) -> dict[str, float | int | None]:
        return {"images": self.images, "true_instances": self.true, "predicted_instances": self.predicted,
                "mean_iou": float(np.mean(self.ious)) if self.ious else None,
                "count_right": self.counts_right / self.images if self.images else None,
                "touching_instances": len(self.touching_ious),
                "touching_iou": float(np.mean(self.touching_ious)) if self.touching_ious else None}


def degrade_masks(masks: list[np.ndarray], kind: str, pixels: int = 0) -> list[np.ndarray]:
    """Masks made worse on purpose: ``dilate`` / ``erode`` by ``pixels`` (a 3x3 cross per step; an eroded
    mask that vanishes is dropped), or ``drop`` (the smallest instance removed, when there are two or more)."""
    if kind == "dilate":
        return [ndimage.binary_dilation(mask, iterations=pixels) for mask in masks]
    if kind == "erode":
        eroded = [ndimage.binary_erosion(mask, iterations=pixels) for mask in masks]
        return [mask for mask in eroded if mask.any()]
    if kind == "drop":
        if len(masks) < 2:
            return list(masks)
        smallest = min(range(len(masks)), key=lambda i: masks[i].sum())
        return [mask for i, mask in enumerate(masks) if i != smallest]
    raise ValueError(f"unknown degradation {kind!r}: dilate, erode or drop")
