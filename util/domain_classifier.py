"""Small CNNs that tell domain A from domain B, for the domain score (images) and shape score (masks).

Trained on real A vs real B of a dataset's train split and cached as
``<dataroot>/.cache/domain_classifier_<kind>.pt``, keyed by a hash of the training file list (names, sizes,
modification times) and the settings: the same data loads the file, changed data retrains it.

Images get Sobel edge magnitudes as extra channels: on the shapes task a plain RGB net stayed at chance
while edges gave 99.75 % validation accuracy. Masks are cropped to their bounding box and padded square,
so the net judges the outline rather than position or size.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from .image_files import index_mask_files, list_image_files, to_8bit
from .masks import mask_to_grey
from .metrics import read_mask, sobel_magnitude
from .trained_cache import files_key, read_cache, write_cache

KINDS = ("image", "mask")
CACHE_FORMAT = 2  # bump when the net or its input preparation changes: old caches then retrain


@dataclass(frozen=True)
class ClassifierSettings:
    """What a classifier is trained with; part of the cache key."""

    size: int = 64              # input side for images; masks use half of it
    max_per_domain: int = 1000  # training samples per domain (a seeded random subset)
    steps: int = 400            # optimiser steps (not epochs: small datasets need as many)
    batch_size: int = 64
    lr: float = 2e-3
    val_fraction: float = 0.15
    seed: int = 0

    def input_side(self, kind: str) -> int:
        return self.size if kind == "image" else max(self.size // 2, 8)


class DomainClassifierNet(nn.Module):
    """Conv net: one logit per input, > 0 means domain B. Images: RGB + 3 Sobel channels; masks: 1 channel."""

    def __init__(self, kind: str, width: int = 16):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"classifier kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        in_channels = 6 if kind == "image" else 1
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(channels, out_channels, 3, stride=2, padding=1), nn.BatchNorm2d(out_channels),
                       nn.ReLU(inplace=True)]
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, inputs: Tensor) -> Tensor:
        if self.kind == "image":
            inputs = torch.cat([inputs, sobel_magnitude(inputs)], 1)
        return self.head(self.features(inputs).mean((2, 3))).squeeze(1)


# ---------------------------------------------------------------------------------------------- inputs
def image_input(path: str | Path, side: int) -> Tensor:
    """An image file -> (3, side, side) float in [-1, 1]."""
    with Image.open(path) as image:
        image = to_8bit(image).convert("RGB").resize((side, side), Image.BILINEAR)   # 16-bit as training reads it
        array = np.asarray(image, dtype=np.float32)
    return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1.0


def mask_input(mask: np.ndarray, side: int) -> Tensor | None:
    """A boolean mask -> (1, side, side) in [-1, 1] of its bounding box padded square; None when empty."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    crop = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    # A margin in proportion to the object keeps the outline off the border at every object size.
    extent = max(crop.shape) + 2 * max(1, round(0.1 * max(crop.shape)))
    square = np.zeros((extent, extent), dtype=np.uint8)
    top, left = (extent - crop.shape[0]) // 2, (extent - crop.shape[1]) // 2
    square[top:top + crop.shape[0], left:left + crop.shape[1]] = mask_to_grey(crop)
    resized = Image.fromarray(square).resize((side, side), Image.BILINEAR)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32))[None] / 127.5 - 1.0


def mask_file_input(path: str | Path, side: int) -> Tensor | None:
    return mask_input(read_mask(path), side)


def stack_inputs(items: list[Tensor | None], kind: str, side: int) -> Tensor:
    kept = [item for item in items if item is not None]
    channels = 3 if kind == "image" else 1
    return torch.stack(kept) if kept else torch.empty(0, channels, side, side)


# ---------------------------------------------------------------------------------------------- training data
def training_files(dataroot: str | Path, kind: str, phase: str = "train") -> tuple[list[Path], list[Path]]:
    """Files of domain A and domain B the classifier of ``kind`` learns from (images or mask files)."""
    root = Path(dataroot)
    found = []
    for letter in ("A", "B"):
        images = list_image_files(root / f"{phase}{letter}")
        if kind == "image":
            found.append(images)
            continue
        seg = root / f"{phase}{letter}_seg"
        if not seg.is_dir():
            raise FileNotFoundError(f"no folder {seg}: the shape score learns from real masks; create it or "
                                    f"pass --no_shape_score")
        masks = index_mask_files(seg)
        found.append([mask for image in images for mask in masks.get(image.stem, [])])
    return found[0], found[1]


def cache_key(files_a: list[Path], files_b: list[Path], kind: str, settings: ClassifierSettings) -> str:
    files = [("A|", path) for path in files_a] + [("B|", path) for path in files_b]
    return files_key({"format": CACHE_FORMAT, "kind": kind, **asdict(settings)}, files)


