"""Networks: the InstaGAN set generator and set discriminator (docs/method.md), the CycleGAN baselines and
pix2pix's U-Net.

Module names and ``nn.Sequential`` indices follow the authors' implementation, so with instance norm the
state-dict keys of :class:`SetResnetGenerator` equal theirs and those of :class:`SetPatchDiscriminator` differ
only by the spectral-norm naming (see ``scripts/convert_authors_checkpoint.py``).

Instance sets are handled per sample and without Python loops: all non-empty mask slots of the batch are
gathered into one "instance batch", encoded in one call, summed per sample with ``index_add_`` and, in the
generator, decoded in one call and scattered back into their slots.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

NORM_CHOICES = ("instance", "batch", "none")
INIT_CHOICES = ("normal", "xavier", "kaiming", "orthogonal")
INIT_D_CHOICES = ("pytorch", "same_as_G")
GENERATOR_CHOICES = ("set_resnet", "resnet", "unet")
DISCRIMINATOR_CHOICES = ("set_patch", "patch")
PADDING_CHOICES = ("reflect", "replicate", "zero")

# A slot counts as an instance when any pixel is above background (-1) by more than this.
EMPTY_SLOT_TOLERANCE = 1e-4
# Discriminator channel multipliers are capped like CycleGAN's PatchGAN (ndf * 8 at most per extractor).
MAX_CHANNEL_MULT = 8


# ---------------------------------------------------------------------------------------------- helpers
def get_norm_layer(norm_type: str = "instance") -> Callable[[int], nn.Module]:
    """A factory ``channels -> normalisation module`` for ``--norm``."""
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"--norm {norm_type!r} is not supported; choose one of: {', '.join(NORM_CHOICES)}")


def conv_bias(norm_type: str) -> bool:
    """Whether a convolution followed by ``norm_type`` gets a bias.

    CycleGAN's rule for instance (bias on) and batch norm (off: the norm's affine shift replaces it); with no
    norm the bias stays on, since nothing else would provide a shift.
    """
    get_norm_layer(norm_type)  # validates the name
    return norm_type != "batch"


def _check_generator_args(input_nc: int, output_nc: int, ngf: int, n_blocks: int) -> None:
    _check_positive(input_nc=input_nc, output_nc=output_nc, ngf=ngf)
    if n_blocks < 0:
        raise ValueError(f"--n_blocks_G must not be negative (got {n_blocks})")


class _KeepsDtypeUnderAutocast:
    """Mixin for a padding layer: pad in the input's dtype under autocast. CPU autocast runs reflection and
    replication padding in fp32, so under ``--amp bf16`` every padded activation was cast up and, for the
    convolution after it, back down: 16% of a CPU step. Padding only copies values, so the output is the same."""

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x)


class ReflectionPad2d(_KeepsDtypeUnderAutocast, nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` that keeps its input's dtype under autocast."""


class ReplicationPad2d(_KeepsDtypeUnderAutocast, nn.ReplicationPad2d):
    """``nn.ReplicationPad2d`` that keeps its input's dtype under autocast."""


def _padding_layer(padding_type: str, size: int) -> nn.Module:
    if padding_type == "reflect":
        return ReflectionPad2d(size)
    if padding_type == "replicate":
        return ReplicationPad2d(size)
    if padding_type == "zero":
        return nn.ZeroPad2d(size)
    raise ValueError(f"padding_type {padding_type!r} is not supported; choose one of: {', '.join(PADDING_CHOICES)}")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"--{name} must be at least 1 (got {value})")


def _init_tensor(weight: Tensor, init_type: str, init_gain: float) -> None:
    if init_type == "normal":
        nn.init.normal_(weight, 0.0, init_gain)
    elif init_type == "xavier":
        nn.init.xavier_normal_(weight, gain=init_gain)
    elif init_type == "kaiming":
        nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
    elif init_type == "orthogonal":
        nn.init.orthogonal_(weight, gain=init_gain)
    else:
        raise ValueError(f"--init_type {init_type!r} is not supported; choose one of: {', '.join(INIT_CHOICES)}")


