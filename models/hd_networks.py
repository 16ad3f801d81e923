"""pix2pixHD networks (Wang et al., CVPR 2018): coarse-to-fine generator, multi-scale discriminator, instance encoder.

Layer sizes follow NVIDIA's reference implementation (``models/networks.py`` of NVIDIA/pix2pixHD), and so do the
module names and ``nn.Sequential`` indices (``model``, ``model1_1`` / ``model1_2``, ``scale<k>_layer<j>``), so a
reference checkpoint's state-dict keys fit these modules. As in the reference, every convolution has a bias, also
in front of batch norm (CycleGAN's code base drops it there; ``models.networks.conv_bias``).

Label-map helpers for the generator input live here too: :func:`one_hot_labels` and the instance boundary map
:func:`instance_boundary_map` that is concatenated to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from models.networks import ReflectionPad2d, ReplicationPad2d, get_norm_layer, init_weights

HD_GENERATOR_CHOICES = ("global", "local")
HD_PADDING_CHOICES = ("reflect", "replicate", "zero")
# The reference's PatchGAN caps its width at 512 channels (not at 8 * ndf as CycleGAN's does).
MAX_DISCRIMINATOR_CHANNELS = 512
# Kernel and padding of the discriminator convolutions: 4x4, padding ceil((4 - 1) / 2) = 2.
D_KERNEL, D_PADDING = 4, 2


# ---------------------------------------------------------------------------------------------- helpers
def _check_at_least(minimum: int, **values: int) -> None:
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"--{name} must be at least {minimum} (got {value})")


def _pad(padding_type: str, size: int) -> nn.Module:
    layers = {"reflect": ReflectionPad2d, "replicate": ReplicationPad2d, "zero": nn.ZeroPad2d}
    if padding_type not in layers:
        raise ValueError(f"padding_type {padding_type!r} is not supported; choose one of: "
                         f"{', '.join(HD_PADDING_CHOICES)}")
    return layers[padding_type](size)


def _check_divisible(x: Tensor, multiple: int, net: str) -> None:
    """The generators/encoder go down by 2 ``log2(multiple)`` times and up again: H and W must divide evenly."""
    if x.dim() != 4:
        raise ValueError(f"{net} expects a (B, C, H, W) input; got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(f"{net}: height and width must be divisible by {multiple} (got {height}x{width}); "
                         f"choose --crop_size / --load_size accordingly")


def _pyramid_pool() -> nn.AvgPool2d:
    """The 2x downsampling between pyramid levels: 3x3 average, stride 2, padding 1 not counted in the mean."""
    return nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)


def _down(in_channels: int, out_channels: int, norm: str) -> list[nn.Module]:
    """Conv3 stride 2 (halves H and W), norm, ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1), get_norm_layer(norm)(out_channels),
            nn.ReLU(True)]


def _up(in_channels: int, out_channels: int, norm: str) -> list[nn.Module]:
    """ConvTranspose3 stride 2 (doubles H and W), norm, ReLU."""
    return [nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
            get_norm_layer(norm)(out_channels), nn.ReLU(True)]


def _stem(in_channels: int, out_channels: int, norm: str) -> list[nn.Module]:
    """ReflPad3, Conv7, norm, ReLU: the full-resolution entry of generators and encoder."""
    return [ReflectionPad2d(3), nn.Conv2d(in_channels, out_channels, 7), get_norm_layer(norm)(out_channels),
            nn.ReLU(True)]


def _to_image(in_channels: int, out_channels: int) -> list[nn.Module]:
    """ReflPad3, Conv7, Tanh: the exit to [-1, 1]."""
    return [ReflectionPad2d(3), nn.Conv2d(in_channels, out_channels, 7), nn.Tanh()]


def _encoder_decoder(input_nc: int, output_nc: int, ngf: int, n_downsampling: int, n_blocks: int, norm: str,
                     padding_type: str) -> list[nn.Module]:
    """Stem, n_downsampling x (down, channels x 2), n_blocks ResNet blocks, n_downsampling x (up, / 2), to image."""
    layers = _stem(input_nc, ngf, norm)
    for level in range(n_downsampling):
        layers += _down(ngf * 2 ** level, ngf * 2 ** (level + 1), norm)
    layers += [HDResnetBlock(ngf * 2 ** n_downsampling, norm, padding_type) for _ in range(n_blocks)]
    for level in range(n_downsampling, 0, -1):
        layers += _up(ngf * 2 ** level, ngf * 2 ** (level - 1), norm)
    return layers + _to_image(ngf, output_nc)


