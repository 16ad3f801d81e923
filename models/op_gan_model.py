"""OP-GAN (Xie et al., ECCV 2020): CycleGAN plus a self-supervised Siamese network S that keeps objects in place.

Each source image and its translation are cut into an ``--ss_grid`` x ``--ss_grid`` grid of patches, and
pairs of patches are drawn at random (``--ss_pairs`` per image and direction). S, shared by both patches of a
pair, gives each patch content features c and domain features d, and learns two tasks:

- content registration: for a pair from the same grid position of the source and of its translation, each
  c goes through a 1x1 convolution and is resized to the patch as an attention map; their pixel-wise MSE is
  the loss (pairs from other positions, or from one image, contribute zero); ``--ss_registration contrastive``
  (not in the paper) also pushes the maps of source and translation patches from different positions apart,
  by a hinge ``max(0, --ss_margin - MSE)``, so that maps which ignore content no longer score zero;
  ``--ss_registration nce`` (not in the paper) compares the content features themselves, location by location:
  each location of the translated patch must pick out the same location of the source patch among the
  others (a patch-wise InfoNCE, as in CUT, Park et al. 2020), so the translation must keep what tells its
  places apart;
- domain classification: the two d, concatenated, are classified as both patches from domain A, both from
  domain B, or one from each (cross-entropy); a translation counts as the domain it was translated to.

L_s (the sum of both, ``--ss_tasks`` keeps one) is optimised like the adversarial loss: G minimises
``lambda_ss * L_s`` with S and D fixed, then S minimises L_s with G fixed, beside D's update, with its own
optimiser. ``--lambda_ss 0`` builds no S and is CycleGAN exactly. Choices where the paper is silent are in
docs/op_gan.md.

    python train.py --model op_gan --dataroot ./datasets/shapes_style_64 --name style_opgan --ss_grid 2
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base_model import IMAGE, Update, validate_loss_weights
from .cycle_gan_model import CycleGanModel

SS_TASKS = ("both", "registration", "classification")
SS_REGISTRATIONS = ("paper", "contrastive", "nce")
NCE_TEMPERATURE = 0.07   # CUT's
NCE_LOCATIONS = 256      # feature-map locations compared per registered pair (all of them in a 16x16 map)
BOTH_A, BOTH_B, ONE_EACH = 0, 1, 2   # the three classes of the domain classification
# Share of source/translation pairs whose second patch is forced to the first's grid position: with independent
# positions only 1 in grid^2 such pairs would train the registration.
SAME_POSITION_SHARE = 0.5


class SiameseNetwork(nn.Module):
    """S: a convolutional trunk of ``n_layers`` convolutions (``stride`` 2: 4x4, halving the map each time, the
    paper's kind; ``stride`` 1: 3x3 at ``nf`` channels, keeping the patch's full resolution) and two 3x3 heads,
    content c and domain d (``nf`` channels each); a 1x1 convolution that turns c into a registration map, and a
    classifier of two concatenated d into the three pair classes."""

    def __init__(self, input_nc: int = 3, nf: int = 64, n_layers: int = 3, stride: int = 2):
        super().__init__()
        layers, channels = [], input_nc
        for index in range(n_layers):
            if stride == 2:
                width, conv = nf * min(2 ** index, 4), (4, 2, 1)
            else:
                width, conv = nf, (3, 1, 1)
            layers += [nn.Conv2d(channels, width, *conv), nn.LeakyReLU(0.2, True)]
            channels = width
        self.trunk = nn.Sequential(*layers)
        self.content = nn.Sequential(nn.Conv2d(channels, nf, 3, 1, 1), nn.LeakyReLU(0.2, True))
        self.domain = nn.Sequential(nn.Conv2d(channels, nf, 3, 1, 1), nn.LeakyReLU(0.2, True))
        self.registration = nn.Conv2d(nf, 1, 1)
        self.classifier = nn.Sequential(nn.Conv2d(2 * nf, nf, 3, 1, 1), nn.LeakyReLU(0.2, True),
                                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(nf, 3))

    def forward(self, patches: Tensor) -> tuple[Tensor, Tensor]:
        """(content c, domain d) of a batch of patches."""
        features = self.trunk(patches)
        return self.content(features), self.domain(features)

    def attention(self, content: Tensor, size: tuple[int, int]) -> Tensor:
        """The registration map of content features, resized to the patch, in (0, 1)."""
        return torch.sigmoid(F.interpolate(self.registration(content), size=size, mode="bilinear",
                                           align_corners=False))

    def classify(self, first: Tensor, second: Tensor) -> Tensor:
        """Logits of BOTH_A, BOTH_B, ONE_EACH for pairs of domain features."""
        return self.classifier(torch.cat([first, second], 1))


def grid_patches(images: Tensor, grid: int) -> Tensor:
    """(B, C, H, W) -> (B, grid * grid, C, H / grid, W / grid), row by row."""
    batch, channels, height, width = images.shape
    h, w = height // grid, width // grid
    patches = images.reshape(batch, channels, grid, h, grid, w).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(batch, grid * grid, channels, h, w)


def from_grid(patches: Tensor, grid: int) -> Tensor:
    """The inverse of :func:`grid_patches`."""
    batch, _, channels, h, w = patches.shape
    images = patches.reshape(batch, grid, grid, channels, h, w).permute(0, 3, 1, 4, 2, 5)
    return images.reshape(batch, channels, grid * h, grid * w)


@dataclass
class PairDraw:
    """Which patches make each pair: ``kind`` 0 both from the source, 1 both from the translation, 2 one of
    each (source first); grid positions ``first`` and ``second``; all (B, pairs)."""

    kind: Tensor
    first: Tensor
    second: Tensor

    @classmethod
    def sample(cls, batch: int, pairs: int, positions: int, device: torch.device) -> PairDraw:
        kind = torch.randint(3, (batch, pairs), device=device)
        first = torch.randint(positions, (batch, pairs), device=device)
        second = torch.randint(positions, (batch, pairs), device=device)
        same = (kind == 2) & (torch.rand(batch, pairs, device=device) < SAME_POSITION_SHARE)
        return cls(kind, first, torch.where(same, first, second))

    def registered(self) -> Tensor:
        """Pairs that train the registration: source and translation patches at the same position."""
        return (self.kind == 2) & (self.first == self.second)

    def displaced(self) -> Tensor:
        """Source and translation patches at different positions (the contrastive registration's negatives)."""
        return (self.kind == 2) & (self.first != self.second)


def registration_loss(first_maps: Tensor, second_maps: Tensor, draw: PairDraw, margin: float | None) -> Tensor:
    """Mean over all drawn pairs: the MSE of the two attention maps for same-position pairs, and with a
    ``margin`` (contrastive) max(0, margin - MSE) for displaced pairs; every other pair contributes zero."""
    mse = (first_maps - second_maps).pow(2).flatten(1).mean(1)     # L_reg = mean_pixels (a1 - a2)^2
    per_pair = mse * draw.registered().flatten().float()
    if margin is not None:                                         # L_apart = max(0, margin - mean (a1 - a2)^2)
        per_pair = per_pair + F.relu(margin - mse) * draw.displaced().flatten().float()
    return per_pair.mean()


def nce_registration_loss(first: Tensor, second: Tensor, draw: PairDraw, locations: int = NCE_LOCATIONS,
                          temperature: float = NCE_TEMPERATURE) -> Tensor:
    """Mean over all drawn pairs: for a source patch and its translation at the same position, the InfoNCE of
    their content features (B*pairs, C, h, w) over up to ``locations`` random locations; every other pair
    contributes zero."""
    registered = draw.registered().flatten()
    source, translated = first[registered].flatten(2).float(), second[registered].flatten(2).float()
    chosen = torch.randperm(source.shape[-1], device=source.device)[:locations]
    source = F.normalize(source[..., chosen], dim=1)
    translated = F.normalize(translated[..., chosen], dim=1)
    logits = torch.einsum("rck,rcl->rkl", translated, source) / temperature
    same_place = torch.arange(logits.shape[-1], device=logits.device).expand(logits.shape[:2])
    per_pair = F.cross_entropy(logits.transpose(1, 2), same_place, reduction="none").mean(1)
    return per_pair.sum() / registered.numel()     # L_nce = -log softmax_l(t_k . s_l / tau)[l = k]


def pick(patches: Tensor, positions: Tensor) -> Tensor:
    """(B, P, C, h, w) patches at (B, pairs) positions -> (B * pairs, C, h, w)."""
    index = positions[..., None, None, None].expand(-1, -1, *patches.shape[2:])
    return patches.gather(1, index).flatten(0, 1)


class OpGanModel(CycleGanModel):
    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser = CycleGanModel.modify_commandline_options(parser, is_train)
        if is_train:
            g = parser.add_argument_group("op-gan")
            g.add_argument("--lambda_ss", type=float, default=1.0,
                           help="weight of the self-supervised loss L_s in G's update (0: CycleGAN exactly)")
            g.add_argument("--ss_grid", type=int, default=3, help="patches per side (the paper: 3)")
            g.add_argument("--ss_pairs", type=int, default=4, help="patch pairs per image and direction per step")
            g.add_argument("--ss_nf", type=int, default=64, help="channels of S's content and domain features")
            g.add_argument("--ss_layers", type=int, default=3, help="convolutions of S's trunk")
            g.add_argument("--ss_stride", type=int, default=2, choices=(1, 2),
                           help="stride of S's trunk convolutions: 2 halves the map at each (the paper's kind), "
                                "1 keeps S's maps at the patch's full resolution (not in the paper)")
            g.add_argument("--ss_tasks", default="both", choices=SS_TASKS,
                           help="S's tasks: both, or one of them (ablations)")
            g.add_argument("--ss_registration", default="paper", choices=SS_REGISTRATIONS,
                           help="paper: only same-position pairs count; contrastive (not in the paper): maps of "
                                "different positions are also pushed apart, by --ss_margin; nce (not in the paper): "
                                "content features compared location by location (patch-wise InfoNCE)")
            g.add_argument("--ss_margin", type=float, default=0.1,
                           help="contrastive registration: the MSE between maps of different positions it asks for")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        CycleGanModel.validate_options(opt)
        if not getattr(opt, "isTrain", False):
            return
        validate_loss_weights(opt, ("lambda_ss", "ss_margin"))
        if opt.ss_pairs < 1 or opt.ss_nf < 1 or opt.ss_layers < 1 or opt.ss_grid < 1:
            raise ValueError("--ss_pairs, --ss_nf, --ss_layers and --ss_grid must be at least 1")
        validate_grid(opt.crop_size_h, opt.crop_size_w, opt.ss_grid, opt.ss_layers, opt.ss_stride)

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.use_ss = self.isTrain and opt.lambda_ss > 0
        if not self.use_ss:
            return
        self.model_names.append("S")
        self.netS = SiameseNetwork(opt.input_nc, opt.ss_nf, opt.ss_layers, opt.ss_stride).to(self.device)
        self.siamese = self.netS   # its attention and classify heads; --compile wraps netS, whose forward is the trunk
        self.optimizer_S = self.make_adam(self.netS.parameters())
        self.optimizers.append(self.optimizer_S)
        self.loss_names += ["ss_A", "ss_B", "S_reg", "S_cls"]
        self.visual_names.update({"grid_A": IMAGE, "attention_A": IMAGE, "attention_fake_B": IMAGE})

    def training_updates(self) -> Iterator[Update]:
        """CycleGAN's G update with lambda_ss * L_s added (S fixed), its D update, then S's update (G fixed)."""
        if not self.use_ss:
            yield from super().training_updates()
            return
        draws = {}
        for update in super().training_updates():
            if update.optimizer is self.optimizer_G:      # the translations exist from here on
                draws = {src: PairDraw.sample(self.real_A_img.shape[0], self.opt.ss_pairs, self.opt.ss_grid ** 2,
                                              self.device) for src in "AB"}
                for src, dst in (("A", "B"), ("B", "A")):
                    reg, cls = self.self_supervised_losses(src, getattr(self, f"fake_{dst}_img"), draws[src])
                    update.losses[f"ss_{src}"] = self.opt.lambda_ss * (reg + cls)
            yield update
        terms = [self.self_supervised_losses(src, getattr(self, f"fake_{dst}_img").detach(), draws[src])
                 for src, dst in (("A", "B"), ("B", "A"))]    # L_s again, G fixed
        yield Update(self.optimizer_S, {"S_reg": sum(t[0] for t in terms), "S_cls": sum(t[1] for t in terms)})

    def self_supervised_losses(self, src: str, translation: Tensor, draw: PairDraw) -> tuple[Tensor, Tensor]:
        """(registration, classification) losses of the drawn pairs of source ``src`` and its translation."""
        grid = self.opt.ss_grid
        source = grid_patches(getattr(self, f"real_{src}_img"), grid)
        translated = grid_patches(translation, grid)
        first = self._first_patches(source, translated, draw)
        second = self._second_patches(source, translated, draw)
        content, domain = self.netS(torch.cat([first, second]))
        pairs = first.shape[0]
        zero = content.new_zeros(()).float()
        registration = classification = zero
        if self.opt.ss_tasks in ("both", "registration"):
            if self.opt.ss_registration == "nce":
                registration = nce_registration_loss(content[:pairs], content[pairs:], draw)
            else:
                maps = self.siamese.attention(content, tuple(first.shape[-2:])).float()
                margin = self.opt.ss_margin if self.opt.ss_registration == "contrastive" else None
                registration = registration_loss(maps[:pairs], maps[pairs:], draw, margin)
        if self.opt.ss_tasks in ("both", "classification"):
            labels = self.pair_labels(src, draw.kind).flatten()
            logits = self.siamese.classify(domain[:pairs], domain[pairs:]).float()
            classification = F.cross_entropy(logits, labels)          # -log p(class of the pair)
        return registration, classification

    @staticmethod
    def _first_patches(source: Tensor, translated: Tensor, draw: PairDraw) -> Tensor:
        from_translation = (draw.kind == 1).flatten()[:, None, None, None]
        return torch.where(from_translation, pick(translated, draw.first), pick(source, draw.first))

    @staticmethod
    def _second_patches(source: Tensor, translated: Tensor, draw: PairDraw) -> Tensor:
        from_source = (draw.kind == 0).flatten()[:, None, None, None]
        return torch.where(from_source, pick(source, draw.second), pick(translated, draw.second))

    @staticmethod
    def pair_labels(src: str, kind: Tensor) -> Tensor:
        """Class of each pair: the source's domain, the translation's (the other one), or one of each."""
        source_class, translated_class = (BOTH_A, BOTH_B) if src == "A" else (BOTH_B, BOTH_A)
        labels = torch.full_like(kind, ONE_EACH)
        labels[kind == 0] = source_class
        labels[kind == 1] = translated_class
        return labels

    # ------------------------------------------------------------------ visuals
    def get_current_visuals(self) -> OrderedDict:
        """Training adds the source's patch grid and S's registration maps of every patch of the source and of
        its translation (white: high attention), made when first asked."""
        if self.use_ss and hasattr(self, "fake_B_img") and not hasattr(self, "grid_A"):
            with torch.no_grad():
                real, fake = self.real_A_img.detach().float(), self.fake_B_img.detach().float()   # bf16 under --amp
                self.grid_A = draw_grid(real, self.opt.ss_grid)
                self.attention_A = self.attention_image(real)
                self.attention_fake_B = self.attention_image(fake)
        return super().get_current_visuals()

    def attention_image(self, images: Tensor) -> Tensor:
        grid = self.opt.ss_grid
        patches = grid_patches(images, grid)
        content, _ = self.netS(patches.flatten(0, 1))
        maps = self.siamese.attention(content, tuple(patches.shape[-2:])).float()
        maps = maps.reshape(*patches.shape[:2], 1, *patches.shape[-2:])
        return (from_grid(maps, grid) * 2 - 1).expand(-1, 3, -1, -1)


def draw_grid(images: Tensor, grid: int) -> Tensor:
    """Images with the patch grid drawn in white lines."""
    shown = images.float().clone()
    height, width = shown.shape[-2:]
    for index in range(1, grid):
        shown[..., index * height // grid, :] = 1.0
        shown[..., :, index * width // grid] = 1.0
    return shown


def validate_grid(height: int, width: int, grid: int, layers: int, stride: int = 2) -> None:
    """The crop must split into grid x grid equal patches, each large enough for S's trunk."""
    need = 2 ** (layers + 1) if stride == 2 else 2
    if height % grid or width % grid:
        working = [g for g in range(2, 9) if height % g == 0 and width % g == 0 and min(height, width) // g >= need]
        sizes = sorted({height - height % grid, height - height % grid + grid})
        raise ValueError(f"--ss_grid {grid} does not divide the {width}x{height} crop into equal patches: use "
                         f"--ss_grid {' or '.join(map(str, working)) or '1'}, or a --crop_size that is a multiple "
                         f"of {grid} (e.g. {' or '.join(map(str, sizes))})")
    side = min(height, width) // grid
    if side < need:
        raise ValueError(f"--ss_grid {grid} leaves {side}-pixel patches, too small for S with --ss_layers {layers} "
                         f"--ss_stride {stride} (it needs {need}): use a smaller --ss_grid or --ss_layers")
