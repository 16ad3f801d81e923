"""Mask predictor: an image in, its instance masks out, for translating images that come without masks.

A U-Net (pix2pix's, models/networks.py) maps the image to two maps in [-1, 1]: the foreground (any
instance) and the touching boundary (instance pixels within ``--boundary_width`` pixels of another
instance). Each is learnt with a pixel-wise binary cross-entropy against the masks of the training folder;
boundary pixels are rare, so they weigh ``BOUNDARY_POSITIVE_WEIGHT`` times. At test time the maps are
thresholded at 0 (probability 1/2) and split into instances by connected components of the foreground off
the boundary (util/instances.py), so objects that touch come out separate (``--boundary_width 0``: foreground
only, the ablation). Why this design, rather than a
detector such as Mask R-CNN, is in docs/mask_prediction.md.

    python train.py --model mask_predictor --dataroot ./datasets/shapes_64 --name shapes_masks --mask_domains AB
    python -m scripts.predict_masks --name shapes_masks --images photos/ --out photos_seg/
    python test.py --name shapes_instagan --predict_masks shapes_masks   # InstaGAN on images without masks
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from util.instances import split_instances

from . import networks
from .base_model import IMAGE, MASKS, BaseModel, Update, validate_loss_weights

# Share of touching-boundary pixels is small (a few per cent of an image at most): their errors count this
# many times, or the map learns to stay empty.
BOUNDARY_POSITIVE_WEIGHT = 5.0
# Instance colours of the overlay visual (RGB in [0, 1]); instance i takes colour i modulo the list.
OVERLAY_COLOURS = ((0.9, 0.1, 0.1), (0.1, 0.7, 0.1), (0.1, 0.3, 0.95), (0.95, 0.8, 0.1), (0.8, 0.1, 0.8),
                   (0.1, 0.8, 0.8), (1.0, 0.5, 0.0), (0.5, 0.3, 0.1))


def touching_boundary(masks: Tensor, width: int) -> Tensor:
    """(B, K, H, W) boolean instance masks -> (B, 1, H, W): pixels of an instance within ``width`` pixels
    (a square neighbourhood) of another instance's pixel."""
    per_pixel = masks.float().sum(1, keepdim=True)
    others = (per_pixel - masks.float()).clamp(max=1)               # other instances, seen from each slot
    near_others = F.max_pool2d(others, 2 * width + 1, stride=1, padding=width)
    return (masks & (near_others > 0)).any(1, keepdim=True)


def weighted_bce(prediction: Tensor, target: Tensor, positive_weight: float = 1.0) -> Tensor:
    """-mean(w y log p + (1 - y) log(1 - p)), p = (prediction + 1) / 2; in float32 (safe under autocast)."""
    probability = ((prediction.float() + 1) / 2).clamp(1e-6, 1 - 1e-6)
    target = target.float()
    return -(positive_weight * target * probability.log() + (1 - target) * (1 - probability).log()).mean()


