"""Losses of InstaGAN (docs/method.md, "Losses") as small modules and functions."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class GANLoss(nn.Module):
    """LSGAN: mean((D(x) - t)^2); vanilla: BCE(sigmoid(D(x)), t); t = 1 for real, 0 for fake."""

    def __init__(self, gan_mode: str = "lsgan"):
        super().__init__()
        if gan_mode not in ("lsgan", "vanilla"):
            raise ValueError(f"--gan_mode {gan_mode!r}: choose lsgan or vanilla")
        self.gan_mode = gan_mode

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.gan_mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)


def reconstruction_loss(image: Tensor, masks: Tensor, target_image: Tensor, target_masks: Tensor) -> Tensor:
    """L1 over image AND mask channels: |[x, a] - [x', a']|_1 (cycle and identity losses)."""
    return F.l1_loss(torch.cat([image, masks], 1), torch.cat([target_image, target_masks], 1))


def merge_masks(masks: Tensor) -> Tensor:
    """Union of a mask set: clamp(sum_i (m_i + 1) / 2, 0, 1) * 2 - 1, shape (B, 1, H, W)."""
    return ((masks + 1) / 2).sum(1, keepdim=True).clamp(0, 1) * 2 - 1


def context_preserving_loss(real_image: Tensor, fake_image: Tensor, real_masks: Tensor, fake_masks: Tensor) -> Tensor:
    """mean(w * |x - y'|) with w = (1 - merge(a ∪ b')) / 2: only background of input AND output counts."""
    background = (1 - merge_masks(torch.cat([real_masks, fake_masks], 1))) / 2
    return (background * (real_image - fake_image).abs()).mean()