def _refresh_spectral_norm(module: nn.Module, iterations: int = 15) -> None:
    """Re-run the power iteration after the raw weight changed, so sigma is right from the first step."""
    parametrizations = module.parametrizations.weight
    was_training = [p.training for p in parametrizations]
    parametrizations.train()
    with torch.no_grad():
        for _ in range(iterations):
            module.weight  # noqa: B018 - each access in training mode runs one power iteration
    for p, mode in zip(parametrizations, was_training):
        p.train(mode)


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> None:
    """Initialise conv / transposed-conv / linear weights (``init_type``, scale ``init_gain``), their biases to 0,
    and batch-norm weights to N(1, init_gain).

    Under a spectral-norm parametrisation the raw weight (``parametrizations.weight.original``) is initialised
    and the power-iteration vectors are refreshed.
    """
    if init_type not in INIT_CHOICES:
        raise ValueError(f"--init_type {init_type!r} is not supported; choose one of: {', '.join(INIT_CHOICES)}")
    for module in net.modules():
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
            parametrized = parametrize.is_parametrized(module, "weight")
            weight = module.parametrizations.weight.original if parametrized else module.weight
            with torch.no_grad():
                _init_tensor(weight, init_type, init_gain)
                if module.bias is not None:
                    module.bias.zero_()
            if parametrized and hasattr(module.parametrizations.weight[0], "_u"):
                _refresh_spectral_norm(module)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            with torch.no_grad():
                nn.init.normal_(module.weight, 1.0, init_gain)
                module.bias.zero_()


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def instance_presence(masks: Tensor) -> Tensor:
    """``(B, K, H, W)`` masks -> bool ``(B, K)``: True where the slot holds an instance (not all -1)."""
    return (masks > -1.0 + EMPTY_SLOT_TOLERANCE).flatten(2).any(dim=2)


def _check_inputs(image: Tensor, masks: Tensor) -> None:
    if image.dim() != 4 or masks.dim() != 4:
        raise ValueError(f"expected image (B, C, H, W) and masks (B, K, H, W); got shapes "
                         f"{tuple(image.shape)} and {tuple(masks.shape)}")
    if image.shape[0] != masks.shape[0] or image.shape[2:] != masks.shape[2:]:
        raise ValueError(f"image {tuple(image.shape)} and masks {tuple(masks.shape)} must share batch size, "
                         f"height and width")


