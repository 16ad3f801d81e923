"""Metrics of a translation run: background preservation, instance fidelity, FID/KID and domain scores.

Conventions: images are uint8 RGB arrays (H, W, 3) or float arrays in [0, 1]; masks are boolean arrays
(H, W), True inside the instance (a grey mask file counts as instance where it is at least half of 255).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from .image_files import DatasetError, to_8bit
from .masks import MaskFormatError, binarize_mask
from .masks import read_mask as decode_mask

# The Inception file torch-fidelity (and so torchmetrics) loads for FID/KID.
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"

TRUE_OBJECT_RIM = 1   # pixels around each target mask that a perfect object would also get right (its drawn edge)


class InceptionWeightsMissing(FileNotFoundError):
    """FID/KID cannot run: the Inception weights are not on this machine (the message says how to get them)."""


# ---------------------------------------------------------------------------------------------- file reading
def read_rgb(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image file as uint8 (H, W, 3), decoded as training decodes it (16-bit grey scaled, not clipped);
    ``size`` (height, width) resizes it (bicubic) when it differs."""
    with Image.open(path) as image:
        image = to_8bit(image).convert("RGB")
        if size is not None and (image.height, image.width) != size:
            image = image.resize((size[1], size[0]), Image.BICUBIC)
        return np.asarray(image, dtype=np.uint8)


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as a boolean (H, W) array, decoded by the rules training uses (``util.masks.read_mask``:
    16-bit and colour masks read alike, refused formats raise DatasetError naming the file); ``size`` resizes
    it (bilinear) before the threshold."""
    with Image.open(path) as image:
        try:
            grey = Image.fromarray(decode_mask(image), "L")
        except MaskFormatError as err:
            raise DatasetError(f"mask {path}: {err}") from None
    if size is not None and (grey.height, grey.width) != size:
        grey = grey.resize((size[1], size[0]), Image.BILINEAR)
    return binarize_mask(np.asarray(grey))


# ---------------------------------------------------------------------------------------------- background
def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """PSNR in dB; 0 error gives ``inf``."""
    if mse <= 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


@dataclass
class RegionError:
    """Sums of the errors over a region (e.g. the background) of one or more images (values on a 0..1 scale);
    its PSNR is that of the pooled squared error, so every pixel weighs the same whatever image it is in."""

    abs_sum: float = 0.0
    squared_sum: float = 0.0
    values: int = 0  # pixel-channel values summed

    def __iadd__(self, other: RegionError) -> Self:
        self.abs_sum += other.abs_sum
        self.squared_sum += other.squared_sum
        self.values += other.values
        return self

    @property
    def l1(self) -> float:
        return self.abs_sum / self.values if self.values else math.nan

    @property
    def psnr(self) -> float:
        return psnr_from_mse(self.squared_sum / self.values) if self.values else math.nan


def background_mask(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """True where no mask of the list covers the pixel."""
    background = np.ones(shape, dtype=bool)
    for mask in masks:
        background &= ~mask
    return background


def region_error(reference: np.ndarray, output: np.ndarray, region: np.ndarray) -> RegionError:
    """Errors between two uint8 images on the pixels where the boolean ``region`` is True."""
    if reference.shape != output.shape:
        raise ValueError(f"reference image {reference.shape} and output image {output.shape} differ in size")
    diff = (reference.astype(np.float64) - output.astype(np.float64))[region] / 255.0
    return RegionError(float(np.abs(diff).sum()), float((diff**2).sum()), int(diff.size))


def background_error(source: np.ndarray, output: np.ndarray, masks: list[np.ndarray]) -> RegionError:
    """Errors between two uint8 images on the pixels outside every mask (pass input AND translated masks)."""
    return region_error(source, output, background_mask(masks, source.shape[:2]))


# ---------------------------------------------------------------------------------------------- instances
def mask_iou(first: np.ndarray, second: np.ndarray) -> float:
    """Intersection over union of two boolean masks; two empty masks give 1."""
    union = np.logical_or(first, second).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(first, second).sum() / union)


def model_order(masks: list[np.ndarray], ins_max: int) -> list[int]:
    """Indices of the input masks the model translates, in its slot order (see ``order_like_model``)."""
    present = [index for index, mask in enumerate(masks) if mask.any()]
    return sorted(present, key=lambda index: -int(masks[index].sum()))[:ins_max]   # stable: ties keep file order


def order_like_model(masks: list[np.ndarray], ins_max: int) -> list[np.ndarray]:
    """The input masks the model translates, in its slot order: non-empty ones, largest first (ties keep the
    file order k), at most ``ins_max`` (``select_instances`` with ``--set_order decreasing``)."""
    return [masks[index] for index in model_order(masks, ins_max)]


def match_instances(inputs: dict[int, np.ndarray] | list[np.ndarray], outputs: dict[int, np.ndarray],
                    how: str = "slot") -> list[float]:
    """IoU of each input mask with its translated mask (0 when it has none).

    ``slot``: input k pairs with translated k, the model's own correspondence (k: the input mask file's
    number, as test.py names both; a list of inputs is numbered 0, 1, ...).
    ``iou``: the one-to-one pairing with the largest total IoU, which forgives a slot order that
    differs from the model's (e.g. near-equal areas that resizing reordered).
    """
    if isinstance(inputs, list):
        inputs = dict(enumerate(inputs))
    if how == "slot":
        return [mask_iou(mask, outputs[k]) if k in outputs else 0.0 for k, mask in inputs.items()]
    if how != "iou":
        raise ValueError(f"match must be 'slot' or 'iou', got {how!r}")
    ious = [0.0] * len(inputs)
    for row, _, iou in pair_by_iou(list(inputs.values()), list(outputs.values())):
        ious[row] = iou
    return ious


def pair_by_iou(first: list[np.ndarray], second: list[np.ndarray]) -> list[tuple[int, int, float]]:
    """One-to-one pairs (index in ``first``, index in ``second``, IoU) with the largest total IoU (Hungarian
    matching); pairs that do not overlap are left out."""
    if not first or not second:
        return []
    from scipy.optimize import linear_sum_assignment  # only IoU pairing needs scipy

    table = np.array([[mask_iou(a, b) for b in second] for a in first])
    rows, cols = linear_sum_assignment(table, maximize=True)
    return [(int(r), int(c), float(table[r, c])) for r, c in zip(rows, cols, strict=True) if table[r, c] > 0]


@dataclass
class InstanceFidelity:
    """Per-image instance statistics, summed over images by ``+=``."""

    ious: list[float] = field(default_factory=list)
    images: int = 0
    count_kept: int = 0
    empty_translated: int = 0

    def add_image(self, inputs: dict[int, np.ndarray] | list[np.ndarray], outputs: dict[int, np.ndarray],
                  how: str = "slot") -> None:
        """``inputs``: the input masks the model translated, by k; ``outputs``: translated masks by k."""
        non_empty = {slot: mask for slot, mask in outputs.items() if mask.any()}
        self.ious.extend(match_instances(inputs, non_empty, how))
        self.images += 1
        self.count_kept += int(len(non_empty) == len(inputs))
        self.empty_translated += max(len(inputs) - len(non_empty), 0)

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else math.nan

    @property
    def count_kept_fraction(self) -> float:
        return self.count_kept / self.images if self.images else math.nan


# ---------------------------------------------------------------------------------------------- ground truth
def mean_colour_error(reference: np.ndarray, output: np.ndarray, region: np.ndarray) -> float:
    """|mean colour of ``reference`` in ``region`` - mean colour of ``output`` there|, averaged over the
    channels, on a 0..1 scale (NaN for an empty region)."""
    if not region.any():
        return math.nan
    difference = reference[region].astype(np.float64).mean(0) - output[region].astype(np.float64).mean(0)
    return float(np.abs(difference).mean() / 255.0)


def shape_change_counts(output: np.ndarray, source_masks: dict[int, np.ndarray], target_masks: dict[int, np.ndarray],
                        ring: int = 3, min_contrast: float = 0.1) -> tuple[int, int]:
    """(pixels right, pixels to change) of one image: did each object's shape change in the output image?

    For object k (input mask k, target mask k), the pixels to change are those inside exactly one of the two
    masks (an ellipse's rims that its rectangle drops, the corners it gains). Each is read as object or
    background by which it is nearer to in the output itself: the output's mean colour where both masks agree on
    object, or its mean colour in a ``ring``-pixel band around the object outside every mask. It is right when
    that reading matches the target mask. So the colours do not matter (a rectangle in the wrong colour scores
    1), the input scores 0, the target 1; an object whose colour is within ``min_contrast`` (RGB distance, 0..1)
    of its surroundings counts as all wrong."""
    shape = output.shape[:2]
    pixels = output.astype(np.float64) / 255.0
    everywhere = ~background_mask([*source_masks.values(), *target_masks.values()], shape)
    right = total = 0
    for k in source_masks.keys() & target_masks.keys():
        source, target = source_masks[k], target_masks[k]
        change = source ^ target
        total += int(change.sum())
        read = ObjectReading.of(pixels, source, target, everywhere, ring)
        if not change.any() or read is None or read.contrast < min_contrast:
            continue
        right += int((read.looks_like_object(pixels[change]) == target[change]).sum())
    return right, total


@dataclass
class ObjectReading:
    """What an object of masks ``source`` (input) and ``target`` looks like in an image, read from the image
    itself: its mean colour where both masks agree on object, and the mean colour of its surroundings (a
    ``ring``-pixel band around both masks, outside every object). A pixel looks like the object when it is
    nearer the first than the second; so colours do not matter, only what stands out."""

    window: np.ndarray              # both masks grown by the ring: where the object can be
    object_colour: np.ndarray
    background_colour: np.ndarray

    @classmethod
    def of(cls, pixels: np.ndarray, source: np.ndarray, target: np.ndarray, everywhere: np.ndarray,
           ring: int) -> ObjectReading | None:
        """The reading of one object in ``pixels`` (H, W, 3 in 0..1); ``everywhere`` is the union of every
        object's masks. None when the object has no core or no surroundings."""
        from scipy.ndimage import binary_dilation

        window = binary_dilation(source | target, iterations=ring)
        core, around = source & target, window & ~everywhere
        if not core.any() or not around.any():
            return None
        return cls(window, pixels[core].mean(0), pixels[around].mean(0))

    @property
    def contrast(self) -> float:
        """RGB distance (0..1 per channel) between the object's colour and its surroundings'."""
        return float(np.linalg.norm(self.object_colour - self.background_colour))

    def looks_like_object(self, values: np.ndarray) -> np.ndarray:
        """For (..., 3) colours: nearer the object's colour than the surroundings'."""
        return (np.linalg.norm(values - self.object_colour, axis=-1)
                < np.linalg.norm(values - self.background_colour, axis=-1))

    def region(self, pixels: np.ndarray) -> np.ndarray:
        """The pixels of the window that look like the object."""
        return self.window & self.looks_like_object(pixels)


def _as_float_batch(images: list[np.ndarray]) -> Tensor:
    return to_uint8_batch(images).double() / 255.0


@dataclass
class TargetComparison:
    """Outputs scored against ground-truth targets (each input scene as it should look once translated).

    Full image: PSNR of the pooled squared error and mean SSIM (torchmetrics, data range 1). Objects: PSNR over
    the pixels inside the target masks, per object the mean colour error inside its target mask, and the shape
    change score (``shape_change_counts``, pooled over the images). A reference: the full-image PSNR the output
    would score with perfect objects, i.e. with the target's pixels within ``TRUE_OBJECT_RIM`` pixels of every
    target mask pasted in (``true_objects_target_psnr``); no output that differs from this one only there scores
    more.
    """

    outputs: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    objects: RegionError = field(default_factory=RegionError)
    off_true_objects: RegionError = field(default_factory=RegionError)
    colour_errors: list[float] = field(default_factory=list)
    changed_right: int = 0
    to_change: int = 0

    def add_image(self, output: np.ndarray, target: np.ndarray, target_masks: dict[int, np.ndarray],
                  source_masks: dict[int, np.ndarray]) -> None:
        """``target_masks`` and ``source_masks`` by object number k (target mask k: input object k translated)."""
        if output.shape != target.shape:
            raise ValueError(f"output {output.shape} and target {target.shape} differ in size")
        self.outputs.append(output)
        self.targets.append(target)
        masks = list(target_masks.values())
        self.objects += region_error(target, output, ~background_mask(masks, target.shape[:2]))
        self.off_true_objects += region_error(target, output, off_objects_with_rims(masks, target.shape[:2]))
        self.colour_errors += [mean_colour_error(target, output, mask) for mask in masks if mask.any()]
        right, total = shape_change_counts(output, source_masks, target_masks)
        self.changed_right += right
        self.to_change += total

    def scores(self) -> dict[str, float]:
        """``target_psnr``, ``target_ssim``, ``object_psnr``, ``object_colour_error``, ``shape_change_score``
        (NaN without images)."""
        if not self.outputs:
            return dict.fromkeys(("target_psnr", "target_ssim", "object_psnr", "object_colour_error",
                                  "shape_change_score", "true_objects_target_psnr"), math.nan)
        from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

        outputs, targets = _as_float_batch(self.outputs), _as_float_batch(self.targets)
        return {"target_psnr": float(peak_signal_noise_ratio(outputs, targets, data_range=1.0)),
                "target_ssim": float(structural_similarity_index_measure(outputs, targets, data_range=1.0)),
                "object_psnr": self.objects.psnr,
                "object_colour_error": float(np.mean(self.colour_errors)) if self.colour_errors else math.nan,
                "shape_change_score": self.changed_right / self.to_change if self.to_change else math.nan,
                "true_objects_target_psnr": psnr_from_mse(self.off_true_objects.squared_sum / outputs.numel())}


def off_objects_with_rims(masks: list[np.ndarray], shape: tuple[int, int], rim: int = TRUE_OBJECT_RIM) -> np.ndarray:
    """True on the pixels farther than ``rim`` pixels (8-neighbourhood) from every mask: the anti-aliased edge of a
    drawn object lies just outside its binary mask."""
    from scipy.ndimage import binary_dilation

    objects = ~background_mask(masks, shape)
    if rim and objects.any():
        objects = binary_dilation(objects, structure=np.ones((3, 3), bool), iterations=rim)
    return ~objects


def flat_background_floors(inputs: list[np.ndarray], regions: list[np.ndarray]) -> dict[str, float]:
    """Background PSNR of two do-nothing-clever references, on the same pixels (``regions``) as a model's:
    every background painted in the mean background colour of all ``inputs`` (``floor_dataset_colour``), and
    each in its own mean background colour (``floor_image_colour``). A model below them damages the background
    more than a flat colour would."""
    pixels = [image[region].astype(np.float64) for image, region in zip(inputs, regions, strict=True)]
    if not any(len(values) for values in pixels):
        return {"floor_dataset_colour": math.nan, "floor_image_colour": math.nan}
    dataset_colour = np.concatenate(pixels).mean(0)
    dataset, own = RegionError(), RegionError()
    for image, region, values in zip(inputs, regions, pixels, strict=True):
        if len(values):
            for total, colour in ((dataset, dataset_colour), (own, values.mean(0))):
                total += region_error(image, np.broadcast_to(colour, image.shape), region)
    return {"floor_dataset_colour": dataset.psnr, "floor_image_colour": own.psnr}


# ---------------------------------------------------------------------------------------------- domain score
def sobel_magnitude(images: Tensor) -> Tensor:
    """Per-channel Sobel gradient magnitude of (N, C, H, W) images (replicate padding, same size)."""
    kernel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=images.dtype)
    channels = images.shape[1]
    kernels = torch.stack([kernel_x, kernel_x.t()])[:, None].repeat(channels, 1, 1, 1).to(images.device)
    padded = nn.functional.pad(images, (1, 1, 1, 1), mode="replicate")
    grad = nn.functional.conv2d(padded, kernels, groups=channels)  # (N, 2C): x and y gradient per channel
    grad_x, grad_y = grad[:, 0::2], grad[:, 1::2]
    return (grad_x.square() + grad_y.square() + 1e-12).sqrt()


