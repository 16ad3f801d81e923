"""A small CNN that reads binary attributes off images, for scoring conditional translations (StarGAN, MatchGAN):
does a translation show the attributes it was asked for (evaluate.py)?

Trained on ALL the real training images with their true labels (whatever ``--labelled_fraction`` a model was
trained with: the classifier is the judge, not a competitor) for a fixed number of steps on the CPU, and cached
as ``<dataroot>/.cache/attribute_classifier.pt``, keyed by a hash of the training file list (names, sizes,
modification times), the label file, the attribute names, the label values and the settings: the same data
loads the file, changed data, labels or settings retrain it (the pattern of util/segmenter.py).

The net (``AttributeClassifierNet``): 4 levels of a stride-2 3x3 conv + BatchNorm + ReLU (``width``,
2 ``width``, 4 ``width``, 4 ``width`` channels), a global average pool and a linear layer to one logit per
attribute (> 0 reads as 1). Its input is the RGB image resized (bilinear) to ``size`` x ``size`` in [-1, 1].
It is trained with binary cross-entropy on the logits, Adam with a cosine learning-rate decay to 0 (a
constant rate left the last step's net unsteady), seeded random batches and random horizontal flips.

This module reads no label file (util sits below data/): the caller passes the image paths and their labels.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .segmenter import image_tensor, read_image
from .trained_cache import files_key, read_cache, write_cache

CACHE_FORMAT = 1   # bump when the net or its input preparation changes: old caches then retrain
CACHE_NAME = "attribute_classifier.pt"


@dataclass(frozen=True)
class AttributeClassifierSettings:
    """What the attribute classifier is trained with; part of the cache key."""

    size: int = 64             # input side (images are resized to size x size)
    width: int = 16            # channels of the first level (then 2x, 4x, 4x)
    steps: int = 400           # optimiser steps (1.0 per attribute on the 64 px attribute shapes' test split, seeds
                               # 0-5; ~7 s with 2 torch threads, ~10 s with 1)
    batch_size: int = 64
    lr: float = 3e-3
    max_images: int = 2000     # training images (a seeded random subset)
    seed: int = 0


class AttributeClassifierNet(nn.Module):
    """(N, 3, H, W) in [-1, 1] -> (N, num_attributes) logits; a logit > 0 reads the attribute as 1."""

    def __init__(self, num_attributes: int, width: int = 16):
        super().__init__()
        if num_attributes < 1:
            raise ValueError(f"the attribute classifier needs at least one attribute, got {num_attributes}")
        self.num_attributes, self.width = num_attributes, width
        layers: list[nn.Module] = []
        channels = 3
        for out_channels in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(channels, out_channels, 3, stride=2, padding=1), nn.BatchNorm2d(out_channels),
                       nn.ReLU(inplace=True)]
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_attributes)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images).mean((2, 3)))


@torch.no_grad()
def predict(net: AttributeClassifierNet, images: Sequence[np.ndarray], side: int, batch_size: int = 256) -> np.ndarray:
    """The attributes the net reads off uint8 (H, W, 3) images, each resized to ``side`` x ``side``: an int64
    (N, num_attributes) array of 0/1."""
    net.eval()
    parts = [np.zeros((0, net.num_attributes), dtype=np.int64)]
    for start in range(0, len(images), batch_size):
        batch = torch.stack([image_tensor(image, side) for image in images[start:start + batch_size]])
        parts.append((net(batch) > 0).long().numpy())
    return np.concatenate(parts)


def cache_key(image_paths: Sequence[Path], labels: Tensor, attribute_names: Sequence[str], label_file: Path | None,
              settings: AttributeClassifierSettings) -> str:
    """The key of one training set: the images (names, sizes, times), the label file (the same, and its path),
    the attribute names in order, a hash of the label values and the settings."""
    label_hash = hashlib.sha256(labels.to(torch.uint8).contiguous().numpy().tobytes()).hexdigest()
    recorded = {"format": CACHE_FORMAT, "attributes": list(attribute_names), "labels": label_hash,
                "label_file": str(label_file) if label_file else None, **asdict(settings)}
    files = [("", Path(path)) for path in image_paths]
    if label_file is not None:
        files.append(("labels|", Path(label_file)))
    return files_key(recorded, files)


def check_training_set(image_paths: Sequence[Path], labels: Tensor, attribute_names: Sequence[str]) -> None:
    """ValueError when the labels do not fit the images and names, or there is too little to learn from."""
    if labels.ndim != 2 or labels.shape != (len(image_paths), len(attribute_names)):
        raise ValueError(f"labels of shape {tuple(labels.shape)} for {len(image_paths)} images and "
                         f"{len(attribute_names)} attributes; pass one row of 0/1 per image")
    if len(image_paths) < 2:
        raise ValueError(f"the attribute classifier needs at least 2 labelled training images (got "
                         f"{len(image_paths)})")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("attribute labels must be 0 or 1")


def train_attribute_classifier(images: Tensor, labels: Tensor,
                               settings: AttributeClassifierSettings) -> AttributeClassifierNet:
    """A fixed number of Adam steps (cosine decay of the rate) on random (seeded) batches of (N, 3, side, side)
    images in [-1, 1] with random horizontal flips, binary cross-entropy against the (N, num_attributes) 0/1
    labels."""
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    net = AttributeClassifierNet(labels.shape[1], settings.width)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(settings.steps, 1))
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(settings.steps):
        batch = torch.randint(images.shape[0], (settings.batch_size,), generator=generator)
        inputs = images[batch]
        flip = torch.rand(batch.numel(), generator=generator) < 0.5
        inputs[flip] = inputs[flip].flip(-1)
        optimizer.zero_grad()
        loss_fn(net(inputs), labels[batch]).backward()
        optimizer.step()
        schedule.step()
    net.eval()
    return net


@dataclass
class AttributeClassifierInfo:
    source: str                   # the cache file
    trained: bool                 # True when trained by this call
    attributes: list[str]         # what each logit reads, in order
    side: int                     # input side the net runs at
    train_images: int | None
    seconds: float


def load_or_train(dataroot: str | Path, image_paths: Sequence[Path], labels: Tensor, attribute_names: Sequence[str],
                  label_file: Path | None = None, settings: AttributeClassifierSettings | None = None,
                  retrain: bool = False,
                  log: Callable[[str], None] = print) -> tuple[AttributeClassifierNet, AttributeClassifierInfo]:
    """The cached attribute classifier of this dataset (``<dataroot>/.cache/attribute_classifier.pt``), trained
    first on ``image_paths`` with ``labels`` (float or int (N, len(attribute_names)), 0/1; ``label_file`` is
    where they were read, part of the key) when the cache is missing, stale (other images, labels, attributes
    or settings) or ``retrain`` is set. ValueError when the labels do not fit the images."""
    settings = settings or AttributeClassifierSettings()
    start = time.perf_counter()
    image_paths = [Path(path) for path in image_paths]
    labels = torch.as_tensor(labels, dtype=torch.float32)
    check_training_set(image_paths, labels, attribute_names)
    names = list(attribute_names)
    key = cache_key(image_paths, labels, names, label_file, settings)
    cache_path = Path(dataroot) / ".cache" / CACHE_NAME
    cached = None if retrain else read_cache(cache_path, key, "attribute classifier", log)
    if cached is not None:
        net = AttributeClassifierNet(len(names), settings.width)
        net.load_state_dict(cached["state_dict"])
        net.eval()
        return net, AttributeClassifierInfo(str(cache_path), False, names, settings.size, cached["train_images"],
                                            time.perf_counter() - start)
    log(f"training the attribute classifier ({', '.join(names)}) on {len(image_paths)} images of {dataroot} "
        f"({settings.steps} steps at {settings.size} px; cached afterwards as {cache_path})")
    chosen = list(range(len(image_paths)))
    if len(chosen) > settings.max_images:
        chosen = sorted(random.Random(settings.seed).sample(chosen, settings.max_images))
    images = torch.stack([image_tensor(read_image(image_paths[index]), settings.size) for index in chosen])
    net = train_attribute_classifier(images, labels[chosen], settings)
    write_cache(cache_path, {"key": key, "state_dict": net.state_dict(), "train_images": len(chosen),
                             "attributes": names, "settings": asdict(settings)})
    seconds = time.perf_counter() - start
    log(f"attribute classifier trained on {len(chosen)} images in {seconds:.1f} s")
    return net, AttributeClassifierInfo(str(cache_path), True, names, settings.size, len(chosen), seconds)
