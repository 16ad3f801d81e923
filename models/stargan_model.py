"""StarGAN (Choi et al., CVPR 2018): one generator translates an image to any target label vector, semi-supervised.

G(x, c) sees the image with the label vector c broadcast to planes and concatenated; D has an adversarial head
(WGAN-GP) and a classification head over the labels. Losses, as StarGAN weighs them:

- D: -D_adv(x) + D_adv(G(x, c)) + lambda_gp * GP + lambda_cls * BCE(D_cls(x_l), c_l)   (x_l: labelled images)
- G: -D_adv(G(x, c)) + lambda_cls * BCE(D_cls(G(x, c)), c) + lambda_rec * |x - G(G(x, c), c_x)|_1

G is updated once every ``--n_critic`` D updates. Only ``--labelled_fraction`` of the images keep their labels
(``--dataset_mode attributes``); the rest are translated too. D's classifier learns from a stream of labelled
images beside each batch (``L``: as many, drawn from the labelled ones), so it gets a full batch of labels at
any fraction. Target labels are drawn from the label vectors of the labelled images seen so far, the same target
for each group of ``--target_group_size`` consecutive samples (MatchGAN, the subclass in match_gan_model.py,
needs these same-label groups). Choices where the papers are silent are in docs/match_gan.md.

    python train.py --model stargan --dataroot ./datasets/shapes_attributes_64 --attributes rectangle,red,large
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import networks
from .base_model import IMAGE, BaseModel, Update, validate_loss_weights

LABEL_MEMORY = 4096   # labelled label vectors kept to draw targets from (a reservoir of those seen)


class StarDiscriminator(nn.Module):
    """``n_layers`` stride-2 4x4 convolutions (LeakyReLU 0.01, no normalisation, channels doubling from ndf),
    then an adversarial head (3x3 convolution to one map) and a classification head (a convolution over the
    whole remaining map to ``c_dim`` logits). ``forward`` also returns the trunk's features."""

    def __init__(self, input_nc: int, ndf: int, n_layers: int, c_dim: int, side: int):
        super().__init__()
        layers, channels = [], input_nc
        for index in range(n_layers):
            width = ndf * 2 ** index
            layers += [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.01, True)]
            channels = width
        self.trunk = nn.Sequential(*layers)
        self.channels = channels
        self.adversarial = nn.Conv2d(channels, 1, 3, 1, 1, bias=False)
        self.classification = nn.Conv2d(channels, c_dim, side // 2 ** n_layers, bias=False)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(adversarial map, label logits (B, c_dim), features)."""
        features = self.trunk(image)
        return self.adversarial(features), self.classification(features).flatten(1), features


class StarResidualBlock(nn.Module):
    """x + (Conv3 -> norm -> ReLU -> Conv3 -> norm)(x), zero padding."""

    def __init__(self, channels: int, norm_layer):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), norm_layer(channels),
                                   nn.ReLU(True), nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                                   norm_layer(channels))

    def forward(self, features: Tensor) -> Tensor:
        return features + self.block(features)


def star_norm_layer(norm: str):
    """StarGAN's affine instance norm for ``instance``; the framework's other norms as they are."""
    if norm == "instance":
        return lambda channels: nn.InstanceNorm2d(channels, affine=True)
    return networks.get_norm_layer(norm)