@torch.no_grad()
def domain_score(classifier: nn.Module, inputs: Tensor, target_label: int, batch_size: int = 256) -> float:
    """Fraction of ``inputs`` that ``classifier`` (one logit per input, > 0 means label 1) puts in
    ``target_label``."""
    if inputs.shape[0] == 0:
        return math.nan
    classifier.eval()
    hits = 0
    for start in range(0, inputs.shape[0], batch_size):
        predicted = (classifier(inputs[start:start + batch_size]).reshape(-1) > 0).long()
        hits += int((predicted == target_label).sum())
    return hits / inputs.shape[0]


# ---------------------------------------------------------------------------------------------- FID / KID
def find_inception_weights(path: str | Path | None = None) -> Path:
    """The Inception weights file: ``path`` when given, else torch hub's cache; raises
    InceptionWeightsMissing with download instructions when it is not there."""
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    candidate = Path(path) if path else hub_file
    if candidate.is_file():
        return candidate
    where = f"--inception_weights {candidate} does not exist" if path else f"no {hub_file}"
    raise InceptionWeightsMissing(
        f"FID/KID skipped: {where}. Download {INCEPTION_URL} on a machine with internet and either put it "
        f"at {hub_file} or pass --inception_weights <path to {INCEPTION_FILE}>")


