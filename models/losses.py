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


def reconstruction_loss(image: Tensor, masks: Tensor, target_image: Tensor, target_masks: Tensor,
                        mask_weight: float = 1.0) -> Tensor:
    """L1 over image AND mask channels: |[x, a] - [x', a']|_1 (cycle and identity losses); ``mask_weight``
    scales the mask channels' part of that mean (1: the paper's loss)."""
    if mask_weight == 1.0:
        return F.l1_loss(torch.cat([image, masks], 1), torch.cat([target_image, target_masks], 1))
    image_channels, mask_channels = image.shape[1], masks.shape[1]
    return (image_channels * F.l1_loss(image, target_image)
            + mask_weight * mask_channels * F.l1_loss(masks, target_masks)) / (image_channels + mask_channels)


def merge_masks(masks: Tensor) -> Tensor:
    """Union of a mask set: clamp(sum_i (m_i + 1) / 2, 0, 1) * 2 - 1, shape (B, 1, H, W)."""
    return ((masks + 1) / 2).sum(1, keepdim=True).clamp(0, 1) * 2 - 1


def context_preserving_loss(real_image: Tensor, fake_image: Tensor, real_masks: Tensor, fake_masks: Tensor) -> Tensor:
    """mean(w * |x - y'|) with w = (1 - merge(a ∪ b')) / 2: only background of input AND output counts."""
    background = (1 - merge_masks(torch.cat([real_masks, fake_masks], 1))) / 2
    return (background * (real_image - fake_image).abs()).mean()


# ---------------------------------------------------------------------------------------------- pix2pixHD
# Losses of pix2pixHD (Wang et al., CVPR 2018) as the reference implementation (NVIDIA/pix2pixHD) weights them; the
# discriminator outputs are those of ``models.hd_networks.MultiscaleDiscriminator``: per scale, a list of features.

class MultiscaleGANLoss(GANLoss):
    """sum_k GAN(D_k(x)[-1], t): the GAN loss on the last output (the patch prediction) of each scale, summed."""

    def forward(self, outputs: list[list[Tensor]] | list[Tensor], target_is_real: bool) -> Tensor:
        if not outputs:
            raise ValueError("no discriminator outputs given")
        scales = [outputs] if isinstance(outputs[0], Tensor) else outputs  # one scale: its list of features
        loss = super().forward(scales[0][-1], target_is_real)
        for scale in scales[1:]:
            loss = loss + super().forward(scale[-1], target_is_real)
        return loss


def feature_matching_loss(fake_features: list[list[Tensor]], real_features: list[list[Tensor]], n_layers_D: int,
                          num_D: int) -> Tensor:
    """sum_k sum_i (4 / (n_layers_D + 1)) (1 / num_D) |D_k^(i)(fake) - D_k^(i)(real)|_1 over all but the last output.

    L1 is the mean over elements; the real features are detached (only the generator learns from this loss).
    ``lambda_feat`` (10 in the paper) is left to the caller."""
    if len(fake_features) != num_D or len(real_features) != num_D:
        raise ValueError(f"expected features of --num_D = {num_D} scales; got {len(fake_features)} fake and "
                         f"{len(real_features)} real")
    layer_weight, scale_weight = 4.0 / (n_layers_D + 1), 1.0 / num_D
    terms = []
    for fake_scale, real_scale in zip(fake_features, real_features):
        if len(fake_scale) != len(real_scale):
            raise ValueError(f"fake and real feature lists differ in length ({len(fake_scale)} vs {len(real_scale)})")
        terms += [F.l1_loss(fake, real.detach()) for fake, real in zip(fake_scale[:-1], real_scale[:-1])]
    if not terms:
        raise ValueError("no intermediate features to match: build the discriminator with get_intermediate_features")
    return layer_weight * scale_weight * torch.stack(terms).sum()