# ---------------------------------------------------------------------------------------------- input maps
def instance_boundary_map(inst: Tensor) -> Tensor:
    """Instance ids ``(B, 1, H, W)`` -> float ``(B, 1, H, W)``: 1 where a 4-neighbour has another id, else 0.

    Both pixels of each differing neighbour pair are marked, so a boundary is two pixels wide (as the reference).
    """
    if inst.dim() != 4 or inst.shape[1] != 1:
        raise ValueError(f"expected an instance map (B, 1, H, W); got shape {tuple(inst.shape)}")
    edge = torch.zeros(inst.shape, dtype=torch.bool, device=inst.device)
    horizontal = inst[..., :, 1:] != inst[..., :, :-1]
    vertical = inst[..., 1:, :] != inst[..., :-1, :]
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    return edge.float()


def one_hot_labels(label: Tensor, label_nc: int) -> Tensor:
    """Label ids ``(B, 1, H, W)`` (integer) -> float one-hot ``(B, label_nc, H, W)``.

    Raises ValueError (naming ``--label_nc``) for an id outside ``[0, label_nc)``.
    """
    if label.dim() != 4 or label.shape[1] != 1:
        raise ValueError(f"expected a label map (B, 1, H, W); got shape {tuple(label.shape)}")
    if label.is_floating_point() or label.is_complex():
        raise ValueError(f"label map must hold integer ids (got {label.dtype}); convert it with .long()")
    _check_at_least(1, label_nc=label_nc)
    label = label.long()
    if label.numel():
        low, high = int(label.min()), int(label.max())
        if low < 0 or high >= label_nc:
            raise ValueError(f"label ids must lie in [0, --label_nc) = [0, {label_nc}); found ids {low}..{high}: "
                             f"raise --label_nc or remap the labels")
    one_hot = torch.zeros(label.shape[0], label_nc, *label.shape[2:], device=label.device)
    return one_hot.scatter_(1, label, 1.0)


def instance_mean(features: Tensor, inst: Tensor) -> Tensor:
    """Replace ``features`` ``(B, C, H, W)`` by their mean over each instance (per sample, per channel).

    ``inst`` ``(B, 1, H, W)`` holds integer instance ids; the same id in two samples is two instances. Done with one
    ``index_add_`` over all pixels of the batch (pixels grouped by (sample, id)); gradients reach every pixel.
    """
    if inst.dim() != 4 or inst.shape[1] != 1 or inst.shape[0] != features.shape[0] \
            or inst.shape[2:] != features.shape[2:]:
        raise ValueError(f"instance map {tuple(inst.shape)} must be (B, 1, H, W) matching the features "
                         f"{tuple(features.shape)}")
    if inst.is_floating_point() or inst.is_complex():
        raise ValueError(f"instance map must hold integer ids (got {inst.dtype}); convert it with .long()")
    batch, channels, height, width = features.shape
    if features.numel() == 0:
        return features.clone()
    ids = inst.reshape(batch, height * width).long().to(features.device)
    ids = ids - ids.min()  # non-negative, so that (sample, id) pairs get distinct keys below
    span = int(ids.max()) + 1
    keys = ids + torch.arange(batch, device=ids.device).unsqueeze(1) * span
    _, group = torch.unique(keys.reshape(-1), return_inverse=True)  # group index of every pixel
    n_groups = int(group.max()) + 1
    pixels = features.permute(0, 2, 3, 1).reshape(-1, channels)  # (B*H*W, C), same order as ``group``
    sums = pixels.new_zeros(n_groups, channels).index_add_(0, group, pixels)
    counts = torch.bincount(group, minlength=n_groups).to(pixels.dtype).unsqueeze(1)
    means = sums / counts
    return means[group].reshape(batch, height, width, channels).permute(0, 3, 1, 2)


