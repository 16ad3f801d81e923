"""A small U-Net that segments real images into label ids, for the pix2pixHD protocol of scoring synthesised
images: segment them and compare with the label maps they were made from (evaluate.py).

Trained on the REAL training images (``<dataroot>/train_img`` with ``train_label``) for a fixed number of steps
on the CPU, and cached as ``<dataroot>/.cache/segmenter.pt``, keyed by a hash of the training file list (names,
sizes, modification times), the number of classes and the settings: the same data loads the file, changed data
or settings retrain it (the pattern of util/domain_classifier.py).

The net (``SegmenterNet``): 3 levels (``width``, 2 ``width``, 4 ``width`` channels; two 3x3 conv + BatchNorm +
ReLU per level, max-pool down, bilinear up with skip connections) and a 1x1 head with one logit per class. Its
input is the RGB image resized (bilinear) to ``size`` x ``size`` in [-1, 1]; its logits are resized back
(bilinear) to the image before the argmax.

``--segmenter PATH`` in evaluate.py loads a user's own net instead (``load_segmenter_file``): a ``torch.save``'d
``state_dict()`` of ``SegmenterNet`` (width and class count are read from the tensor shapes), or a dict with
that state dict under ``"state_dict"`` and optionally ``"settings"`` (``{"size": ...}``), as the cache file holds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from .image_files import DatasetError, list_image_files, to_8bit
from .trained_cache import files_key, read_cache, write_cache

CACHE_FORMAT = 1   # bump when the net or its input preparation changes: old caches then retrain
CACHE_NAME = "segmenter.pt"


@dataclass(frozen=True)
class SegmenterSettings:
    """What the segmenter is trained with; part of the cache key."""

    size: int = 64             # input side (images and label maps are resized to size x size)
    width: int = 8             # channels of the first level (then 2x, 4x)
    steps: int = 400           # optimiser steps (0.99 mIoU on the 64 px paired shapes; ~30 s on 2 idle cores)
    batch_size: int = 16
    lr: float = 3e-3
    max_images: int = 1000     # training images (a seeded random subset)
    seed: int = 0


def _block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out),
                         nn.ReLU(inplace=True), nn.Conv2d(channels_out, channels_out, 3, padding=1),
                         nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True))


class SegmenterNet(nn.Module):
    """3-level U-Net: (N, 3, H, W) in [-1, 1] -> (N, num_classes, H, W) logits (H, W divisible by 4)."""

    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"the segmenter needs at least one class, got {num_classes}")
        self.num_classes, self.width = num_classes, width
        self.enc1, self.enc2, self.enc3 = _block(3, width), _block(width, 2 * width), _block(2 * width, 4 * width)
        self.dec2, self.dec1 = _block(6 * width, 2 * width), _block(3 * width, width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, images: Tensor) -> Tensor:
        up = nn.functional.interpolate
        first = self.enc1(images)
        second = self.enc2(nn.functional.max_pool2d(first, 2))
        third = self.enc3(nn.functional.max_pool2d(second, 2))
        second = self.dec2(torch.cat([up(third, size=second.shape[-2:], mode="bilinear", align_corners=False),
                                      second], 1))
        first = self.dec1(torch.cat([up(second, size=first.shape[-2:], mode="bilinear", align_corners=False),
                                     first], 1))
        return self.head(first)


# ---------------------------------------------------------------------------------------------- inputs
def image_tensor(image: np.ndarray, side: int) -> Tensor:
    """uint8 (H, W, 3) -> (3, side, side) float in [-1, 1] (bilinear)."""
    resized = Image.fromarray(image).resize((side, side), Image.BILINEAR)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1.0


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an int id map (H, W) to ``size`` (height, width), sampling pixel centres as
    PIL's NEAREST does, so no new id appears."""
    height, width = ids.shape
    if (height, width) == tuple(size):
        return ids
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.int64), width - 1)
    return ids[np.ix_(rows, cols)]