def inception_feature_extractor(weights: str | Path) -> nn.Module:
    """torchmetrics' Inception v3 (2048 pool features of uint8 (N, 3, H, W) images) from a local file."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                              feature_extractor_weights_path=str(weights))


class _PrecomputedFeatures(nn.Module):
    """Lets torchmetrics take features extracted once (both metrics would otherwise run the network)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


@torch.no_grad()
def extract_features(images: Tensor, feature_extractor: nn.Module, batch_size: int = 50) -> Tensor:
    """(N, D) float64 features of uint8 (N, 3, H, W) images."""
    feature_extractor.eval()
    parts = [feature_extractor(images[start:start + batch_size]).reshape(min(batch_size, images.shape[0] - start), -1)
             for start in range(0, images.shape[0], batch_size)]
    return torch.cat(parts).double()


def fid_and_kid(fake: Tensor, real: Tensor, feature_extractor: nn.Module, kid_subset_size: int = 1000,
                kid_subsets: int = 100) -> dict[str, float]:
    """FID and KID (mean, std) between uint8 (N, 3, H, W) image sets, computed by torchmetrics on the
    features of ``feature_extractor`` (uint8 images in, (N, D) features out)."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if fake.shape[0] < 2 or real.shape[0] < 2:
        raise ValueError(f"FID/KID need at least 2 images per set (got {fake.shape[0]} translated, "
                         f"{real.shape[0]} real)")
    fake_features = extract_features(fake, feature_extractor)
    real_features = extract_features(real, feature_extractor)
    passthrough = _PrecomputedFeatures(fake_features.shape[1])
    subset = min(kid_subset_size, fake.shape[0], real.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # KID's note that it keeps all features in memory
        fid = FrechetInceptionDistance(feature=passthrough).double()
        kid = KernelInceptionDistance(feature=passthrough, subsets=kid_subsets, subset_size=subset).double()
    for features, is_real in ((real_features, True), (fake_features, False)):
        fid.update(features, real=is_real)
        kid.update(features, real=is_real)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}


def to_uint8_batch(images: list[np.ndarray]) -> Tensor:
    """uint8 (H, W, 3) arrays of one size -> uint8 tensor (N, 3, H, W)."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
