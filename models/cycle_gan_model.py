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
from .base_model import IMAGE, TwoDomainGANModel, Update, validate_loss_weights

# upstream: the CycleGAN code base; authors: how the InstaGAN authors ran their CycleGAN baseline.
VARIANTS = {"upstream": {"lambda_idt": 0.5, "spectral_norm_D": False},
            "authors": {"lambda_idt": 1.0, "spectral_norm_D": True}}


class CycleGanModel(TwoDomainGANModel):
    inherited_from_training = ("num_D",)

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="unaligned" if is_train else "single")
        TwoDomainGANModel.add_multiscale_options(parser, is_train)
        if is_train:
            g = parser.add_argument_group("cyclegan")
            g.add_argument("--lambda_A", type=float, default=10.0, help="weight of cycle loss A -> B -> A")
            g.add_argument("--lambda_B", type=float, default=10.0, help="weight of cycle loss B -> A -> B")
            g.add_argument("--variant", default="upstream", choices=list(VARIANTS),
                           help="upstream: Zhu et al.'s CycleGAN (identity weight 0.5, plain PatchGAN D); authors: "
                                "the InstaGAN authors' CycleGAN runs (identity weight 1.0, spectrally normalised D)")
            g.add_argument("--lambda_idt", type=float, default=None,
                           help="identity weight, times lambda_A/B (default: 0.5 upstream, 1.0 authors)")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        if getattr(opt, "isTrain", False) and opt.lambda_idt is None:
            opt.lambda_idt = VARIANTS[opt.variant]["lambda_idt"]
        validate_loss_weights(opt, ("lambda_A", "lambda_B", "lambda_idt"))
        TwoDomainGANModel.validate_multiscale_options(opt)

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.loss_names = self.multiscale_loss_names(["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B",
                                                      "idt_B"])
        self.visual_names = {name: IMAGE for name in ("real_A_img", "fake_B_img", "rec_A_img", "real_B_img",
                                                      "fake_A_img", "rec_B_img")}
        self.result_roles = self.both_directions_roles(with_masks=False)
        self.build_networks(self._make_generator, self._make_discriminator)

    def _make_generator(self, input_nc: int, output_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_G("resnet", input_nc, output_nc, opt.ngf, opt.n_blocks_G, opt.norm,
                                 opt.init_type, opt.init_gain)

    def _make_discriminator(self, input_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_D("patch", input_nc, opt.ndf, opt.n_layers_D, opt.norm, opt.init_type,
                                 opt.init_gain, spectral_norm=VARIANTS[opt.variant]["spectral_norm_D"],
                                 init_D="same_as_G")

    def set_input(self, batch: dict) -> None:
        """Training: both domains (``A``, ``B``). Testing (``single``): one folder, named by ``batch["domain"]``."""
        self.clear_visuals()
        self.image_paths = batch["A_paths"]
        self.has_B = "B" in batch
        self.source = "A" if self.has_B else batch.get("domain", ["A"])[0]
        setattr(self, f"real_{self.source}_img", self.to_device(batch["A"]))
        if self.has_B:
            self.real_B_img = self.to_device(batch["B"])

    def forward(self) -> None:
        for src in ("A", "B") if self.has_B else (self.source,):
            dst = "B" if src == "A" else "A"
            forward_G, backward_G = self.test_generators(src)
            fake = forward_G(getattr(self, f"real_{src}_img"))
            setattr(self, f"fake_{dst}_img", fake)
            setattr(self, f"rec_{src}_img", backward_G(fake))

    def training_updates(self) -> Iterator[Update]:
        """One G update on both directions' losses, then one D update on the pooled fakes."""
        self.forward()
        yield Update(self.optimizer_G, self.generator_losses())
        yield Update(self.optimizer_D, self.discriminator_losses())

    def discriminator_losses(self) -> dict[str, torch.Tensor]:
        """Both discriminators' losses on the real images and the pooled fakes."""
        return {
            "D_A": self.discriminator_loss(self.netD_A, self.real_B_img, self.fake_B_pool.query(self.fake_B_img)),
            "D_B": self.discriminator_loss(self.netD_B, self.real_A_img, self.fake_A_pool.query(self.fake_A_img))}

    def generator_losses(self) -> dict[str, torch.Tensor]:
        """GAN (+ feature matching with --lambda_feat) + cycle + identity losses of both directions (CycleGAN's
        weights)."""
        opt = self.opt
        idt = opt.lambda_idt
        losses = {
            # (D_A(G_A(a)) - 1)^2, summed over the scales with --num_D
            **self.adversarial_losses("G_A", self.netD_A, (self.fake_B_img,), (self.real_B_img,)),
            **self.adversarial_losses("G_B", self.netD_B, (self.fake_A_img,), (self.real_A_img,)),
            "cycle_A": opt.lambda_A * F.l1_loss(self.rec_A_img, self.real_A_img),  # |G_B(G_A(a)) - a|_1
            "cycle_B": opt.lambda_B * F.l1_loss(self.rec_B_img, self.real_B_img),
        }
        if idt > 0:
            losses["idt_A"] = opt.lambda_B * idt * F.l1_loss(self.netG_A(self.real_B_img), self.real_B_img)  # |G_A(b)-b|
            losses["idt_B"] = opt.lambda_A * idt * F.l1_loss(self.netG_B(self.real_A_img), self.real_A_img)
        return losses

    def discriminator_loss(self, netD: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """0.5 * (GAN(D(real), 1) + GAN(D(fake.detach()), 0)), each summed over the scales with --num_D."""
        return 0.5 * (self.gan_loss(netD(real), True) + self.gan_loss(netD(fake.detach()), False))