def _subset(files: list[Path], count: int, rng: random.Random) -> list[Path]:
    if len(files) <= count:
        return list(files)
    return sorted(rng.sample(files, count))


def load_inputs(files: list[Path], kind: str, side: int) -> Tensor:
    reader = image_input if kind == "image" else mask_file_input
    return stack_inputs([reader(path, side) for path in files], kind, side)


def train_classifier(inputs_a: Tensor, inputs_b: Tensor, kind: str,
                     settings: ClassifierSettings) -> tuple[DomainClassifierNet, float]:
    """Train on a random (seeded) split; returns the net and its validation accuracy."""
    if inputs_a.shape[0] < 2 or inputs_b.shape[0] < 2:
        raise ValueError(f"the {kind} classifier needs at least 2 training samples per domain "
                         f"(got {inputs_a.shape[0]} A, {inputs_b.shape[0]} B)")
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    inputs = torch.cat([inputs_a, inputs_b])
    labels = torch.cat([torch.zeros(inputs_a.shape[0]), torch.ones(inputs_b.shape[0])])
    order = torch.randperm(inputs.shape[0], generator=generator)
    n_val = max(2, round(settings.val_fraction * inputs.shape[0]))
    val_index, train_index = order[:n_val], order[n_val:]
    net = DomainClassifierNet(kind)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(settings.steps):
        batch = train_index[torch.randint(train_index.numel(), (settings.batch_size,), generator=generator)]
        images = inputs[batch]
        flip = torch.rand(batch.numel(), generator=generator) < 0.5
        images[flip] = images[flip].flip(-1)
        optimizer.zero_grad()
        loss_fn(net(images), labels[batch]).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        predicted = (net(inputs[val_index]) > 0).float()
    return net, float((predicted == labels[val_index]).float().mean())


@dataclass
class ClassifierInfo:
    kind: str
    val_accuracy: float
    trained: bool        # False when loaded from the cache
    cache_path: str
    train_samples: dict
    seconds: float


def load_or_train(dataroot: str | Path, kind: str, settings: ClassifierSettings | None = None,
                  phase: str = "train", retrain: bool = False,
                  log: Callable[[str], None] = print) -> tuple[DomainClassifierNet, ClassifierInfo]:
    """The cached classifier of ``kind`` ('image' or 'mask') for this dataset, trained first when the cache
    is missing, stale (other files or settings) or ``retrain`` is set."""
    files_a, files_b = training_files(dataroot, kind, phase)
    return load_or_train_files(files_a, files_b, kind, Path(dataroot) / ".cache" / f"domain_classifier_{kind}.pt",
                               f"{kind} domain classifier on {phase}A vs {phase}B of {dataroot}", settings,
                               retrain, log)


def load_or_train_files(files_a: list[Path], files_b: list[Path], kind: str, cache_path: Path, what: str,
                        settings: ClassifierSettings | None = None, retrain: bool = False,
                        log: Callable[[str], None] = print) -> tuple[DomainClassifierNet, ClassifierInfo]:
    """A classifier of ``kind`` inputs telling ``files_a`` (logit < 0) from ``files_b`` (> 0), cached at
    ``cache_path`` under a key of the files and settings; ``what`` names it in the log."""
    settings = settings or ClassifierSettings()
    start = time.perf_counter()
    key = cache_key(files_a, files_b, kind, settings)
    cached = None if retrain else read_cache(cache_path, key, "classifier", log)
    if cached is not None:
        net = DomainClassifierNet(kind)
        net.load_state_dict(cached["state_dict"])
        net.eval()
        return net, ClassifierInfo(kind, cached["val_accuracy"], False, str(cache_path),
                                   cached["train_samples"], time.perf_counter() - start)
    log(f"training the {what} (cached afterwards)")
    rng = random.Random(settings.seed)
    side = settings.input_side(kind)
    inputs_a = load_inputs(_subset(files_a, settings.max_per_domain, rng), kind, side)
    inputs_b = load_inputs(_subset(files_b, settings.max_per_domain, rng), kind, side)
    net, accuracy = train_classifier(inputs_a, inputs_b, kind, settings)
    samples = {"A": int(inputs_a.shape[0]), "B": int(inputs_b.shape[0])}
    write_cache(cache_path, {"key": key, "state_dict": net.state_dict(), "val_accuracy": accuracy,
                             "train_samples": samples, "settings": asdict(settings)})
    seconds = time.perf_counter() - start
    log(f"{kind} classifier: validation accuracy {accuracy:.3f} ({seconds:.1f} s)")
    if math.isfinite(accuracy) and accuracy < 0.75:
        log(f"warning: the {kind} classifier barely separates the domains; its score says little")
    return net, ClassifierInfo(kind, accuracy, True, str(cache_path), samples, seconds)