# torchvision's VGG19 ``features`` indices: the five slices end after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG_SLICE_ENDS = (2, 7, 12, 21, 30)
VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _load_vgg19_state_dict(vgg_weights: str) -> dict[str, Tensor]:
    """Read a torchvision VGG19 state dict (full model, or ``features`` only) from a local file; never downloads."""
    from pathlib import Path  # local: this section is appended to the module

    path = Path(vgg_weights)
    if not path.is_file():
        raise FileNotFoundError(f"--vgg_weights {str(path)!r} does not exist: give the path of a local torchvision "
                                f"VGG19 state dict (e.g. vgg19-dcbb9e9d.pth); it is never downloaded")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file gets the same clear message
        raise ValueError(f"--vgg_weights {str(path)!r} could not be read as a torch state dict: {error}") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"--vgg_weights {str(path)!r} is not a state dict (a mapping of names to tensors)")
    if state and all(key.split(".")[0].isdigit() for key in state):  # saved from ``vgg19().features``
        state = {f"features.{key}": value for key, value in state.items()}
    return state


class VGGPerceptualLoss(nn.Module):
    """sum_i w_i |VGG_i(x) - VGG_i(y)|_1 with VGG19 relu1_1..relu5_1 and w = 1/32, 1/16, 1/8, 1/4, 1.

    The VGG19 weights come from ``vgg_weights``, a local file: a torchvision ``vgg19`` state dict saved with
    ``torch.save`` (e.g. torchvision's own ``vgg19-dcbb9e9d.pth``; a state dict of ``vgg19().features`` alone
    also works). Nothing is downloaded. The network is frozen (``requires_grad`` False) and kept in eval mode; the
    target's features are computed without gradient.

    Input normalisation: images in [-1, 1] are mapped to [0, 1] and normalised with the ImageNet mean and std
    before VGG (``imagenet_normalize=True``, the default), because that is the input distribution torchvision's
    VGG19 weights were trained on. The reference feeds the [-1, 1] images to VGG unchanged; pass
    ``imagenet_normalize=False`` to reproduce that exactly (its loss scale differs: the per-layer weights were
    tuned with it, and the ImageNet-normalised inputs are about 2.2 times larger in magnitude).
    """

    def __init__(self, vgg_weights: str, imagenet_normalize: bool = True):
        super().__init__()
        from torchvision.models import vgg19  # local: only this loss needs torchvision

        state = _load_vgg19_state_dict(vgg_weights)
        features = vgg19(weights=None).features
        expected = {f"features.{key}": value for key, value in features.state_dict().items()}
        used = {key for key in expected if int(key.split(".")[1]) < VGG_SLICE_ENDS[-1]}
        unknown = sorted(key for key in state if key not in expected and not key.startswith("classifier."))
        missing = sorted(used - state.keys())
        wrong = sorted(key for key in used & state.keys() if state[key].shape != expected[key].shape)
        if unknown or missing or wrong:
            raise ValueError(f"--vgg_weights {str(vgg_weights)!r} is not a torchvision VGG19 state dict: "
                             f"unknown keys {unknown[:4]}, missing {missing[:4]}, wrong shapes {wrong[:4]}")
        features.load_state_dict({key[len("features."):]: value for key, value in state.items()
                                  if key.startswith("features.")}, strict=False)
        starts = (0, *VGG_SLICE_ENDS[:-1])
        self.slices = nn.ModuleList(nn.Sequential(*features[start:end]) for start, end in zip(starts, VGG_SLICE_ENDS))
        self.slices.requires_grad_(False)
        self.slices.eval()
        self.weights = VGG_LAYER_WEIGHTS
        self.imagenet_normalize = imagenet_normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        """The VGG stays in eval mode whatever the owner's mode."""
        super().train(mode)
        self.slices.eval()
        return self

    def features(self, image: Tensor) -> list[Tensor]:
        """VGG19 relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of a (B, 3, H, W) image in [-1, 1]."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"VGG loss expects (B, 3, H, W) images; got shape {tuple(image.shape)}")
        h = ((image + 1) / 2 - self.mean) / self.std if self.imagenet_normalize else image
        outputs = []
        for vgg_slice in self.slices:
            h = vgg_slice(h)
            outputs.append(h)
        return outputs

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        with torch.no_grad():
            real_features = self.features(real)
        return sum((w * F.l1_loss(f, r) for w, f, r in zip(self.weights, self.features(fake), real_features)),
                   fake.new_zeros(()))
