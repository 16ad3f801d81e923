"""The smallest complete model: copy it to ``models/<name>_model.py`` and change what it computes.

One generator G (A -> B) and one discriminator D (judges domain B). G minimises the LSGAN loss plus an L1
pull towards its input, so it changes as little as it must; D learns real B from translated A.

    python train.py --model template --dataroot ./datasets/shapes --name template_demo --load_size 64 --crop_size 64
    python test.py  --model template --dataroot ./datasets/shapes --name template_demo --load_size 64 --crop_size 64
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from torch.nn import functional as F

from . import networks
from .base_model import IMAGE, BaseModel, Update
from .losses import GANLoss


class TemplateModel(BaseModel):
    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="unaligned" if is_train else "single")
        if is_train:
            parser.add_argument("--lambda_l1", type=float, default=10.0, help="weight of |G(a) - a|_1")
        return parser

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.visual_names = {"real_A": IMAGE, "fake_B": IMAGE, "real_B": IMAGE}
        # G translates the training's source folder only (folder B after --direction BtoA)
        self.result_roles = {getattr(opt, "train_direction", "AtoB"): {"input_image": "real_A", "output_image": "fake_B"}}
        self.loss_names = ["G_gan", "G_l1", "D"]
        self.netG = networks.define_G("resnet", opt.input_nc, opt.output_nc, opt.ngf, opt.n_blocks_G, opt.norm,
                                      opt.init_type, opt.init_gain).to(self.device)
        if self.isTrain:
            self.netD = networks.define_D("patch", opt.output_nc, opt.ndf, opt.n_layers_D, opt.norm, opt.init_type,
                                          opt.init_gain, spectral_norm=False, init_D="same_as_G").to(self.device)
            self.criterion_gan = GANLoss(opt.gan_mode)
            self.optimizer_G = self.make_adam(self.netG.parameters())   # --lr, --beta1, --beta2
            self.optimizer_D = self.make_adam(self.netD.parameters())
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def set_input(self, batch: dict) -> None:
        self.real_A = self.to_device(batch["A"])
        self.image_paths = batch["A_paths"]
        if "B" in batch:
            self.real_B = self.to_device(batch["B"])

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def training_updates(self) -> Iterator[Update]:
        self.forward()
        yield Update(self.optimizer_G, {
            "G_gan": self.criterion_gan(self.netD(self.fake_B), True),          # (D(G(a)) - 1)^2
            "G_l1": self.opt.lambda_l1 * F.l1_loss(self.fake_B, self.real_A),  # lambda_l1 * |G(a) - a|_1
        })
        yield Update(self.optimizer_D, {   # 0.5 * ((D(b) - 1)^2 + D(G(a))^2)
            "D": 0.5 * (self.criterion_gan(self.netD(self.real_B), True)
                        + self.criterion_gan(self.netD(self.fake_B.detach()), False)),
        })
