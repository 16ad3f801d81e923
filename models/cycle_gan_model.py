"""CycleGAN baseline (Zhu et al. 2017): images only, same training loop and options as InstaGAN.

Naming: G_A maps A -> B, D_A judges domain B. On a mask dataset (``unaligned_seg``) the masks are
ignored, so both models can be trained and compared on the same data folder.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import torch
from torch.nn import functional as F

from . import networks
from .base_model import IMAGE, TwoDomainGANModel, Update


class CycleGanModel(TwoDomainGANModel):
    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="unaligned" if is_train else "single_seg")
        if is_train:
            g = parser.add_argument_group("cyclegan")
            g.add_argument("--lambda_A", type=float, default=10.0, help="weight of cycle loss A -> B -> A")
            g.add_argument("--lambda_B", type=float, default=10.0, help="weight of cycle loss B -> A -> B")
            g.add_argument("--lambda_idt", type=float, default=0.5, help="identity weight, times lambda_A/B")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        for name in ("lambda_A", "lambda_B", "lambda_idt"):
            if getattr(opt, name, 0) < 0:
                raise ValueError(f"--{name} must not be negative (got {getattr(opt, name)})")

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
        self.visual_names = {name: IMAGE for name in ("real_A_img", "fake_B_img", "rec_A_img", "real_B_img",
                                                      "fake_A_img", "rec_B_img")}
        self.result_roles = {"input_image": "real_A_img", "output_image": "fake_B_img"}
        self.build_networks(self._make_generator, self._make_discriminator)

    def _make_generator(self, input_nc: int, output_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_G("resnet", input_nc, output_nc, opt.ngf, opt.n_blocks_G, opt.norm,
                                 opt.init_type, opt.init_gain)

    def _make_discriminator(self, input_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_D("patch", input_nc, opt.ndf, opt.n_layers_D, opt.norm, opt.init_type,
                                 opt.init_gain, spectral_norm=False, init_D="same_as_G")

    def set_input(self, batch: dict) -> None:
        self.real_A_img = self.to_device(batch["A"])
        self.image_paths = batch["A_paths"]
        self.has_B = "B" in batch
        if self.has_B:
            self.real_B_img = self.to_device(batch["B"])

    def forward(self) -> None:
        reverse = not self.has_B and self.opt.direction == "BtoA"
        forward_G, backward_G = (self.netG_B, self.netG_A) if reverse else (self.netG_A, self.netG_B)
        self.fake_B_img = forward_G(self.real_A_img)
        self.rec_A_img = backward_G(self.fake_B_img)
        if self.has_B:
            self.fake_A_img = self.netG_B(self.real_B_img)
            self.rec_B_img = self.netG_A(self.fake_A_img)

    def training_updates(self) -> Iterator[Update]:
        """One G update on both directions' losses, then one D update on the pooled fakes."""
        self.forward()
        yield Update(self.optimizer_G, self.generator_losses())
        yield Update(self.optimizer_D, {
            "D_A": self.discriminator_loss(self.netD_A, self.real_B_img, self.fake_B_pool.query(self.fake_B_img)),
            "D_B": self.discriminator_loss(self.netD_B, self.real_A_img, self.fake_A_pool.query(self.fake_A_img))})

    def generator_losses(self) -> dict[str, torch.Tensor]:
        """GAN + cycle + identity losses of both directions (CycleGAN's weights)."""
        opt = self.opt
        idt = opt.lambda_idt
        return {
            "G_A": self.criterion_gan(self.netD_A(self.fake_B_img), True),          # (D_A(G_A(a)) - 1)^2
            "G_B": self.criterion_gan(self.netD_B(self.fake_A_img), True),
            "cycle_A": opt.lambda_A * F.l1_loss(self.rec_A_img, self.real_A_img),  # |G_B(G_A(a)) - a|_1
            "cycle_B": opt.lambda_B * F.l1_loss(self.rec_B_img, self.real_B_img),
            "idt_A": opt.lambda_B * idt * F.l1_loss(self.netG_A(self.real_B_img), self.real_B_img),  # |G_A(b) - b|
            "idt_B": opt.lambda_A * idt * F.l1_loss(self.netG_B(self.real_A_img), self.real_A_img),
        }

    def discriminator_loss(self, netD: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """0.5 * (GAN(D(real), 1) + GAN(D(fake.detach()), 0))."""
        return 0.5 * (self.criterion_gan(netD(real), True) + self.criterion_gan(netD(fake.detach()), False))
