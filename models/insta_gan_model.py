"""InstaGAN: instance-aware unpaired translation with sequential mini-batch training (SPEC sections 2-5).

Naming follows CycleGAN: G_A maps A -> B and D_A judges domain B; G_B maps B -> A and D_B judges A.
Each data batch is translated in groups of ``ins_per`` instances (``ins_max / ins_per`` steps), with one
G and one D update per step. Aggregation is per sample, so any batch size works.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from util import distributed

from . import networks
from .base_model import IMAGE, MASKS, TwoDomainGANModel, Update
from .losses import context_preserving_loss, reconstruction_loss


def select_instances(masks: Tensor, ins_max: int, order: str) -> Tensor:
    """Keep at most ``ins_max`` instances per sample, largest first or shuffled; empty slots last (-1)."""
    batch, slots, height, width = masks.shape
    present = networks.instance_presence(masks)
    key = (masks + 1).sum((2, 3)) if order == "decreasing" else torch.rand(batch, slots).to(masks.device)
    key = key.masked_fill(~present, float("-inf"))
    index = key.argsort(dim=1, descending=True, stable=True)[:, :ins_max]
    kept = torch.gather(masks, 1, index[:, :, None, None].expand(-1, -1, height, width))
    if kept.shape[1] < ins_max:
        padding = kept.new_full((batch, ins_max - kept.shape[1], height, width), -1.0)
        kept = torch.cat([kept, padding], 1)
    return kept


def instance_groups(num_slots: int, ins_per: int) -> list[slice]:
    """Consecutive slot groups translated one step each: [0:ins_per], [ins_per:2*ins_per], ..."""
    return [slice(start, min(start + ins_per, num_slots)) for start in range(0, num_slots, ins_per)]


def active_samples(group_masks: Tensor, step: int) -> Tensor:
    """Indices of samples translated in this step: all at step 0 (so images without instances are still
    translated), afterwards only those with an instance in the group."""
    if step == 0:
        return torch.arange(group_masks.shape[0], device=group_masks.device)
    return networks.instance_presence(group_masks).any(1).nonzero().squeeze(1)


@torch.no_grad()
def translate_sequential(generator: torch.nn.Module, image: Tensor, masks: Tensor, ins_per: int) -> tuple[Tensor, Tensor]:
    """Test-time sequential translation (any number of slots): returns the final image and all masks."""
    image = image.clone()
    translated = torch.full_like(masks, -1.0)
    for step, group in enumerate(instance_groups(masks.shape[1], ins_per)):
        active = active_samples(masks[:, group], step)
        if active.numel() == 0:
            break
        fake_image, fake_masks = generator(image[active], masks[active, group])
        image[active] = fake_image.to(image.dtype)
        translated[active, group] = fake_masks.to(translated.dtype)
    return image, translated


@dataclass
class Direction:
    """Per-direction state of one sequential pass (``src`` -> ``dst``)."""

    src: str                 # "A" or "B": the input domain
    real_image: Tensor       # original input images (B, C, H, W)
    real_masks: Tensor       # selected input masks (B, ins_max, H, W)
    current_image: Tensor    # image carried over between steps (detached)
    fake_masks: Tensor       # translated masks so far, -1 where not yet translated
    rec_image: Tensor        # latest reconstruction of each sample (for the visuals)
    rec_masks: Tensor        # reconstructed masks so far


class InstaGanModel(TwoDomainGANModel):
    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="unaligned_seg" if is_train else "single_seg")
        g = parser.add_argument_group("instagan")
        g.add_argument("--ins_max", type=int, default=4, help="instances per image used (largest first)")
        g.add_argument("--ins_per", type=int, default=2, help="instances translated per sequential step")
        g.add_argument("--set_order", default="decreasing", choices=["decreasing", "random"],
                       help="order of instances: largest area first, or shuffled")
        if is_train:
            g.add_argument("--lambda_A", type=float, default=10.0, help="weight of cycle loss A -> B -> A")
            g.add_argument("--lambda_B", type=float, default=10.0, help="weight of cycle loss B -> A -> B")
            g.add_argument("--lambda_idt", type=float, default=1.0, help="identity weight, times lambda_A/B")
            g.add_argument("--lambda_ctx", type=float, default=1.0, help="context-preserving weight, times lambda_A/B")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        if opt.ins_max < 1 or opt.ins_per < 1:
            raise ValueError(f"--ins_max {opt.ins_max} and --ins_per {opt.ins_per} must be at least 1")
        if opt.ins_max % opt.ins_per:
            raise ValueError(f"--ins_per {opt.ins_per} must divide --ins_max {opt.ins_max} "
                             f"(e.g. --ins_per 2 --ins_max 4); --ins_per equal to --ins_max is the one-step variant")
        if opt.ins_max > opt.max_instances:
            raise ValueError(f"--ins_max {opt.ins_max} exceeds --max_instances {opt.max_instances}, the mask slots "
                             f"loaded per image; raise --max_instances")
        if opt.dataset_mode not in ("unaligned_seg", "single_seg"):
            raise ValueError(f"--model insta_gan needs masks: use --dataset_mode unaligned_seg (or single_seg "
                             f"at test time), not {opt.dataset_mode}")
        for name in ("lambda_A", "lambda_B", "lambda_idt", "lambda_ctx"):
            if getattr(opt, name, 0) < 0:
                raise ValueError(f"--{name} must not be negative (got {getattr(opt, name)})")

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "ctx_A", "D_B", "G_B", "cycle_B", "idt_B", "ctx_B"]
        self.visual_names = {
            "real_A_img": IMAGE, "real_A_seg": MASKS, "fake_B_img": IMAGE, "fake_B_seg": MASKS,
            "rec_A_img": IMAGE, "rec_A_seg": MASKS, "real_B_img": IMAGE, "real_B_seg": MASKS,
            "fake_A_img": IMAGE, "fake_A_seg": MASKS, "rec_B_img": IMAGE, "rec_B_seg": MASKS}
        self.result_roles = {"input_image": "real_A_img", "input_masks": "real_A_seg",
                             "output_image": "fake_B_img", "output_masks": "fake_B_seg"}
        self.build_networks(self._make_generator, self._make_discriminator)
        self.num_G_updates = 0
        self.with_reconstructions = self.isTrain or getattr(opt, "save_reconstructions", False)

    def _make_generator(self, input_nc: int, output_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_G("set_resnet", input_nc, output_nc, opt.ngf, opt.n_blocks_G, opt.norm,
                                 opt.init_type, opt.init_gain)

    def _make_discriminator(self, input_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_D("set_patch", input_nc, opt.ndf, opt.n_layers_D, opt.norm, opt.init_type,
                                 opt.init_gain, spectral_norm=True, init_D=opt.init_D)

    # ------------------------------------------------------------------ input
    def set_input(self, batch: dict) -> None:
        select = self.opt.set_order if self.isTrain else "decreasing"
        self.real_A_img = self.to_device(batch["A"])
        self.real_A_seg = select_instances(self.to_device(batch["A_seg"]), self.opt.ins_max, select)
        self.image_paths = batch["A_paths"]
        self.has_B = "B" in batch
        if self.has_B:
            self.real_B_img = self.to_device(batch["B"])
            self.real_B_seg = select_instances(self.to_device(batch["B_seg"]), self.opt.ins_max, select)

    # ------------------------------------------------------------------ test-time translation
    def forward(self) -> None:
        """Translate every instance sequentially without gradients (test.py). With one domain loaded
        (``single_seg``), ``--direction BtoA`` means the loaded images are translated by G_B."""
        ins_per = self.opt.ins_per
        reverse = not self.has_B and self.opt.direction == "BtoA"
        forward_G, backward_G = (self.netG_B, self.netG_A) if reverse else (self.netG_A, self.netG_B)
        self.fake_B_img, self.fake_B_seg = translate_sequential(forward_G, self.real_A_img, self.real_A_seg, ins_per)
        if self.with_reconstructions:
            self.rec_A_img, self.rec_A_seg = translate_sequential(backward_G, self.fake_B_img, self.fake_B_seg, ins_per)
        if self.has_B:
            self.fake_A_img, self.fake_A_seg = translate_sequential(self.netG_B, self.real_B_img, self.real_B_seg,
                                                                    ins_per)
            if self.with_reconstructions:
                self.rec_B_img, self.rec_B_seg = translate_sequential(self.netG_A, self.fake_A_img, self.fake_A_seg,
                                                                      ins_per)

    # ------------------------------------------------------------------ training
    def training_updates(self) -> Iterator[Update]:
        """Sequential mini-batch (SPEC section 5): per instance group, translate both directions, update G on
        their losses, then D; the translated image and masks carry over to the next group."""
        directions = [self._start_direction("A", self.real_A_img, self.real_A_seg),
                      self._start_direction("B", self.real_B_img, self.real_B_seg)]
        for step, group in enumerate(instance_groups(self.opt.ins_max, self.opt.ins_per)):
            steps = [s for s in (self._translate_group(d, step, group) for d in directions) if s is not None]
            if not distributed.any_rank(bool(steps), self.device):
                break
            generator_losses = {name: loss for s in steps for name, loss in self._generator_losses(s).items()}
            yield Update(self.optimizer_G, generator_losses)
            self.num_G_updates += 1
            yield Update(self.optimizer_D, {self._d_loss_name(s): self._discriminator_loss(s) for s in steps})
            for s in steps:
                self._carry_over(s)
        self._store_visuals(directions)

    @staticmethod
    def _start_direction(src: str, image: Tensor, masks: Tensor) -> Direction:
        empty = torch.full_like(masks, -1.0)
        return Direction(src, image, masks, image.detach().clone(), empty, image.detach().clone(), empty.clone())

    def _generators(self, src: str) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(forward generator, backward generator) for inputs of domain ``src``."""
        return (self.netG_A, self.netG_B) if src == "A" else (self.netG_B, self.netG_A)

    def _translate_group(self, d: Direction, step: int, group: slice) -> dict | None:
        """Forward pass of one group for one direction; None when no sample has an instance left."""
        active = active_samples(d.real_masks[:, group], step)
        if active.numel() == 0:
            return None
        forward_G, backward_G = self._generators(d.src)
        image, masks = d.current_image[active], d.real_masks[active, group]
        fake_image, fake_masks = forward_G(image, masks)
        rec_image, rec_masks = backward_G(fake_image, fake_masks)
        idt_image, idt_masks = backward_G(image, masks)
        masks_for_D = d.fake_masks[active].clone()
        masks_for_D[:, group] = fake_masks
        return {"direction": d, "active": active, "group": group, "image": image, "masks": masks,
                "fake_image": fake_image, "fake_masks": fake_masks, "rec_image": rec_image, "rec_masks": rec_masks,
                "idt_image": idt_image, "idt_masks": idt_masks, "masks_for_D": masks_for_D}

    def _discriminator_for(self, src: str) -> torch.nn.Module:
        """D judging the translation of domain-``src`` inputs (D_A judges B, CycleGAN's naming)."""
        return self.netD_A if src == "A" else self.netD_B

    @staticmethod
    def _d_loss_name(s: dict) -> str:
        return "D_A" if s["direction"].src == "A" else "D_B"

    def _generator_losses(self, s: dict) -> dict[str, Tensor]:
        """Adversarial + cycle + identity + context losses of one direction's current group."""
        opt = self.opt
        src = s["direction"].src
        dst = "B" if src == "A" else "A"
        lam = opt.lambda_A if src == "A" else opt.lambda_B
        netD = self._discriminator_for(src)
        return {
            f"G_{src}": self.criterion_gan(netD(s["fake_image"], s["masks_for_D"]), True),
            f"cycle_{src}": lam * reconstruction_loss(s["rec_image"], s["rec_masks"], s["image"], s["masks"]),
            # identity: the generator INTO src's domain leaves src inputs unchanged (CycleGAN's idt naming)
            f"idt_{dst}": lam * opt.lambda_idt * reconstruction_loss(s["idt_image"], s["idt_masks"], s["image"],
                                                                     s["masks"]),
            f"ctx_{src}": lam * opt.lambda_ctx * context_preserving_loss(s["image"], s["fake_image"], s["masks"],
                                                                         s["fake_masks"]),
        }

    def _discriminator_loss(self, s: dict) -> Tensor:
        """0.5 * (MSE(D(real), 1) + MSE(D(pooled fake), 0)); real = target-domain images with all their masks."""
        src = s["direction"].src
        netD = self._discriminator_for(src)
        real_image, real_masks = (self.real_B_img, self.real_B_seg) if src == "A" else (self.real_A_img, self.real_A_seg)
        pool = self.fake_B_pool if src == "A" else self.fake_A_pool
        fake = pool.query(torch.cat([s["fake_image"], s["masks_for_D"]], 1).detach())
        channels = s["fake_image"].shape[1]
        loss_real = self.criterion_gan(netD(real_image, real_masks), True)
        loss_fake = self.criterion_gan(netD(fake[:, :channels], fake[:, channels:]), False)
        return 0.5 * (loss_real + loss_fake)

    @staticmethod
    def _carry_over(s: dict) -> None:
        """The translated image feeds the next step; translated masks accumulate for D (both detached)."""
        d, active, group = s["direction"], s["active"], s["group"]
        dtype = d.current_image.dtype  # under --amp the networks' outputs are bf16/fp16
        d.current_image[active] = s["fake_image"].detach().to(dtype)
        d.fake_masks[active, group] = s["fake_masks"].detach().to(dtype)
        d.rec_masks[active, group] = s["rec_masks"].detach().to(dtype)
        d.rec_image[active] = s["rec_image"].detach().to(dtype)

    def _store_visuals(self, directions: list[Direction]) -> None:
        for d in directions:
            dst = "B" if d.src == "A" else "A"
            setattr(self, f"fake_{dst}_img", d.current_image)
            setattr(self, f"fake_{dst}_seg", d.fake_masks)
            setattr(self, f"rec_{d.src}_img", d.rec_image)
            setattr(self, f"rec_{d.src}_seg", d.rec_masks)

    # ------------------------------------------------------------------ resume
    def extra_state(self) -> dict:
        return {**super().extra_state(), "num_G_updates": self.num_G_updates}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.num_G_updates = state["num_G_updates"]