class ConditionalGenerator(nn.Module):
    """StarGAN's generator on the image with the label vector broadcast to ``c_dim`` extra planes: Conv7 (-> ngf),
    two stride-2 Conv4 (-> 4 ngf), ``n_blocks`` residual blocks, two stride-2 ConvT4, Conv7, tanh; norm and ReLU
    after every convolution but the last. Every convolution pads with ZEROS, as StarGAN's: a constant label
    plane that is reflect-padded stays constant through the first convolution, and instance norm then removes
    it entirely, so the generator could not see its target (zero padding leaves it a border pattern that
    survives the norm)."""

    def __init__(self, input_nc: int, output_nc: int, c_dim: int, ngf: int, norm: str, n_blocks: int):
        super().__init__()
        norm_layer = star_norm_layer(norm)
        layers: list[nn.Module] = [nn.Conv2d(input_nc + c_dim, ngf, 7, 1, 3, bias=False), norm_layer(ngf),
                                   nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 4, 2, 1, bias=False), norm_layer(ngf * mult * 2),
                       nn.ReLU(True)]
        layers += [StarResidualBlock(ngf * 4, norm_layer) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       norm_layer(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.Conv2d(ngf, output_nc, 7, 1, 3, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor, labels: Tensor) -> Tensor:
        planes = labels[:, :, None, None].to(image.dtype).expand(-1, -1, *image.shape[-2:])
        return self.net(torch.cat([image, planes], 1))


def gradient_penalty(netD: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """mean((|grad D_adv(x_hat)|_2 - 1)^2) at random points x_hat between real and fake images (WGAN-GP)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    adversarial = netD(mixed)[0]
    grad, = torch.autograd.grad(adversarial.sum(), mixed, create_graph=True)
    return (grad.flatten(1).float().norm(dim=1) - 1).pow(2).mean()


def attribute_names(opt: argparse.Namespace) -> list[str]:
    return [name.strip() for name in (opt.attributes or "").split(",") if name.strip()]


class StarGanModel(BaseModel):
    inherited_from_training = ("attributes", "n_layers_D")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="attributes", n_layers_D=4, norm="instance", n_blocks_G=6)
        if is_train:
            parser.set_defaults(lr=0.0001, beta1=0.5, beta2=0.999, batch_size=16)
            g = parser.add_argument_group("stargan")
            g.add_argument("--lambda_cls", type=float, default=1.0, help="weight of the label classification losses")
            g.add_argument("--lambda_rec", type=float, default=10.0, help="weight of |x - G(G(x, c), c_x)|_1")
            g.add_argument("--lambda_gp", type=float, default=10.0, help="weight of D's gradient penalty")
            g.add_argument("--n_critic", type=int, default=5, help="D updates per G update")
            g.add_argument("--target_group_size", type=int, default=2,
                           help="consecutive samples of a batch that share one drawn target label vector "
                                "(MatchGAN's same-label groups; its authors' code uses groups of 4)")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        if not attribute_names(opt):
            raise ValueError("--model stargan needs --attributes: the label columns to learn, comma-separated "
                             "(e.g. --attributes rectangle,red,large)")
        side = min(opt.crop_size_h, opt.crop_size_w)
        if side % 2 ** opt.n_layers_D or opt.crop_size_h != opt.crop_size_w:
            raise ValueError(f"StarGAN's discriminator needs a square --crop_size divisible by 2^--n_layers_D "
                             f"(got {opt.crop_size_w}x{opt.crop_size_h} and --n_layers_D {opt.n_layers_D})")
        if getattr(opt, "isTrain", False):
            validate_loss_weights(opt, ("lambda_cls", "lambda_rec", "lambda_gp"))
            if opt.n_critic < 1:
                raise ValueError(f"--n_critic must be at least 1 (got {opt.n_critic})")
            if not 1 <= opt.target_group_size <= opt.batch_size:
                raise ValueError(f"--target_group_size must be between 1 and --batch_size {opt.batch_size} "
                                 f"(got {opt.target_group_size})")

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.attributes = attribute_names(opt)
        c_dim = len(self.attributes)
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.loss_names = ["D_adv", "D_cls", "D_gp", "G_adv", "G_cls", "G_rec"]
        self.visual_names = {"real_A": IMAGE, "fake": IMAGE, "rec": IMAGE,
                             **{f"fake_{name}": IMAGE for name in self.attributes}}
        self.result_roles = {"AtoB": {"input_image": "real_A", "output_image": f"fake_{self.attributes[0]}"}}
        self.netG = ConditionalGenerator(opt.input_nc, opt.output_nc, c_dim, opt.ngf, opt.norm,
                                         opt.n_blocks_G).to(self.device)
        networks.init_weights(self.netG, opt.init_type, opt.init_gain)
        self.steps_done = 0
        self.label_memory = torch.zeros(0, c_dim)
        if self.isTrain:
            self.netD = StarDiscriminator(opt.output_nc, opt.ndf, opt.n_layers_D, c_dim,
                                          opt.crop_size_h).to(self.device)
            self.optimizer_G = self.make_adam(self.netG.parameters())
            self.optimizer_D = self.make_adam(self.netD.parameters())
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    # ------------------------------------------------------------------ input and targets
    def set_input(self, batch: dict) -> None:
        self.clear_visuals()
        self.real_A = self.to_device(batch["A"])
        self.labels = batch["A_label"].float().to(self.device)
        self.labelled = batch["A_labelled"].bool().to(self.device)
        self.image_paths = list(batch["A_paths"])
        if self.isTrain:
            self.real_L = self.to_device(batch["L"])
            self.labels_L = batch["L_label"].float().to(self.device)
            self.remember_labels(batch["L_label"].float())

    def remember_labels(self, labels: Tensor) -> None:
        """Keep the labelled vectors seen, up to LABEL_MEMORY (then each new one replaces a random old one)."""
        for label in labels:
            if len(self.label_memory) < LABEL_MEMORY:
                self.label_memory = torch.cat([self.label_memory, label[None]])
            else:
                self.label_memory[int(torch.randint(LABEL_MEMORY, ()))] = label

    def draw_targets(self, batch: int) -> Tensor:
        """Target label vectors from the labelled ones seen, one per group of --target_group_size consecutive
        samples."""
        size = self.opt.target_group_size
        groups = -(-batch // size)
        if len(self.label_memory):
            chosen = self.label_memory[torch.randint(len(self.label_memory), (groups,))]
        else:   # no labelled image seen yet: random vectors
            chosen = (torch.rand(groups, self.label_memory.shape[1]) < 0.5).float()
        return chosen.repeat_interleave(size, 0)[:batch].to(self.device)

    def source_labels(self) -> Tensor:
        """Each image's own labels: the true ones where labelled, elsewhere D's reading of the image (thresholded)
        from this step's D update, before D stepped."""
        return torch.where(self.labelled[:, None], self.labels, self.labels_read_by_D)

    # ------------------------------------------------------------------ training
    def forward(self) -> None:
        """Test time: the input with each attribute flipped in turn, one visual per attribute."""
        for index, name in enumerate(self.attributes):
            target = self.labels.clone()
            target[:, index] = 1 - target[:, index]
            setattr(self, f"fake_{name}", self.netG(self.real_A, target))

    def training_updates(self) -> Iterator[Update]:
        self.targets = self.draw_targets(self.real_A.shape[0])
        self.fake = self.netG(self.real_A, self.targets)
        yield Update(self.optimizer_D, self.discriminator_losses())
        self.steps_done += 1
        if self.steps_done % self.opt.n_critic == 0:
            yield Update(self.optimizer_G, self.generator_losses())

    def discriminator_losses(self) -> dict[str, Tensor]:
        opt = self.opt
        count = self.real_A.shape[0]
        real_adv, real_cls, features = self.netD(torch.cat([self.real_A, self.real_L]))   # one pass for both
        self.labels_read_by_D = (real_cls[:count].detach() > 0).float()
        self.labelled_features = features[count:]
        fake_adv, _, self.fake_features_for_D = self.netD(self.fake.detach())
        return {"D_adv": fake_adv.mean() - real_adv[:count].mean(),                # -D(x) + D(G(x, c))
                "D_gp": opt.lambda_gp * gradient_penalty(self.netD, self.real_A, self.fake),
                "D_cls": opt.lambda_cls * F.binary_cross_entropy_with_logits(      # BCE(D_cls(x_l), c_l)
                    real_cls[count:].float(), self.labels_L)}

    def generator_losses(self) -> dict[str, Tensor]:
        opt = self.opt
        fake_adv, fake_cls, self.fake_features = self.netD(self.fake)
        self.rec = self.netG(self.fake, self.source_labels())
        return {"G_adv": -fake_adv.mean(),                                              # -D(G(x, c))
                "G_cls": opt.lambda_cls * F.binary_cross_entropy_with_logits(fake_cls.float(), self.targets),
                "G_rec": opt.lambda_rec * F.l1_loss(self.rec, self.real_A)}             # |x - G(G(x, c), c_x)|

    def extra_state(self) -> dict:
        return {"steps_done": self.steps_done, "label_memory": self.label_memory}

    def load_extra_state(self, state: dict) -> None:
        self.steps_done = int(state["steps_done"])
        self.label_memory = state["label_memory"].float().cpu()
