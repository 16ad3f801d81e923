"""Metrics of paired (label map -> image) results, as evaluate.py reports them for pix2pix and pix2pixHD.

Conventions as in util/metrics.py: images are uint8 RGB (H, W, 3); label and instance maps are int64 (H, W)
id arrays (instance id 0: no instance).

* ``image_psnr_ssim``: PSNR and SSIM of a synthesised image against its real image (torchmetrics, data range 1).
* ``SegmentationScore``: confusion matrix of predicted vs true label ids, pooled over images; mean IoU over the
  classes present in either, and pixel accuracy (the pix2pixHD paper's protocol with a segmenter).
* ``touching_boundary``: the pixels on both sides of the boundary between two different instances of one label
  (4-neighbours), and ``gradient_magnitude`` there (Sobel on the grey image, scaled so a sharp step of height
  h between two pixels reads h on both of them).
* ``style_distances`` / ``distinct_styles``: the mean colour of every instance in each style image, the colour
  distance between two styles (per-channel mean absolute difference of the instance colours, 0..1, averaged
  over the instances) and a greedy count of styles that differ from every style counted before by more than
  a threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .metrics import sobel_magnitude

STYLE_THRESHOLD = 0.1   # colour distance (0..1) above which two styles count as clearly different


# ---------------------------------------------------------------------------------------------- PSNR / SSIM
def _float_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float64) / 255.0).permute(2, 0, 1)[None]


def image_psnr_ssim(fake: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of one uint8 image against its real image; identical images give (inf, 1)."""
    if fake.shape != real.shape:
        raise ValueError(f"synthesised image {fake.shape} and real image {real.shape} differ in size")
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    fake_t, real_t = _float_tensor(fake), _float_tensor(real)
    if torch.equal(fake_t, real_t):
        return math.inf, 1.0
    return (float(peak_signal_noise_ratio(fake_t, real_t, data_range=1.0)),
            float(structural_similarity_index_measure(fake_t, real_t, data_range=1.0)))


