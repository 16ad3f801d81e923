"""The input of the paired label-to-image models (pix2pix, pix2pixHD) on the ``aligned`` and ``aligned_ab`` data.

``aligned`` samples hold a label map (ids, or an RGB image with ``--label_nc 0``), optionally an instance map,
and the real image; the generator's input is the one-hot label map (or the RGB image) with the instance
boundary map beside it unless ``--no_instance``. ``aligned_ab`` samples are plain image pairs (``A``, ``B``).
"""

from __future__ import annotations

import argparse
import colorsys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .hd_networks import instance_boundary_map, one_hot_labels


def uses_instances(opt: argparse.Namespace) -> bool:
    """Whether the input gets the boundary map: the ``aligned`` data without ``--no_instance``."""
    return opt.dataset_mode == "aligned" and not getattr(opt, "no_instance", False)


def label_input_nc(opt: argparse.Namespace) -> int:
    """Channels of the generator's input: ``--label_nc`` one-hot planes (``--input_nc`` for RGB input),
    plus the boundary map."""
    label_nc = getattr(opt, "label_nc", 0) if opt.dataset_mode == "aligned" else 0
    return (label_nc or opt.input_nc) + int(uses_instances(opt))


@dataclass
class PairedInput:
    """One batch on the model's device: the generator's input, the real image and what the pages show."""

    net_input: Tensor           # (B, label_input_nc, H, W)
    real: Tensor                # (B, output_nc, H, W) in [-1, 1]
    shown_label: Tensor         # (B, 3, H, W) in [-1, 1]: the label map in colour, or the input image
    boundary: Tensor | None     # (B, 1, H, W) in [-1, 1] when the boundary map is used
    inst: Tensor | None         # (B, 1, H, W) int64 instance ids when the batch has them
    paths: list[str]
    label: Tensor | None = None  # (B, 1, H, W) int64 label ids (``--label_nc`` > 0)


def paired_input(batch: dict, opt: argparse.Namespace, device: torch.device,
                 to_device: Callable[[Tensor], Tensor]) -> PairedInput:
    """Build the generator's input from an ``aligned`` or ``aligned_ab`` batch on ``device``; ``to_device``
    (the model's) moves the tensors the networks read, in the model's memory format."""
    if "label" not in batch:  # aligned_ab: A -> B
        image = to_device(batch["A"])
        return PairedInput(image, to_device(batch["B"]), image, None, None, list(batch["A_paths"]))
    label_nc = getattr(opt, "label_nc", 0)
    label = batch["label"].to(device)
    if label_nc:
        planes, shown = one_hot_labels(label, label_nc), colorize_labels(label, label_nc)
    else:
        planes = shown = label
    inst = batch["inst"].to(label.device) if "inst" in batch else None
    boundary = None
    if uses_instances(opt):
        if inst is None:
            raise ValueError(f"{opt.dataroot}: no {opt.phase}_inst folder, so there is no instance boundary map; "
                             f"add --no_instance (the model was built with it, so test with it too)")
        boundary = instance_boundary_map(inst) * 2 - 1
        planes = torch.cat([planes, boundary], 1)
    return PairedInput(to_device(planes), to_device(batch["image"]), to_device(shown),
                       boundary, inst, list(batch["paths"]), label if label_nc else None)


def colorize_labels(label: Tensor, label_nc: int) -> Tensor:
    """(B, 1, H, W) ids -> (B, 3, H, W) in [-1, 1]: id 0 black, the others hues a golden angle apart."""
    colours = [(0.0, 0.0, 0.0)] + [colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95) for i in range(1, label_nc)]
    palette = torch.tensor(colours, device=label.device)
    return palette[label.squeeze(1)].permute(0, 3, 1, 2) * 2 - 1