def _gather_instances(masks: Tensor, present: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """All non-empty slots of the batch: (sample index (N,), slot index (N,), masks (N, 1, H, W)).

    ``present`` ((B, K) bool, usually on the host) says which slots hold instances where the caller knows it:
    then the device is not asked (``nonzero`` on a GPU tensor makes the host wait for the queued work)."""
    if present is None:
        present = instance_presence(masks)
    sample, slot = present.nonzero(as_tuple=True)
    sample, slot = sample.to(masks.device, non_blocking=True), slot.to(masks.device, non_blocking=True)
    return sample, slot, masks[sample, slot].unsqueeze(1)


def _sum_per_sample(features: Tensor, sample: Tensor, like: Tensor) -> Tensor:
    """Sum instance features (N, C, h, w) into their samples; zeros for samples without instances."""
    return like.new_zeros(like.shape).index_add_(0, sample, features)


# ---------------------------------------------------------------------------------------------- building blocks
class ResnetBlock(nn.Module):
    """Two padded 3x3 convolutions with norm (ReLU between) plus the identity skip; keys ``conv_block.<j>``."""

    def __init__(self, channels: int, norm: str = "instance", padding_type: str = "reflect"):
        super().__init__()
        norm_layer, bias = get_norm_layer(norm), conv_bias(norm)
        self.conv_block = nn.Sequential(
            _padding_layer(padding_type, 1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(channels),
            nn.ReLU(True),
            _padding_layer(padding_type, 1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


def _resnet_encoder_layers(input_nc: int, ngf: int, norm: str, n_blocks: int, padding_type: str) -> list[nn.Module]:
    """ReflPad3, Conv7 (-> ngf), two stride-2 Conv3 (-> 4 ngf), each with norm and ReLU; n_blocks ResNet blocks."""
    norm_layer, bias = get_norm_layer(norm), conv_bias(norm)
    layers: list[nn.Module] = [ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), norm_layer(ngf),
                               nn.ReLU(True)]
    for mult in (1, 2):
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                   norm_layer(ngf * mult * 2), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 4, norm, padding_type) for _ in range(n_blocks)]
    return layers


def _resnet_decoder_layers(base: int, output_nc: int, norm: str) -> list[nn.Module]:
    """Two stride-2 ConvT (4 base -> 2 base -> base) with norm and ReLU, ReflPad3, Conv7 (-> output_nc), Tanh."""
    norm_layer, bias = get_norm_layer(norm), conv_bias(norm)
    layers: list[nn.Module] = []
    for mult in (4, 2):
        layers += [nn.ConvTranspose2d(base * mult, base * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                      bias=bias),
                   norm_layer(base * mult // 2), nn.ReLU(True)]
    layers += [ReflectionPad2d(3), nn.Conv2d(base, output_nc, 7), nn.Tanh()]
    return layers


def _patch_conv(in_channels: int, out_channels: int, stride: int, bias: bool, spectral_norm: bool) -> nn.Module:
    conv = nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=1, bias=bias)
    return apply_spectral_norm(conv) if spectral_norm else conv


def _patch_mult(layer: int) -> int:
    """Channel multiplier (of ndf) of the ``layer``-th PatchGAN convolution, counting from 0."""
    return min(2 ** layer, MAX_CHANNEL_MULT)


def _patch_feature_layers(input_nc: int, ndf: int, n_layers: int, norm: str, spectral_norm: bool) -> list[nn.Module]:
    """n_layers stride-2 Conv4 (ndf * min(2**n, 8) channels for n = 0..n_layers-1); the first without norm."""
    norm_layer, bias = get_norm_layer(norm), conv_bias(norm)
    layers: list[nn.Module] = [_patch_conv(input_nc, ndf, 2, True, spectral_norm), nn.LeakyReLU(0.2, True)]
    for layer in range(1, n_layers):
        out_channels = ndf * _patch_mult(layer)
        layers += [_patch_conv(ndf * _patch_mult(layer - 1), out_channels, 2, bias, spectral_norm),
                   norm_layer(out_channels), nn.LeakyReLU(0.2, True)]
    return layers


def _patch_head_layers(in_channels: int, mid_channels: int, norm: str, spectral_norm: bool,
                       bias: bool) -> list[nn.Module]:
    """Stride-1 Conv4 (-> mid_channels, with ``bias``), norm, LeakyReLU, stride-1 Conv4 (-> 1 score per patch)."""
    norm_layer = get_norm_layer(norm)
    return [_patch_conv(in_channels, mid_channels, 1, bias, spectral_norm), norm_layer(mid_channels),
            nn.LeakyReLU(0.2, True), _patch_conv(mid_channels, 1, 1, True, spectral_norm)]


# ---------------------------------------------------------------------------------------------- InstaGAN nets
class SetResnetGenerator(nn.Module):
    """InstaGAN generator: (image, instance masks) -> (translated image, one translated mask per instance).

    ``encoder_img`` / ``encoder_seg`` share the ResNet encoder structure (3 resp. 1 input channel); the set
    feature is the per-sample sum of ``encoder_seg`` over the instances. ``decoder_img`` reads
    [image feature, set sum] (8 ngf channels), ``decoder_seg`` reads [own feature, image feature, set sum]
    (12 ngf channels). Empty slots (all -1) are not encoded and come back exactly -1.
    Height and width must be multiples of 4 (two stride-2 levels).
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance",
                 n_blocks: int = 9, padding_type: str = "reflect"):
        super().__init__()
        _check_generator_args(input_nc, output_nc, ngf, n_blocks)
        self.encoder_img = nn.Sequential(*_resnet_encoder_layers(input_nc, ngf, norm, n_blocks, padding_type))
        self.encoder_seg = nn.Sequential(*_resnet_encoder_layers(1, ngf, norm, n_blocks, padding_type))
        self.decoder_img = nn.Sequential(*_resnet_decoder_layers(2 * ngf, output_nc, norm))
        self.decoder_seg = nn.Sequential(*_resnet_decoder_layers(3 * ngf, 1, norm))

    def forward(self, image: Tensor, masks: Tensor, present: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``present``: optional (B, K) bool of the non-empty slots (see ``_gather_instances``)."""
        _check_inputs(image, masks)
        height, width = image.shape[2:]
        if height % 4 or width % 4:
            raise ValueError(f"the generator needs height and width divisible by 4, got {height}x{width}; "
                             f"choose --crop_size_h/--crop_size_w (--fineSizeH/--fineSizeW) accordingly")
        image_feature = self.encoder_img(image)
        sample, slot, instances = _gather_instances(masks, present)
        if sample.numel() == 0:
            set_feature = image_feature.new_zeros(image_feature.shape)
            fake_image = self.decoder_img(torch.cat([image_feature, set_feature], 1))
            return fake_image, torch.full_like(masks, -1.0)
        instance_feature = self.encoder_seg(instances)
        set_feature = _sum_per_sample(instance_feature, sample, image_feature)
        fake_image = self.decoder_img(torch.cat([image_feature, set_feature], 1))
        fake_instances = self.decoder_seg(
            torch.cat([instance_feature, image_feature[sample], set_feature[sample]], 1))
        fake_masks = fake_instances.new_full(masks.shape, -1.0).index_put((sample, slot), fake_instances[:, 0])
        return fake_image, fake_masks


class SetPatchDiscriminator(nn.Module):
    """InstaGAN PatchGAN over (image, instance set): one score per patch, no sigmoid (LSGAN).

    ``feature_img`` / ``feature_seg`` (3 resp. 1 input channel) have ``n_layers`` stride-2 Conv4 layers with
    ndf * min(2**n, 8) channels (n = 0..n_layers-1; norm and LeakyReLU 0.2 after each, no norm after the first).
    The mask features are summed per sample over the instances and concatenated with the image feature
    (C = 2 * ndf * min(2**(n_layers-1), 8) channels); ``classifier`` is Conv4 s1 (-> 2 * ndf * min(2**n_layers, 8)),
    norm, LeakyReLU, Conv4 s1 (-> 1). n_layers=3 gives ndf, 2ndf, 4ndf; 8ndf -> 16ndf -> 1 and 30x30 scores for
    256x256 inputs. Every convolution is spectrally normalised when ``spectral_norm`` is set.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral_norm: bool = True):
        super().__init__()
        _check_positive(input_nc=input_nc, ndf=ndf, n_layers_D=n_layers)
        self.feature_img = nn.Sequential(*_patch_feature_layers(input_nc, ndf, n_layers, norm, spectral_norm))
        self.feature_seg = nn.Sequential(*_patch_feature_layers(1, ndf, n_layers, norm, spectral_norm))
        feature_channels = 2 * ndf * _patch_mult(n_layers - 1)
        # The authors' classifier keeps the bias of its first conv whatever the norm; kept for checkpoint parity.
        self.classifier = nn.Sequential(
            *_patch_head_layers(feature_channels, 2 * ndf * _patch_mult(n_layers), norm, spectral_norm, bias=True))

    def forward(self, image: Tensor, masks: Tensor, present: Tensor | None = None) -> Tensor:
        """``present``: optional (B, K) bool of the non-empty slots (see ``_gather_instances``)."""
        _check_inputs(image, masks)
        image_feature = self.feature_img(image)
        sample, _, instances = _gather_instances(masks, present)
        if sample.numel() == 0:
            set_feature = image_feature.new_zeros(image_feature.shape)
        else:
            set_feature = _sum_per_sample(self.feature_seg(instances), sample, image_feature)
        return self.classifier(torch.cat([image_feature, set_feature], 1))


# ---------------------------------------------------------------------------------------------- CycleGAN baselines
class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator (image -> image); keys ``model.<i>`` as in the CycleGAN code base."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance",
                 n_blocks: int = 9, padding_type: str = "reflect"):
        super().__init__()
        _check_generator_args(input_nc, output_nc, ngf, n_blocks)
        self.model = nn.Sequential(*_resnet_encoder_layers(input_nc, ngf, norm, n_blocks, padding_type),
                                   *_resnet_decoder_layers(ngf, output_nc, norm))

    def forward(self, image: Tensor) -> Tensor:
        return self.model(image)


class NLayerDiscriminator(nn.Module):
    """CycleGAN's PatchGAN (70x70 receptive field with n_layers=3): n_layers stride-2 Conv4 layers,
    Conv4 s1 (-> ndf * min(2**n_layers, 8)), Conv4 s1 (-> 1). No sigmoid."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral_norm: bool = False):
        super().__init__()
        _check_positive(input_nc=input_nc, ndf=ndf, n_layers_D=n_layers)
        self.model = nn.Sequential(
            *_patch_feature_layers(input_nc, ndf, n_layers, norm, spectral_norm),
            *_patch_head_layers(ndf * _patch_mult(n_layers - 1), ndf * _patch_mult(n_layers), norm, spectral_norm,
                                bias=conv_bias(norm)))

    def forward(self, image: Tensor) -> Tensor:
        return self.model(image)


class UnetBlock(nn.Module):
    """One level of pix2pix's U-Net: Conv4 s2 down, the inner levels, ConvTranspose4 s2 up, and the skip.

    ``outermost`` has no norm and ends in tanh without a skip; ``innermost`` has no inner levels and no norm on
    its way down (the CycleGAN code base's UnetSkipConnectionBlock, same layer order and biases).
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, inner: nn.Module | None = None,
                 outermost: bool = False, norm: str = "batch", dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        norm_layer, bias = get_norm_layer(norm), conv_bias(norm)
        down_conv = nn.Conv2d(input_nc or outer_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        up_in = inner_nc if inner is None else inner_nc * 2   # the inner level returns its input beside its output
        if outermost:
            layers = [down_conv, inner, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer_nc, 4, stride=2, padding=1), nn.Tanh()]
        elif inner is None:
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer_nc, 4, stride=2, padding=1, bias=bias), norm_layer(outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down_conv, norm_layer(inner_nc), inner, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer_nc, 4, stride=2, padding=1, bias=bias), norm_layer(outer_nc)]
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix's U-Net: ``num_downs`` halvings, so a side of 2**num_downs reaches 1x1 at the bottom (256 px: 8).

    Channels ngf, 2ngf, 4ngf, then 8ngf for every further level; dropout (the pix2pix noise) in the three
    8ngf levels above the innermost when ``dropout``.
    """

    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: bool = False):
        super().__init__()
        _check_positive(input_nc=input_nc, output_nc=output_nc, ngf=ngf)
        if num_downs < 5:
            raise ValueError(f"--num_downs {num_downs}: the U-Net needs at least 5 levels (images of 32 px or more)")
        block = UnetBlock(ngf * 8, ngf * 8, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, inner=block, norm=norm, dropout=dropout)
        for outer in (4, 2, 1):
            block = UnetBlock(ngf * outer, ngf * outer * 2, inner=block, norm=norm)
        self.model = UnetBlock(output_nc, ngf, input_nc=input_nc, inner=block, outermost=True, norm=norm)

    def forward(self, image: Tensor) -> Tensor:
        return self.model(image)


def unet_depth(height: int, width: int) -> int:
    """The U-Net depth for an input size: halvings until the shorter side is 1 (both sides must be multiples)."""
    side = min(height, width)
    depth = side.bit_length() - 1
    if side != 2 ** depth or height % side or width % side or depth < 5:
        raise ValueError(f"the U-Net needs --crop_size sides that are powers of two of at least 32 (got "
                         f"{width}x{height}), or give --num_downs")
    return depth


# ---------------------------------------------------------------------------------------------- factories
def define_G(net_name: str = "set_resnet", input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
             norm: str = "instance", init_type: str = "normal", init_gain: float = 0.02,
             padding_type: str = "reflect", num_downs: int = 8, dropout: bool = False) -> nn.Module:
    """Build and initialise a generator on the CPU: ``set_resnet`` (InstaGAN), ``resnet`` (CycleGAN) or ``unet``
    (pix2pix; ``num_downs`` levels, ``dropout`` in the deep levels)."""
    if net_name == "set_resnet":
        net: nn.Module = SetResnetGenerator(input_nc, output_nc, ngf, norm, n_blocks, padding_type)
    elif net_name == "resnet":
        net = ResnetGenerator(input_nc, output_nc, ngf, norm, n_blocks, padding_type)
    elif net_name == "unet":
        net = UnetGenerator(input_nc, output_nc, num_downs, ngf, norm, dropout)
    else:
        raise ValueError(f"unknown generator {net_name!r}; choose one of: {', '.join(GENERATOR_CHOICES)}")
    init_weights(net, init_type, init_gain)
    return net


def define_D(net_name: str = "set_patch", input_nc: int = 3, ndf: int = 64, n_layers: int = 3,
             norm: str = "instance", init_type: str = "normal", init_gain: float = 0.02, spectral_norm: bool = True,
             init_D: str = "pytorch") -> nn.Module:
    """Build a discriminator on the CPU: ``set_patch`` (InstaGAN) or ``patch`` (CycleGAN PatchGAN).

    ``init_D="pytorch"`` keeps PyTorch's default layer initialisation, which is what the authors' discriminator
    effectively had (their spectral-norm wrapper hid its weights from the N(0, 0.02) initialiser, see docs/method.md);
    ``init_D="same_as_G"`` applies ``init_type`` / ``init_gain`` as for the generators.
    """
    if init_D not in INIT_D_CHOICES:
        raise ValueError(f"--init_D {init_D!r} is not supported; choose one of: {', '.join(INIT_D_CHOICES)}")
    if net_name == "set_patch":
        net: nn.Module = SetPatchDiscriminator(input_nc, ndf, n_layers, norm, spectral_norm)
    elif net_name == "patch":
        net = NLayerDiscriminator(input_nc, ndf, n_layers, norm, spectral_norm)
    else:
        raise ValueError(f"unknown discriminator {net_name!r}; choose one of: {', '.join(DISCRIMINATOR_CHOICES)}")
    if init_D == "same_as_G":
        init_weights(net, init_type, init_gain)
    elif init_type not in INIT_CHOICES:
        raise ValueError(f"--init_type {init_type!r} is not supported; choose one of: {', '.join(INIT_CHOICES)}")
    return net


# ---------------------------------------------------------------------------------------------- multi-scale D
# pix2pixHD's multi-scale discriminator for the two-domain models (``--num_D``): copies of a model's own
# discriminator judging the input at full, 1/2, 1/4, ... resolution, and the intermediate features the
# feature-matching loss (``--lambda_feat``) compares.
def multiscale_downsample() -> nn.AvgPool2d:
    """pix2pixHD's pyramid step: 3x3 average pooling, stride 2, padding 1 not counted (a side n becomes ceil(n/2))."""
    return nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)


