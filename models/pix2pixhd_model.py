"""pix2pixHD (Wang et al. 2018): label maps to images with a coarse-to-fine generator, multi-scale
discriminators, feature matching and instance boundary maps (docs/pix2pixhd.md).

G is the global generator (``--netG global``) or the global generator inside ``--n_local_enhancers`` local
enhancers (``--netG local``). Its input is the one-hot label map (``--label_nc``; 0 reads an RGB image) with
the instance boundary map beside it (unless ``--no_instance``) and, with ``--instance_feat``, the feature map
of the instance-wise encoder E: E encodes the real image and averages its output over every instance, and
is trained jointly with G. ``--num_D`` PatchGANs judge (input, image) pairs at full, half, ... resolution.

Losses, as the reference: LSGAN (``--gan_mode``) summed over scales; feature matching over every
discriminator layer, lambda_feat * sum_scales sum_layers 1/num_D * 4/(n_layers_D + 1) * |D_k(x, y) - D_k(x,
G(x))|_1; with ``--vgg_weights FILE`` the VGG19 loss, lambda_feat * sum_i w_i |VGG_i(y) - VGG_i(G(x))|_1; D's
loss is half the sum of its real and fake terms.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from . import hd_networks
from .base_model import IMAGE, BaseModel, Update, validate_loss_weights
from .instance_styles import CLUSTER_FILE, load_clusters, style_feature_map
from .label_input import label_input_nc, paired_input, uses_instances
from .losses import MultiscaleGANLoss, VGGPerceptualLoss, feature_matching_loss


class Pix2PixHDModel(BaseModel):
    # Architecture and input encoding: a checkpoint loads only into the networks built with these.
    inherited_from_training = ("dataset_mode", "label_nc", "no_instance", "netG", "n_downsample_global",
                               "n_blocks_global", "n_local_enhancers", "n_blocks_local", "instance_feat",
                               "feat_num", "nef", "n_downsample_E")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="aligned", norm="instance")
        g = parser.add_argument_group("pix2pixhd")
        g.add_argument("--netG", default="global", choices=list(hd_networks.HD_GENERATOR_CHOICES),
                       help="global: the global generator alone; local: inside --n_local_enhancers enhancers")
        g.add_argument("--n_downsample_global", type=int, default=4, help="downsamplings of the global generator")
        g.add_argument("--n_blocks_global", type=int, default=9, help="ResNet blocks of the global generator")
        g.add_argument("--n_local_enhancers", type=int, default=1, help="local enhancers (--netG local)")
        g.add_argument("--n_blocks_local", type=int, default=3, help="ResNet blocks of each local enhancer")
        g.add_argument("--instance_feat", action="store_true",
                       help="add the instance-wise feature encoder's map to G's input (styles per instance)")
        g.add_argument("--feat_num", type=int, default=3, help="channels of the encoder's feature map")
        g.add_argument("--nef", type=int, default=16, help="encoder filters in the first conv layer")
        g.add_argument("--n_downsample_E", type=int, default=4, help="downsamplings of the encoder")
        if is_train:
            parser.set_defaults(gan_mode="lsgan", pool_size=0)
            g.add_argument("--num_D", type=int, default=2, help="discriminators, one per scale")
            g.add_argument("--lambda_feat", type=float, default=10.0,
                           help="weight of the feature-matching loss (and of the VGG loss)")
            g.add_argument("--no_ganFeat_loss", action="store_true", help="no feature-matching loss")
            g.add_argument("--vgg_weights", default="",
                           help="VGG19 weights file (torchvision's vgg19 state dict) for the perceptual loss; "
                                "never downloaded; empty: no VGG loss")
            g.add_argument("--niter_fix_global", type=int, default=0,
                           help="--netG local: train only the finest enhancer for this many epochs first")
        else:
            g.add_argument("--cluster_file", default="",
                           help=f"--instance_feat styles: K-means centres of scripts/cluster_features.py (default: "
                                f"the run's {CLUSTER_FILE} when it exists; without one, the test image's own "
                                f"features are used)")
            g.add_argument("--n_styles", type=int, default=1,
                           help="styles per input: style s gives every instance centre s of its label")
            g.add_argument("--random_styles", action="store_true",
                           help="every instance draws its own centre at random instead (seeded by --seed)")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        if opt.dataset_mode != "aligned":
            raise ValueError(f"--model pix2pixhd learns from label maps: use --dataset_mode aligned, not "
                             f"{opt.dataset_mode}")
        if opt.instance_feat and opt.no_instance:
            raise ValueError("--instance_feat averages the encoder over instances: it needs the instance maps, "
                             "drop --no_instance")
        multiple = 2 ** (opt.n_downsample_global + (opt.n_local_enhancers if opt.netG == "local" else 0))
        if opt.instance_feat:
            multiple = max(multiple, 2 ** opt.n_downsample_E)
        if opt.crop_size_h % multiple or opt.crop_size_w % multiple:
            raise ValueError(f"--crop_size {opt.crop_size_w}x{opt.crop_size_h}: pix2pixHD's networks need sides "
                             f"divisible by {multiple} (2 ** (--n_downsample_global + enhancers)); choose another "
                             f"crop size or fewer downsamplings")
        if getattr(opt, "isTrain", False):
            validate_loss_weights(opt, ("lambda_feat",))
            if opt.niter_fix_global and opt.netG != "local":
                raise ValueError("--niter_fix_global trains the local enhancer alone first: it needs --netG local")

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.use_features = opt.instance_feat
        self.model_names = ["G"] + ["E"] * self.use_features + ["D"] * self.isTrain
        self.loss_names = ["G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake"] if self.isTrain else []
        if self.isTrain:
            self.loss_names = [name for name in self.loss_names
                               if not (name == "G_GAN_Feat" and opt.no_ganFeat_loss or name == "G_VGG"
                                       and not opt.vgg_weights)]
        show_feat = self.use_features and opt.feat_num in (1, 3)   # drawn as a grey or colour image
        self.clusters = None if self.isTrain or not self.use_features else self.find_clusters(opt)
        self.n_styles = opt.n_styles if self.clusters is not None else 1
        styles = [f"fake_B_style{s}" for s in range(1, self.n_styles)]
        shown = ["real_A"] + ["boundary"] * uses_instances(opt) + ["feat"] * show_feat + ["fake_B", *styles, "real_B"]
        self.visual_names = dict.fromkeys(shown, IMAGE)
        self.result_roles = {"AtoB": {"input_image": "real_A", "output_image": "fake_B", "target_image": "real_B"}}
        g_input_nc = label_input_nc(opt) + (opt.feat_num if self.use_features else 0)
        self.netG = hd_networks.define_hd_G(opt.netG, g_input_nc, opt.output_nc, opt.ngf, opt.n_downsample_global,
                                            opt.n_blocks_global, opt.n_local_enhancers, opt.n_blocks_local,
                                            opt.norm, opt.init_gain).to(self.device)
        if self.use_features:
            self.netE = hd_networks.define_hd_encoder(opt.output_nc, opt.feat_num, opt.nef, opt.n_downsample_E,
                                                      opt.norm, opt.init_gain).to(self.device)
        if self.isTrain:
            self.netD = hd_networks.define_hd_D(label_input_nc(opt) + opt.output_nc, opt.ndf, opt.n_layers_D,
                                                opt.norm, opt.num_D, get_intermediate_features=True,
                                                init_gain=opt.init_gain).to(self.device)
            self.criterion_gan = MultiscaleGANLoss(opt.gan_mode)
            self.criterion_vgg = VGGPerceptualLoss(opt.vgg_weights).to(self.device) if opt.vgg_weights else None
            generator = list(self.netG.parameters()) + (list(self.netE.parameters()) if self.use_features else [])
            self.optimizer_G = self.make_adam(generator)
            self.optimizer_D = self.make_adam(self.netD.parameters())
            self.optimizers = [self.optimizer_G, self.optimizer_D]
            self.global_fixed = False
            self.epochs_done = opt.epoch_count - 1
            self.fix_global(opt.niter_fix_global > self.epochs_done)

    @staticmethod
    def find_clusters(opt: argparse.Namespace) -> dict[int, Tensor] | None:
        """The style centres at test time: --cluster_file, else the run's own file, else None."""
        path = Path(opt.cluster_file) if opt.cluster_file else Path(opt.checkpoints_dir) / opt.name / CLUSTER_FILE
        if not path.is_file():
            if opt.cluster_file:
                raise ValueError(f"--cluster_file {path} does not exist; write it with python -m "
                                 f"scripts.cluster_features --name {opt.name}")
            print(f"pix2pixhd: no {path}: each test image is drawn in the style its own features give "
                  f"(python -m scripts.cluster_features --name {opt.name} writes the styles of the training set)")
            return None
        return load_clusters(path)

    # ------------------------------------------------------------------ the coarse-to-fine schedule
    def fix_global(self, fixed: bool) -> None:
        """Freeze (or free) every generator weight but the finest local enhancer's: frozen weights get no
        gradient, so Adam leaves them alone, as in the reference's first --niter_fix_global epochs (it builds a
        new optimiser when they end; here the one optimiser keeps the enhancer's moments)."""
        if self.opt.netG != "local":
            return
        finest = {id(p) for p in self.netG.enhancer_parameters(finest_only=True)}
        for parameter in self.netG.parameters():
            parameter.requires_grad_(not fixed or id(parameter) in finest)
        self.global_fixed = fixed

    def update_learning_rate(self) -> float:
        """End of an epoch: also start training the whole generator once --niter_fix_global epochs are done."""
        lr = super().update_learning_rate()
        self.epochs_done += 1
        if self.global_fixed and self.epochs_done >= self.opt.niter_fix_global:
            self.fix_global(False)
            print(f"pix2pixhd: {self.opt.niter_fix_global} epochs with the global generator fixed are done; the "
                  f"whole generator trains from now on")
        return lr

    def extra_state(self) -> dict:
        return {"global_fixed": self.global_fixed, "epochs_done": self.epochs_done}

    def load_extra_state(self, state: dict) -> None:
        self.epochs_done = state["epochs_done"]
        self.fix_global(state["global_fixed"])

    # ------------------------------------------------------------------ data and translation
    def set_input(self, batch: dict) -> None:
        self.clear_visuals()
        pair = paired_input(batch, self.opt, self.device, self.to_device)
        self.label_input, self.real_B, self.real_A = pair.net_input, pair.real, pair.shown_label
        self.inst = self.to_device(pair.inst) if pair.inst is not None else None
        self.label = pair.label
        if pair.boundary is not None:
            self.boundary = pair.boundary
        self.image_paths = pair.paths

    def generator_input(self) -> Tensor:
        if not self.use_features:
            return self.label_input
        self.feat = self.netE(self.real_B, self.inst)   # constant inside each instance
        return torch.cat([self.label_input, self.feat], 1)

    def forward(self) -> None:
        if self.clusters is None:
            self.fake_B = self.netG(self.generator_input())
            return
        for style in range(self.n_styles):   # test time with clustered styles: one translation per style
            feat = style_feature_map(self.inst, self.label, self.clusters, self.style_choice(style))
            self.feat = feat if style == 0 else self.feat
            name = "fake_B" if style == 0 else f"fake_B_style{style}"
            setattr(self, name, self.netG(torch.cat([self.label_input, self.to_device(feat)], 1)))

    def style_choice(self, style: int):
        """Which centre an instance gets: centre ``style`` of its label, or (``--random_styles``) a random one."""
        if not self.opt.random_styles:
            return lambda label_id, count: style
        generator = torch.Generator().manual_seed((self.opt.seed or 0) * 1000 + style)
        return lambda label_id, count: int(torch.randint(count, (), generator=generator))

    # ------------------------------------------------------------------ losses
    def training_updates(self) -> Iterator[Update]:
        opt = self.opt
        self.forward()
        fake_pair = torch.cat([self.label_input, self.fake_B], 1)
        # D on the real pair once: its features are the feature-matching targets (detached there) and its
        # predictions D's real term below (D is unchanged by G's update in between)
        real_features = self.netD(torch.cat([self.label_input, self.real_B], 1))
        fake_features = self.netD(fake_pair)
        losses = {"G_GAN": self.criterion_gan(fake_features, True)}                  # sum_k (D_k(x, G(x)) - 1)^2
        if not opt.no_ganFeat_loss:
            losses["G_GAN_Feat"] = opt.lambda_feat * feature_matching_loss(fake_features, real_features,
                                                                           opt.n_layers_D, opt.num_D)
        if self.criterion_vgg is not None:
            losses["G_VGG"] = opt.lambda_feat * self.criterion_vgg(self.fake_B, self.real_B)
        yield Update(self.optimizer_G, losses)
        yield Update(self.optimizer_D, {   # 0.5 * sum_k ((D_k(x, y) - 1)^2 + D_k(x, G(x))^2)
            "D_real": 0.5 * self.criterion_gan(real_features, True),
            "D_fake": 0.5 * self.criterion_gan(self.netD(fake_pair.detach()), False),
        })