class MaskPredictorModel(BaseModel):
    # Architecture and how maps become masks: a checkpoint is used with the values it was trained with.
    inherited_from_training = ("num_downs", "boundary_width", "min_instance_area")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="masks" if is_train else "single", norm="batch", no_dropout=True)
        g = parser.add_argument_group("mask predictor")
        g.add_argument("--num_downs", type=int, default=0,
                       help="U-Net levels; 0: down to 1x1 at the bottom (log2 of the crop size)")
        g.add_argument("--boundary_width", type=int, default=1,
                       help="pixels of an instance within this distance of another instance form the touching "
                            "boundary the network learns (what separates touching objects); 0: no boundary map, "
                            "the foreground alone is split into instances")
        g.add_argument("--min_instance_area", type=int, default=8,
                       help="predicted instances smaller than this many pixels are dropped as noise")
        if is_train:
            parser.set_defaults(batch_size=8)
            g.add_argument("--lambda_boundary", type=float, default=1.0,
                           help="weight of the boundary map's cross-entropy (the foreground's is 1)")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        if opt.dataset_mode not in ("masks", "single", "single_seg"):
            raise ValueError(f"--model mask_predictor reads images (and masks to learn from): use --dataset_mode "
                             f"masks to train, single or single_seg to test, not {opt.dataset_mode}")
        if opt.num_downs == 0:
            opt.num_downs = networks.unet_depth(opt.crop_size_h, opt.crop_size_w)
        if opt.boundary_width < 0 or opt.min_instance_area < 1:
            raise ValueError(f"--boundary_width must be at least 0 (got {opt.boundary_width}) and "
                             f"--min_instance_area at least 1 (got {opt.min_instance_area})")
        if getattr(opt, "isTrain", False):
            validate_loss_weights(opt, ("lambda_boundary",))
            if opt.lambda_boundary == 0 and opt.boundary_width > 0:
                raise ValueError("--lambda_boundary 0 would leave the boundary map untrained, and it still splits "
                                 "instances at test time: use --boundary_width 0 to learn the foreground only")

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.model_names = ["G"]
        self.loss_names = ["foreground", "boundary"]
        # Visuals named by the folder of the input (A or B; training shows its samples as A), so that test.py's
        # pages and files for folder A and folder B do not overwrite each other.
        self.visual_names = {}
        for letter in ("A", "B"):
            self.visual_names.update({f"real_{letter}": IMAGE, f"real_{letter}_seg": MASKS,
                                      f"foreground_{letter}": IMAGE, f"boundary_{letter}": IMAGE,
                                      f"overlay_{letter}": IMAGE, f"pred_{letter}_seg": MASKS})
        self.result_roles = {f"{letter}to{other}": {"input_image": f"real_{letter}", "output_image": f"overlay_{letter}",
                                                    "output_masks": f"pred_{letter}_seg"}
                             for letter, other in (("A", "B"), ("B", "A"))}
        self.letter = "A"
        self.netG = networks.define_G("unet", opt.input_nc, 2, opt.ngf, norm=opt.norm, init_type=opt.init_type,
                                      init_gain=opt.init_gain, num_downs=opt.num_downs,
                                      dropout=not opt.no_dropout).to(self.device)
        self.maps: Tensor | None = None
        if self.isTrain:
            self.optimizer_G = self.make_adam(self.netG.parameters())
            self.optimizers = [self.optimizer_G]

    def set_input(self, batch: dict) -> None:
        self.clear_visuals()
        self.maps = None
        self.letter = "A" if self.isTrain else batch.get("domain", ["A"])[0]
        self.image = self.to_device(batch["A"])
        setattr(self, f"real_{self.letter}", self.image)
        self.true_masks = self.to_device(batch["A_seg"]) if "A_seg" in batch else None
        if self.true_masks is not None:
            setattr(self, f"real_{self.letter}_seg", self.true_masks)
        self.image_paths = list(batch["A_paths"])

    def forward(self) -> None:
        self.maps = self.netG(self.image)

    def training_updates(self) -> Iterator[Update]:
        self.forward()
        instances = self.true_masks > 0
        losses = {"foreground": weighted_bce(self.maps[:, :1], instances.any(1, keepdim=True))}  # BCE(p_fg, fg)
        if self.opt.boundary_width > 0:
            boundary = touching_boundary(instances, self.opt.boundary_width)
            losses["boundary"] = self.opt.lambda_boundary * weighted_bce(  # lambda BCE_w(p_b, touching boundary)
                self.maps[:, 1:], boundary, BOUNDARY_POSITIVE_WEIGHT)
        yield Update(self.optimizer_G, losses)

    # ------------------------------------------------------------------ from maps to instance masks
    def get_current_visuals(self) -> OrderedDict:
        """The maps, the predicted instances and their overlay, split from the last output when first asked
        (so training steps never wait for the split)."""
        if self.maps is not None and not hasattr(self, f"pred_{self.letter}_seg"):
            self._split_maps()
        return super().get_current_visuals()

    def instances_of(self, maps: np.ndarray, min_area: int) -> list[np.ndarray]:
        """Boolean (H, W) instance masks of one image's (2, H, W) maps, largest first: both thresholded at 0
        (no boundary with --boundary_width 0) and split by util.instances.split_instances."""
        boundary = maps[1] > 0 if self.opt.boundary_width > 0 else np.zeros(maps.shape[1:], bool)
        return split_instances(maps[0] > 0, boundary, min_area)

    def predict(self, images: Tensor, sizes: list[tuple[int, int]]) -> list[list[np.ndarray]]:
        """Instance masks of ``images`` (a batch at the trained size, in [-1, 1]), each at its own (H, W) of
        ``sizes``: the maps are resized there before they are split, and ``--min_instance_area`` scales along."""
        with torch.no_grad():
            maps = self.netG(self.to_device(images)).float()
        trained_area = maps.shape[-2] * maps.shape[-1]
        found = []
        for image_maps, size in zip(maps, sizes, strict=True):
            if tuple(image_maps.shape[-2:]) != tuple(size):
                image_maps = F.interpolate(image_maps[None], size=size, mode="bilinear", align_corners=False)[0]
            min_area = max(1, round(self.opt.min_instance_area * size[0] * size[1] / trained_area))
            found.append(self.instances_of(image_maps.cpu().numpy(), min_area))
        return found

    def _split_maps(self) -> None:
        batch, _, height, width = self.maps.shape
        slots = self.opt.max_instances
        masks = torch.full((batch, slots, height, width), -1.0)
        ids = torch.full((batch, slots), -1, dtype=torch.long)
        maps = self.maps.detach().float().cpu().numpy()
        for index, image_maps in enumerate(maps):
            instances = self.instances_of(image_maps, self.opt.min_instance_area)
            for k, mask in enumerate(instances[:slots]):
                masks[index, k] = torch.from_numpy(mask).float() * 2 - 1
                ids[index, k] = k
        masks = masks.to(self.maps.device)
        letter = self.letter
        setattr(self, f"pred_{letter}_seg", masks)
        self.instance_ids = {f"pred_{letter}_seg": ids}
        setattr(self, f"foreground_{letter}", self.maps[:, :1].detach())
        setattr(self, f"boundary_{letter}", self.maps[:, 1:].detach())
        setattr(self, f"overlay_{letter}", overlay(self.image.detach(), masks))


def overlay(images: Tensor, masks: Tensor) -> Tensor:
    """Images in [-1, 1] with each instance (masks (B, K, H, W), > 0 inside) tinted half-way to its colour."""
    shown = images[:, :3].float().clone()
    if shown.shape[1] == 1:
        shown = shown.expand(-1, 3, -1, -1).clone()
    for k in range(masks.shape[1]):
        colour = torch.tensor(OVERLAY_COLOURS[k % len(OVERLAY_COLOURS)], device=images.device).view(1, 3, 1, 1)
        inside = (masks[:, k:k + 1] > 0).to(shown.dtype)
        shown = shown * (1 - 0.5 * inside) + (colour * 2 - 1) * 0.5 * inside
    return shown