def multiscale_side(side: int, scale: int) -> int:
    """The side of an input of ``side`` pixels after ``scale`` steps of :func:`multiscale_downsample`."""
    for _ in range(scale):
        side = (side + 1) // 2
    return side


def downsample_masks(masks: Tensor, present: Tensor, pool: nn.Module) -> Tensor:
    """Instance masks (B, K, H, W) in [-1, 1] pooled as the image: averages, so they stay in [-1, 1] (clamped
    against rounding); the slots that are not ``present`` ((B, K) bool) stay exactly -1 (empty)."""
    pooled = pool(masks).clamp(-1.0, 1.0)
    empty = ~present.to(masks.device, non_blocking=True)
    return pooled.masked_fill(empty[:, :, None, None], -1.0)


class MultiscaleDiscriminators(nn.Module):
    """``len(discriminators)`` (= ``--num_D``) discriminators of one kind: ``scales[k]`` judges the input
    downsampled k times (:func:`multiscale_downsample`), so ``scales[0]`` sees the full resolution.

    ``forward(image)`` for image discriminators (:class:`NLayerDiscriminator`), ``forward(image, masks, present)``
    for set discriminators (:class:`SetPatchDiscriminator`): the masks are pooled with the image and empty slots
    stay exactly -1 (:func:`downsample_masks`); which slots hold an instance is decided once, at full
    resolution. Returns the predictions per scale, finest first. Keys ``scales.<k>.<the discriminator's keys>``.
    """

    def __init__(self, discriminators: list[nn.Module], n_layers: int):
        super().__init__()
        if len(discriminators) < 2:
            raise ValueError("a multi-scale discriminator needs --num_D 2 or more; --num_D 1 is the plain one")
        self.scales = nn.ModuleList(discriminators)
        self.n_layers = n_layers
        self.downsample = multiscale_downsample()

    @property
    def num_D(self) -> int:
        return len(self.scales)

    def scale_inputs(self, image: Tensor, masks: Tensor | None = None,
                     present: Tensor | None = None) -> list[tuple[Tensor, ...]]:
        """The inputs of each scale, finest first: ``(image,)`` or ``(image, masks, present)``."""
        coarsest = min(multiscale_side(side, self.num_D - 1) for side in image.shape[2:])
        if coarsest // 2 ** self.n_layers < 3:
            raise ValueError(f"--num_D {self.num_D}: the input {tuple(image.shape[2:])} is {coarsest} pixels at the "
                             f"coarsest scale, too small for --n_layers_D {self.n_layers} (at least "
                             f"{3 * 2 ** self.n_layers}); use fewer scales or larger images")
        if masks is None:
            inputs: list[tuple[Tensor, ...]] = [(image,)]
            for _ in range(1, self.num_D):
                inputs.append((self.downsample(inputs[-1][0]),))
            return inputs
        _check_inputs(image, masks)
        if present is None:
            present = instance_presence(masks)
        inputs = [(image, masks, present)]
        for _ in range(1, self.num_D):
            previous_image, previous_masks, _ = inputs[-1]
            inputs.append((self.downsample(previous_image), downsample_masks(previous_masks, present, self.downsample),
                           present))
        return inputs

    def forward(self, image: Tensor, masks: Tensor | None = None, present: Tensor | None = None) -> list[Tensor]:
        return [net(*inputs) for net, inputs in zip(self.scales, self.scale_inputs(image, masks, present))]

    def features(self, image: Tensor, masks: Tensor | None = None,
                 present: Tensor | None = None) -> list[list[Tensor]]:
        """Per scale, finest first, the intermediate features and last the prediction (see
        :func:`discriminator_features`)."""
        return [discriminator_features(net, *inputs)[0]
                for net, inputs in zip(self.scales, self.scale_inputs(image, masks, present))]