def read_ids(path: str | Path) -> np.ndarray:
    """A one-channel id map (8-bit L/P, 16-bit) as int64 (H, W), raw values (not scaled)."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("L", "P", "I;16", "I;16B", "I;16L", "I"):
                raise DatasetError(f"id map {path} has image mode {image.mode}, but ids are read from one channel; "
                                   f"save it as a one-channel PNG (8-bit L or P, 16-bit for instance ids)")
            return np.asarray(image).astype(np.int64)
    except OSError as err:
        raise DatasetError(f"cannot read id map {path}: {err}; replace or remove the file") from None


def read_image(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(to_8bit(image).convert("RGB"), dtype=np.uint8)


@torch.no_grad()
def predict(net: SegmenterNet, image: np.ndarray, side: int) -> np.ndarray:
    """Label ids (H, W) of a uint8 (H, W, 3) image: the net at ``side`` x ``side``, logits resized back."""
    net.eval()
    logits = net(image_tensor(image, side)[None])
    logits = nn.functional.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
    return logits[0].argmax(0).numpy()


# ---------------------------------------------------------------------------------------------- training data
def training_pairs(dataroot: str | Path, phase: str = "train") -> list[tuple[Path, Path]]:
    """(image, label map) file pairs of ``<dataroot>/<phase>_img`` and ``<phase>_label``, matched by stem."""
    root = Path(dataroot)
    images, labels = root / f"{phase}_img", root / f"{phase}_label"
    for folder in (images, labels):
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder {folder}: the segmenter learns from the real training images and "
                                    f"their label maps (<dataroot>/{phase}_img, {phase}_label); or pass --segmenter "
                                    f"with a trained one")
    by_stem = {path.stem: path for path in list_image_files(images)}
    pairs = [(by_stem[label.stem], label) for label in list_image_files(labels) if label.stem in by_stem]
    if len(pairs) < 2:
        raise ValueError(f"the segmenter needs at least 2 training images with label maps in {images} and {labels} "
                         f"(found {len(pairs)})")
    return pairs


def cache_key(pairs: list[tuple[Path, Path]], num_classes: int, settings: SegmenterSettings) -> str:
    return files_key({"format": CACHE_FORMAT, "num_classes": num_classes, **asdict(settings)},
                     [("", path) for pair in pairs for path in pair])


def load_training_data(pairs: list[tuple[Path, Path]], num_classes: int, side: int) -> tuple[Tensor, Tensor]:
    """(N, 3, side, side) images in [-1, 1] and (N, side, side) int64 label ids."""
    images, labels = [], []
    for image_path, label_path in pairs:
        ids = read_ids(label_path)
        if ids.min() < 0 or ids.max() >= num_classes:
            raise DatasetError(f"label map {label_path} holds id {int(ids.max())} but there are {num_classes} "
                               f"classes (--label_nc); pass the --label_nc the model was trained with")
        images.append(image_tensor(read_image(image_path), side))
        labels.append(torch.from_numpy(resize_ids(ids, (side, side))))
    return torch.stack(images), torch.stack(labels)


def train_segmenter(images: Tensor, labels: Tensor, num_classes: int, settings: SegmenterSettings) -> SegmenterNet:
    """A fixed number of Adam steps on random (seeded) batches with random horizontal flips."""
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    net = SegmenterNet(num_classes, settings.width)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
    net.train()
    for _ in range(settings.steps):
        batch = torch.randint(images.shape[0], (min(settings.batch_size, images.shape[0] * 4),), generator=generator)
        inputs, targets = images[batch], labels[batch]
        flip = torch.rand(batch.numel(), generator=generator) < 0.5
        inputs[flip], targets[flip] = inputs[flip].flip(-1), targets[flip].flip(-1)
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    net.eval()
    return net


@dataclass
class SegmenterInfo:
    source: str            # the cache file or the user's --segmenter file
    trained: bool          # True when trained by this call
    num_classes: int
    side: int              # input side the net runs at
    train_images: int | None
    seconds: float


def load_or_train(dataroot: str | Path, num_classes: int, settings: SegmenterSettings | None = None,
                  phase: str = "train", retrain: bool = False,
                  log: Callable[[str], None] = print) -> tuple[SegmenterNet, SegmenterInfo]:
    """The cached segmenter of this dataset, trained first when the cache is missing, stale (other training
    files, class count or settings) or ``retrain`` is set."""
    settings = settings or SegmenterSettings()
    start = time.perf_counter()
    pairs = training_pairs(dataroot, phase)
    key = cache_key(pairs, num_classes, settings)
    cache_path = Path(dataroot) / ".cache" / CACHE_NAME
    cached = None if retrain else read_cache(cache_path, key, "segmenter", log)
    if cached is not None:
        net = SegmenterNet(num_classes, settings.width)
        net.load_state_dict(cached["state_dict"])
        net.eval()
        return net, SegmenterInfo(str(cache_path), False, num_classes, settings.size, cached["train_images"],
                                  time.perf_counter() - start)
    log(f"training the segmenter on {phase}_img / {phase}_label of {dataroot} ({settings.steps} steps at "
        f"{settings.size} px; cached afterwards as {cache_path})")
    rng = random.Random(settings.seed)
    if len(pairs) > settings.max_images:
        pairs = sorted(rng.sample(pairs, settings.max_images))
    images, labels = load_training_data(pairs, num_classes, settings.size)
    net = train_segmenter(images, labels, num_classes, settings)
    write_cache(cache_path, {"key": key, "state_dict": net.state_dict(), "train_images": len(pairs),
                             "num_classes": num_classes, "settings": asdict(settings)})
    seconds = time.perf_counter() - start
    log(f"segmenter trained on {len(pairs)} images in {seconds:.1f} s")
    return net, SegmenterInfo(str(cache_path), True, num_classes, settings.size, len(pairs), seconds)


def load_segmenter_file(path: str | Path, num_classes: int,
                        settings: SegmenterSettings | None = None) -> tuple[SegmenterNet, SegmenterInfo]:
    """A user's segmenter: a ``SegmenterNet`` state dict, or a dict holding it under ``"state_dict"`` (and
    optionally ``"settings": {"size": ...}``, the input side); width and classes come from the tensor shapes.
    ValueError when it does not fit (another net, or another class count than ``num_classes``)."""
    settings = settings or SegmenterSettings()
    start = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--segmenter {path} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError) as err:
        raise ValueError(f"--segmenter {path} is not a torch.save'd state dict ({err})") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or "head.weight" not in state or "enc1.0.weight" not in state:
        raise ValueError(f"--segmenter {path} holds no SegmenterNet state dict (util/segmenter.py; keys enc1.*, "
                         f"..., head.*)")
    width, classes = int(state["enc1.0.weight"].shape[0]), int(state["head.weight"].shape[0])
    if classes != num_classes:
        raise ValueError(f"--segmenter {path} predicts {classes} classes but the labels have {num_classes} "
                         f"(--label_nc); pass a segmenter trained for them")
    recorded = loaded.get("settings") if isinstance(loaded.get("settings"), dict) else {}
    side = int(recorded.get("size", settings.size))
    net = SegmenterNet(classes, width)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"--segmenter {path} does not fit SegmenterNet: {err}") from None
    net.eval()
    return net, SegmenterInfo(str(path), False, classes, side, loaded.get("train_images"),
                              time.perf_counter() - start)