# ---------------------------------------------------------------------------------------------- generators
class HDResnetBlock(nn.Module):
    """x + [pad, Conv3, norm, ReLU, pad, Conv3, norm](x); keys ``conv_block.1`` / ``conv_block.5`` (convs with bias)."""

    def __init__(self, channels: int, norm: str = "instance", padding_type: str = "reflect"):
        super().__init__()
        norm_layer = get_norm_layer(norm)
        self.conv_block = nn.Sequential(
            _pad(padding_type, 1), nn.Conv2d(channels, channels, 3), norm_layer(channels), nn.ReLU(True),
            _pad(padding_type, 1), nn.Conv2d(channels, channels, 3), norm_layer(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class GlobalGenerator(nn.Module):
    """pix2pixHD's G1: Conv7 (ngf), n_downsampling stride-2 Conv3 doubling the width, n_blocks ResNet blocks,
    n_downsampling stride-2 ConvTranspose3 halving it, Conv7 (output_nc), Tanh. Keys ``model.<i>``.

    Input H and W must be divisible by ``2 ** n_downsampling``; the output has the input's size.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 4, n_blocks: int = 9,
                 norm: str = "instance", padding_type: str = "reflect"):
        super().__init__()
        _check_at_least(1, input_nc=input_nc, output_nc=output_nc, ngf=ngf)
        _check_at_least(0, n_downsample_global=n_downsampling, n_blocks_global=n_blocks)
        self.n_downsampling = n_downsampling
        self.model = nn.Sequential(*_encoder_decoder(input_nc, output_nc, ngf, n_downsampling, n_blocks, norm,
                                                     padding_type))

    def forward(self, x: Tensor) -> Tensor:
        _check_divisible(x, 2 ** self.n_downsampling, "GlobalGenerator")
        return self.model(x)


class LocalEnhancer(nn.Module):
    """pix2pixHD's G = {G1, G2, ...}: a global generator on the input downsampled once per enhancer, refined by
    ``n_local_enhancers`` enhancers, each working at twice the resolution of the previous level.

    The global generator has width ``ngf * 2 ** n_local_enhancers`` and lacks its last ReflPad/Conv7/Tanh (``model``:
    its output is a feature map). Enhancer ``n`` (1 = coarsest, width ``w = ngf * 2 ** (n_local_enhancers - n)``)
    has a front end ``model<n>_1`` (Conv7 -> w, stride-2 Conv3 -> 2w) whose output is ADDED to the previous level's
    last feature map, and a back end ``model<n>_2`` (n_blocks_local ResNet blocks at 2w, stride-2 ConvTranspose3 ->
    w, and for the last enhancer ReflPad3, Conv7 -> output_nc, Tanh). The pyramid is built with 3x3 average pooling
    (stride 2, padding 1, padding not counted).

    Input H and W must be divisible by ``2 ** (n_downsample_global + n_local_enhancers)``.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 32, n_downsample_global: int = 3,
                 n_blocks_global: int = 9, n_local_enhancers: int = 1, n_blocks_local: int = 3,
                 norm: str = "instance", padding_type: str = "reflect"):
        super().__init__()
        _check_at_least(1, input_nc=input_nc, output_nc=output_nc, ngf=ngf, n_local_enhancers=n_local_enhancers)
        _check_at_least(0, n_downsample_global=n_downsample_global, n_blocks_global=n_blocks_global,
                        n_blocks_local=n_blocks_local)
        self.n_local_enhancers = n_local_enhancers
        self.multiple = 2 ** (n_downsample_global + n_local_enhancers)
        trunk = GlobalGenerator(input_nc, output_nc, ngf * 2 ** n_local_enhancers, n_downsample_global,
                                n_blocks_global, norm, padding_type).model
        self.model = nn.Sequential(*list(trunk)[:-3])  # without ReflPad3, Conv7, Tanh
        for n in range(1, n_local_enhancers + 1):
            width = ngf * 2 ** (n_local_enhancers - n)
            front = _stem(input_nc, width, norm) + _down(width, width * 2, norm)
            back: list[nn.Module] = [HDResnetBlock(width * 2, norm, padding_type) for _ in range(n_blocks_local)]
            back += _up(width * 2, width, norm)
            if n == n_local_enhancers:
                back += _to_image(width, output_nc)
            self.add_module(f"model{n}_1", nn.Sequential(*front))
            self.add_module(f"model{n}_2", nn.Sequential(*back))
        self.downsample = _pyramid_pool()

    def enhancer(self, n: int) -> tuple[nn.Sequential, nn.Sequential]:
        """Front and back end of enhancer ``n`` (1 = coarsest, ``n_local_enhancers`` = full resolution)."""
        if not 1 <= n <= self.n_local_enhancers:
            raise ValueError(f"enhancer {n} does not exist; this net has 1..{self.n_local_enhancers}")
        return getattr(self, f"model{n}_1"), getattr(self, f"model{n}_2")

    def enhancer_parameters(self, finest_only: bool = False) -> Iterator[nn.Parameter]:
        """Parameters of the local enhancers, none of the global generator (``--niter_fix_global``: train these
        first while the global generator stays fixed).

        ``finest_only=True`` gives only the full-resolution enhancer's, which is what the reference trains in that
        phase (enhancers are added one at a time, each on top of an already trained coarser net)."""
        levels = [self.n_local_enhancers] if finest_only else range(1, self.n_local_enhancers + 1)
        for n in levels:
            for part in self.enhancer(n):
                yield from part.parameters()

    def global_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the global generator part (``model``)."""
        return self.model.parameters()

    def forward(self, x: Tensor) -> Tensor:
        _check_divisible(x, self.multiple, "LocalEnhancer")
        pyramid = [x]  # pyramid[k]: the input downsampled k times
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        features = self.model(pyramid[-1])
        for n in range(1, self.n_local_enhancers + 1):
            front, back = self.enhancer(n)
            features = back(front(pyramid[self.n_local_enhancers - n]) + features)
        return features


class Encoder(nn.Module):
    """pix2pixHD's instance-wise feature encoder E: Conv7 (ngf), n_downsampling stride-2 Conv3 doubling the width,
    as many stride-2 ConvTranspose3 halving it, Conv7 (output_nc), Tanh (keys ``model.<i>``); then every output
    channel is replaced by its mean over each instance (see :func:`instance_mean`).

    ``forward(image (B, input_nc, H, W), inst (B, 1, H, W) integer ids) -> (B, output_nc, H, W)``, constant inside
    each instance, in [-1, 1]. H and W must be divisible by ``2 ** n_downsampling``.
    """

    def __init__(self, input_nc: int, output_nc: int = 3, ngf: int = 16, n_downsampling: int = 4,
                 norm: str = "instance"):
        super().__init__()
        _check_at_least(1, input_nc=input_nc, feat_num=output_nc, nef=ngf)
        _check_at_least(0, n_downsample_E=n_downsampling)
        self.n_downsampling = n_downsampling
        self.model = nn.Sequential(*_encoder_decoder(input_nc, output_nc, ngf, n_downsampling, 0, norm, "reflect"))

    def forward(self, image: Tensor, inst: Tensor) -> Tensor:
        _check_divisible(image, 2 ** self.n_downsampling, "Encoder")
        return instance_mean(self.model(image), inst)


# ---------------------------------------------------------------------------------------------- discriminators
def _patch_gan_layers(input_nc: int, ndf: int, n_layers: int, norm: str, use_sigmoid: bool) -> list[nn.Sequential]:
    """The reference PatchGAN as n_layers + 2 blocks (each block's output is one "intermediate feature"):
    Conv4 s2 (ndf) + LeakyReLU; n_layers - 1 x [Conv4 s2 (doubling, capped at 512), norm, LeakyReLU];
    Conv4 s1 (doubling, capped), norm, LeakyReLU; Conv4 s1 (-> 1) [+ Sigmoid]. All with padding 2."""
    norm_layer = get_norm_layer(norm)

    def conv(in_channels: int, out_channels: int, stride: int) -> nn.Conv2d:
        return nn.Conv2d(in_channels, out_channels, D_KERNEL, stride=stride, padding=D_PADDING)

    blocks = [nn.Sequential(conv(input_nc, ndf, 2), nn.LeakyReLU(0.2, True))]
    width = ndf
    for stride in [2] * (n_layers - 1) + [1]:
        previous, width = width, min(width * 2, MAX_DISCRIMINATOR_CHANNELS)
        blocks.append(nn.Sequential(conv(previous, width, stride), norm_layer(width), nn.LeakyReLU(0.2, True)))
    head: list[nn.Module] = [conv(width, 1, 1)] + ([nn.Sigmoid()] if use_sigmoid else [])
    blocks.append(nn.Sequential(*head))
    return blocks


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's D1..D_num_D: identical PatchGANs on the input at full, 1/2, 1/4, ... resolution (3x3 average
    pooling, stride 2, padding 1 not counted, between scales).

    ``forward(x) -> list`` over scales, finest first; per scale a list: with ``get_intermediate_features`` the
    output of each of the n_layers + 2 blocks (last = the patch prediction, one channel), else ``[prediction]``.

    Names as the reference: ``scale<k>_layer<j>`` (with intermediate features) or ``layer<k>`` (without), where
    scale ``k`` sees the input downsampled ``num_D - 1 - k`` times (so ``k = num_D - 1`` is the full resolution).
    Unlike the reference, ``use_sigmoid`` also applies with intermediate features (the reference drops it there).
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 use_sigmoid: bool = False, num_D: int = 3, get_intermediate_features: bool = True):
        super().__init__()
        _check_at_least(1, input_nc=input_nc, ndf=ndf, n_layers_D=n_layers, num_D=num_D)
        self.num_D, self.n_layers = num_D, n_layers
        self.get_intermediate_features = get_intermediate_features
        for k in range(num_D):
            blocks = _patch_gan_layers(input_nc, ndf, n_layers, norm, use_sigmoid)
            if get_intermediate_features:
                for j, block in enumerate(blocks):
                    self.add_module(f"scale{k}_layer{j}", block)
            else:
                self.add_module(f"layer{k}", nn.Sequential(*[m for block in blocks for m in block]))
        self.downsample = _pyramid_pool()

    def scale_blocks(self, scale: int) -> list[nn.Module]:
        """The blocks of the discriminator for ``scale`` (0 = full resolution, 1 = half, ...)."""
        k = self.num_D - 1 - scale
        if self.get_intermediate_features:
            return [getattr(self, f"scale{k}_layer{j}") for j in range(self.n_layers + 2)]
        return [getattr(self, f"layer{k}")]

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        results = []
        for scale in range(self.num_D):
            if scale:
                x = self.downsample(x)
            outputs, h = [], x
            for block in self.scale_blocks(scale):
                h = block(h)
                outputs.append(h)
            results.append(outputs)
        return results


# ---------------------------------------------------------------------------------------------- factories
def define_hd_G(netG: str = "global", input_nc: int = 36, output_nc: int = 3, ngf: int = 64,
                n_downsample_global: int = 4, n_blocks_global: int = 9, n_local_enhancers: int = 1,
                n_blocks_local: int = 3, norm: str = "instance", init_gain: float = 0.02) -> nn.Module:
    """Build and initialise a pix2pixHD generator on the CPU: ``global`` (:class:`GlobalGenerator`) or ``local``
    (:class:`LocalEnhancer`; there ``ngf`` is the full-resolution enhancer's width, 32 in the paper's setup).

    Weights: convolutions N(0, init_gain), batch-norm scales N(1, init_gain), biases 0 (``models.networks
    .init_weights``; the reference leaves conv biases at PyTorch's default instead)."""
    if netG == "global":
        net: nn.Module = GlobalGenerator(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global, norm)
    elif netG == "local":
        net = LocalEnhancer(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global, n_local_enhancers,
                            n_blocks_local, norm)
    else:
        raise ValueError(f"--netG {netG!r} is not supported; choose one of: {', '.join(HD_GENERATOR_CHOICES)}")
    init_weights(net, "normal", init_gain)
    return net


def define_hd_D(input_nc: int = 39, ndf: int = 64, n_layers_D: int = 3, norm: str = "instance", num_D: int = 2,
                get_intermediate_features: bool = True, use_sigmoid: bool = False,
                init_gain: float = 0.02) -> MultiscaleDiscriminator:
    """Build and initialise a :class:`MultiscaleDiscriminator` on the CPU (initialised as :func:`define_hd_G`)."""
    net = MultiscaleDiscriminator(input_nc, ndf, n_layers_D, norm, use_sigmoid, num_D, get_intermediate_features)
    init_weights(net, "normal", init_gain)
    return net


def define_hd_encoder(input_nc: int = 3, feat_num: int = 3, nef: int = 16, n_downsampling: int = 4,
                      norm: str = "instance", init_gain: float = 0.02) -> Encoder:
    """Build and initialise the instance-wise feature :class:`Encoder` (``feat_num`` output channels)."""
    net = Encoder(input_nc, feat_num, nef, n_downsampling, norm)
    init_weights(net, "normal", init_gain)
    return net