# ---------------------------------------------------------------------------------------------- segmentation
@dataclass
class SegmentationScore:
    """Predicted label ids against the true ones, pooled over images."""

    num_classes: int
    confusion: np.ndarray = field(init=False)   # [true, predicted] pixel counts

    def __post_init__(self):
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def add(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        if truth.shape != predicted.shape:
            raise ValueError(f"label map {truth.shape} and prediction {predicted.shape} differ in size")
        n = self.num_classes
        self.confusion += np.bincount((truth.ravel() * n + predicted.ravel()).astype(np.int64),
                                      minlength=n * n).reshape(n, n)

    def class_iou(self) -> list[float | None]:
        """IoU per class; None for a class neither true nor predicted anywhere."""
        hits = np.diag(self.confusion)
        union = self.confusion.sum(0) + self.confusion.sum(1) - hits
        return [float(hit / total) if total else None for hit, total in zip(hits, union, strict=True)]

    @property
    def mean_iou(self) -> float:
        ious = [iou for iou in self.class_iou() if iou is not None]
        return float(np.mean(ious)) if ious else math.nan

    @property
    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else math.nan


# ---------------------------------------------------------------------------------------------- touching objects
def touching_boundary(labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """Boolean (H, W): pixels with a 4-neighbour of another instance (both ids non-zero) of the same label,
    both sides of each such boundary."""
    if labels.shape != instances.shape:
        raise ValueError(f"label map {labels.shape} and instance map {instances.shape} differ in size")
    boundary = np.zeros(labels.shape, dtype=bool)
    for axis in (0, 1):
        first = [slice(None), slice(None)]
        second = [slice(None), slice(None)]
        first[axis], second[axis] = slice(None, -1), slice(1, None)
        first, second = tuple(first), tuple(second)
        pair = ((instances[first] != instances[second]) & (instances[first] != 0) & (instances[second] != 0)
                & (labels[first] == labels[second]))
        boundary[first] |= pair
        boundary[second] |= pair
    return boundary


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """(H, W) Sobel gradient magnitude of the grey (channel mean) image in [0, 1], divided by 4 so that a sharp
    step of height h between two pixels reads h on both of them."""
    grey = torch.from_numpy(image.astype(np.float64).mean(-1) / 255.0)[None, None]
    return (sobel_magnitude(grey)[0, 0] / 4.0).numpy()


@dataclass
class BoundaryGradient:
    """Gradient of synthesised and real images on the touching same-class boundaries, pooled over pixels."""

    fake_sum: float = 0.0
    real_sum: float = 0.0
    pixels: int = 0
    images: int = 0

    def add(self, fake: np.ndarray, real: np.ndarray, labels: np.ndarray, instances: np.ndarray) -> int:
        """Adds one image; returns its boundary pixel count (0: no touching same-class instances)."""
        boundary = touching_boundary(labels, instances)
        count = int(boundary.sum())
        if count:
            self.fake_sum += float(gradient_magnitude(fake)[boundary].sum())
            self.real_sum += float(gradient_magnitude(real)[boundary].sum())
            self.pixels += count
            self.images += 1
        return count

    @property
    def fake(self) -> float:
        return self.fake_sum / self.pixels if self.pixels else math.nan

    @property
    def real(self) -> float:
        return self.real_sum / self.pixels if self.pixels else math.nan


# ---------------------------------------------------------------------------------------------- styles
def instance_colours(image: np.ndarray, instances: np.ndarray) -> dict[int, np.ndarray]:
    """Mean RGB colour in [0, 1] of every non-zero instance id of the map."""
    pixels = image.astype(np.float64) / 255.0
    return {int(ident): pixels[instances == ident].mean(0) for ident in np.unique(instances) if ident != 0}


def style_distances(styles: list[np.ndarray], instances: np.ndarray) -> np.ndarray | None:
    """(S, S) colour distances between the style images of one input: per pair, the per-channel mean absolute
    difference of each instance's mean colour (0..1), averaged over the instances. None without instances."""
    colours = [instance_colours(image, instances) for image in styles]
    ids = sorted(colours[0])
    if not ids:
        return None
    stacked = np.stack([[colour[ident] for ident in ids] for colour in colours])   # (S, instances, 3)
    return np.abs(stacked[:, None] - stacked[None]).mean((-1, -2))


def distinct_styles(distances: np.ndarray, threshold: float = STYLE_THRESHOLD) -> int:
    """Greedy count of clearly different styles: style 0 counts; each next style counts when its distance to
    every style counted so far is above ``threshold``."""
    counted = [0]
    for style in range(1, distances.shape[0]):
        if all(distances[style, other] > threshold for other in counted):
            counted.append(style)
    return len(counted)


@dataclass
class StyleSpread:
    """Colour distance and distinct-style count per input, averaged over the inputs with instances."""

    threshold: float = STYLE_THRESHOLD
    distances: list[float] = field(default_factory=list)
    distinct: list[int] = field(default_factory=list)
    styles: int = 0

    def add(self, styles: list[np.ndarray], instances: np.ndarray) -> None:
        matrix = style_distances(styles, instances)
        self.styles = max(self.styles, len(styles))
        if matrix is None:
            return
        pairs = np.triu_indices(len(styles), 1)
        self.distances.append(float(matrix[pairs].mean()) if len(styles) > 1 else 0.0)
        self.distinct.append(distinct_styles(matrix, self.threshold))

    def scores(self) -> dict[str, float | int | None]:
        if not self.distinct:
            return {"style_count": self.styles, "style_colour_distance": math.nan, "style_distinct_mean": math.nan,
                    "style_distinct_min": None, "style_inputs": 0, "style_threshold": self.threshold}
        return {"style_count": self.styles, "style_colour_distance": float(np.mean(self.distances)),
                "style_distinct_mean": float(np.mean(self.distinct)), "style_distinct_min": int(min(self.distinct)),
                "style_inputs": len(self.distinct), "style_threshold": self.threshold}
