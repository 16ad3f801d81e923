"""pix2pix (Isola et al. 2017): paired translation with a U-Net generator and a conditional PatchGAN.

G maps the input (an image of ``aligned_ab`` data, or a one-hot label map with its instance boundaries on
``aligned`` data, see models/label_input.py) to the real image; D judges (input, image) pairs. Losses as the
CycleGAN code base defines them: vanilla GAN, L1 to the real image weighted 100, D's loss halved, no image
pool; batch norm and dropout in G (dropout stays on at test time unless ``--eval``, as pix2pix's noise).

    python train.py --model pix2pix --dataroot ./datasets/facades --name facades_pix2pix
    python train.py --model pix2pix --dataset_mode aligned --label_nc 3 --dataroot ./datasets/shapes_paired_64 ...
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import torch
from torch.nn import functional as F

from . import networks
from .base_model import IMAGE, BaseModel, Update, validate_loss_weights
from .label_input import label_input_nc, paired_input, uses_instances
from .losses import GANLoss


class Pix2PixModel(BaseModel):
    # Architecture and input encoding: a checkpoint loads only into the network built with these.
    inherited_from_training = ("dataset_mode", "num_downs", "label_nc", "no_instance")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="aligned_ab", norm="batch")
        g = parser.add_argument_group("pix2pix")
        g.add_argument("--num_downs", type=int, default=0,
                       help="U-Net levels; 0: down to 1x1 at the bottom (log2 of the crop size: 8 at 256 px)")
        if is_train:
            parser.set_defaults(gan_mode="vanilla", pool_size=0)
            g.add_argument("--lambda_L1", type=float, default=100.0, help="weight of |G(x) - y|_1")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        if opt.dataset_mode not in ("aligned", "aligned_ab"):
            raise ValueError(f"--model pix2pix learns from pairs: use --dataset_mode aligned_ab (side-by-side "
                             f"images) or aligned (label maps), not {opt.dataset_mode}")
        if opt.num_downs == 0:
            opt.num_downs = networks.unet_depth(opt.crop_size_h, opt.crop_size_w)
        if getattr(opt, "isTrain", False):
            validate_loss_weights(opt, ("lambda_L1",))

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        self.visual_names = {"real_A": IMAGE, "fake_B": IMAGE, "real_B": IMAGE}
        if uses_instances(opt):
            self.visual_names = {"real_A": IMAGE, "boundary": IMAGE, "fake_B": IMAGE, "real_B": IMAGE}
        self.result_roles = {"AtoB": {"input_image": "real_A", "output_image": "fake_B", "target_image": "real_B"}}
        input_nc = label_input_nc(opt)
        self.netG = networks.define_G("unet", input_nc, opt.output_nc, opt.ngf, norm=opt.norm,
                                      init_type=opt.init_type, init_gain=opt.init_gain, num_downs=opt.num_downs,
                                      dropout=not opt.no_dropout).to(self.device)
        if self.isTrain:
            self.netD = networks.define_D("patch", input_nc + opt.output_nc, opt.ndf, opt.n_layers_D, opt.norm,
                                          opt.init_type, opt.init_gain, spectral_norm=False,
                                          init_D="same_as_G").to(self.device)
            self.criterion_gan = GANLoss(opt.gan_mode)
            self.optimizer_G = self.make_adam(self.netG.parameters())
            self.optimizer_D = self.make_adam(self.netD.parameters())
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def set_input(self, batch: dict) -> None:
        self.clear_visuals()
        pair = paired_input(batch, self.opt, self.device, self.to_device)
        self.net_input, self.real_B, self.real_A = pair.net_input, pair.real, pair.shown_label
        if pair.boundary is not None:
            self.boundary = pair.boundary
        self.image_paths = pair.paths

    def forward(self) -> None:
        self.fake_B = self.netG(self.net_input)

    def training_updates(self) -> Iterator[Update]:
        self.forward()
        fake_pair = torch.cat([self.net_input, self.fake_B], 1)
        yield Update(self.optimizer_G, {
            "G_GAN": self.criterion_gan(self.netD(fake_pair), True),                   # log D(x, G(x))
            "G_L1": self.opt.lambda_L1 * F.l1_loss(self.fake_B, self.real_B),        # lambda |y - G(x)|_1
        })
        real_pair = torch.cat([self.net_input, self.real_B], 1)
        yield Update(self.optimizer_D, {   # 0.5 * (log D(x, y) + log(1 - D(x, G(x))))
            "D_real": 0.5 * self.criterion_gan(self.netD(real_pair), True),
            "D_fake": 0.5 * self.criterion_gan(self.netD(fake_pair.detach()), False),
        })