def _layer_outputs(layers: nn.Sequential, x: Tensor, features: list[Tensor]) -> Tensor:
    """Run ``layers`` on ``x``, appending the output of each LeakyReLU to ``features``; return the last output."""
    for layer in layers:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            features.append(x)
    return x


def discriminator_features(net: nn.Module, image: Tensor, masks: Tensor | None = None,
                           present: Tensor | None = None) -> list[list[Tensor]]:
    """The discriminator's intermediate features, per scale: the output of every LeakyReLU (n_layers + 1 of them,
    like the blocks of pix2pixHD's PatchGAN), then the prediction, which equals ``net(...)``'s.

    :class:`NLayerDiscriminator`: the activations of its one chain. :class:`SetPatchDiscriminator`: at each of the
    n_layers feature levels, [image activation, per-sample sum of the instances' activations] (the last one is the
    classifier's input), then the classifier's activation. :class:`MultiscaleDiscriminators`: one list per scale.
    A plain discriminator gives a list of one scale."""
    if isinstance(net, MultiscaleDiscriminators):
        return net.features(image, masks, present)
    features: list[Tensor] = []
    if isinstance(net, NLayerDiscriminator):
        features.append(_layer_outputs(net.model, image, features))
        return [features]
    if not isinstance(net, SetPatchDiscriminator):
        raise TypeError(f"no intermediate features for {type(net).__name__}: feature matching needs a patch or "
                        f"set-patch discriminator")
    _check_inputs(image, masks)
    sample, _, instances = _gather_instances(masks, present)
    h_img, h_seg = image, instances
    for img_layer, seg_layer in zip(net.feature_img, net.feature_seg, strict=True):
        h_img = img_layer(h_img)
        if sample.numel():
            h_seg = seg_layer(h_seg)
        if isinstance(img_layer, nn.LeakyReLU):
            set_feature = (_sum_per_sample(h_seg, sample, h_img) if sample.numel()
                           else h_img.new_zeros(h_img.shape))
            features.append(torch.cat([h_img, set_feature], 1))
    features.append(_layer_outputs(net.classifier, features[-1], features))
    return [features]


@contextlib.contextmanager
def spectral_norm_frozen(net: nn.Module) -> Iterator[None]:
    """Inside: ``net``'s spectrally normalised weights without a power iteration per call (their parametrisations
    in eval mode; nothing else changes mode), so a second pass sees exactly the weights of the pass before it."""
    parametrizations = [p for module in net.modules() if parametrize.is_parametrized(module, "weight")
                        for p in module.parametrizations.weight]
    modes = [p.training for p in parametrizations]
    try:
        for p in parametrizations:
            p.eval()
        yield
    finally:
        for p, mode in zip(parametrizations, modes):
            p.train(mode)
