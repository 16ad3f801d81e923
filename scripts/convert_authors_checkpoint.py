"""Convert checkpoints of the authors' InstaGAN code (PyTorch 0.4) into this project's format.

    python -m scripts.convert_authors_checkpoint --src ./pretrained/pants2skirt_mhp \
        --dst ./checkpoints/pants2skirt_mhp_instagan [--epoch latest] [--ngf 64 --ndf 64 --n_blocks_G 9 --n_layers_D 3]

``--src`` is a folder holding ``<epoch>_net_G_A.pth``, ``_G_B``, ``_D_A``, ``_D_B`` (any that exist are
converted) or the files themselves (the network is read from the file name). The results are written as
``<dst>/<epoch>_net_<name>.pth``, ready for ``test.py --epoch <epoch>``. Generator keys are already ours; the
discriminator's spectral-norm tensors are renamed (their ``module.weight_bar/_u/_v`` -> PyTorch's
parametrisation); running-statistics keys of instance norm layers are dropped.
"""

from __future__ import annotations

import argparse
import pickle
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from models.networks import SetPatchDiscriminator, SetResnetGenerator
from util.checkpoint import save_atomic

NET_NAMES = ("G_A", "G_B", "D_A", "D_B")
NORM_STAT_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")
# authors' spectral-norm tensor name -> PyTorch parametrisation name (same tensor, same shape)
AUTHORS_TO_OURS_SN = {
    "module.weight_bar": "parametrizations.weight.original",
    "module.weight_u": "parametrizations.weight.0._u",
    "module.weight_v": "parametrizations.weight.0._v",
    "module.bias": "bias",
}
FILE_PATTERN = re.compile(r"^(?P<epoch>.+)_net_(?P<net>[GD]_[AB])\.pth$")


class ConversionError(RuntimeError):
    """A file that cannot be converted; the message names the file and what to do."""


# ---------------------------------------------------------------------------------------------- key mapping
def _strip_wrapper_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Remove a ``module.`` prefix that a DataParallel-wrapped save leaves on every key."""
    if state and all(key.startswith("module.") for key in state):
        return {key[len("module."):]: value for key, value in state.items()}
    return dict(state)


def _drop_norm_stats(state: dict[str, Tensor], keep: Iterable[str] | None) -> dict[str, Tensor]:
    kept = set(keep or ())
    return {k: v for k, v in state.items() if not k.endswith(NORM_STAT_SUFFIXES) or k in kept}


def convert_generator_state(state: dict[str, Tensor], keep: Iterable[str] | None = None) -> dict[str, Tensor]:
    """Authors' generator state dict -> ours (same keys; norm running statistics not in ``keep`` dropped)."""
    return _drop_norm_stats(_strip_wrapper_prefix(state), keep)


def convert_discriminator_state(state: dict[str, Tensor], keep: Iterable[str] | None = None) -> dict[str, Tensor]:
    """Authors' discriminator state dict -> ours: ``<layer>.module.weight_bar`` -> ``<layer>.parametrizations.
    weight.original``, ``weight_u/_v`` -> ``parametrizations.weight.0._u/_v``, ``module.bias`` -> ``bias``."""
    converted = {}
    for key, value in _drop_norm_stats(_strip_wrapper_prefix(state), keep).items():
        for theirs, ours in AUTHORS_TO_OURS_SN.items():
            if key.endswith("." + theirs):
                key = key[: -len(theirs)] + ours
                break
        converted[key] = value
    return converted


def to_authors_discriminator_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our discriminator state dict -> the authors' layout (the inverse of :func:`convert_discriminator_state`)."""
    converted = {}
    for key, value in state.items():
        for theirs, ours in AUTHORS_TO_OURS_SN.items():
            if key.endswith("." + ours) and (ours != "bias" or _is_spectral_layer(state, key[: -len(ours)])):
                key = key[: -len(ours)] + theirs
                break
        converted[key] = value
    return converted


def _is_spectral_layer(state: dict[str, Tensor], layer_prefix: str) -> bool:
    return layer_prefix + "parametrizations.weight.original" in state


# ---------------------------------------------------------------------------------------------- option inference
def _guess_generator_options(state: dict[str, Tensor]) -> str:
    first = state.get("encoder_img.1.weight")
    if first is None:
        return "it has no encoder_img.1.weight: is it an InstaGAN generator (G_A/G_B)?"
    blocks = {key.split(".")[1] for key in state if key.startswith("encoder_img.") and ".conv_block." in key}
    return f"looks like --ngf {first.shape[0]} --n_blocks_G {len(blocks)}"


def _guess_discriminator_options(state: dict[str, Tensor]) -> str:
    first = state.get("feature_img.0.parametrizations.weight.original")
    if first is None:
        return "it has no feature_img.0.module.weight_bar: is it an InstaGAN discriminator (D_A/D_B)?"
    layers = [key for key in state if key.startswith("feature_img.") and key.endswith(".weight.original")]
    return f"looks like --ndf {first.shape[0]} --n_layers_D {len(layers)}"


# ---------------------------------------------------------------------------------------------- files
def load_authors_file(path: Path) -> dict[str, Tensor]:
    """``torch.load`` with ``weights_only=True`` on the CPU; a one-line error for unreadable files."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConversionError(f"{path}: no such file; check --src and --epoch") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        first_line = next(iter(str(err).strip().splitlines()), type(err).__name__)
        if "weights_only" in first_line:   # torch's hint to load with weights_only=False: unsafe advice here
            first_line = "not a weights-only PyTorch file"
        raise ConversionError(f"{path}: cannot be read as a weights-only state dict ({first_line}); is it one of "
                              f"the authors' <epoch>_net_<G|D>_<A|B>.pth files, complete?") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConversionError(f"{path}: expected a state dict of tensors (a <epoch>_net_<G|D>_<A|B>.pth file)")
    return state


def convert_into(net: nn.Module, state: dict[str, Tensor], path: Path, options: argparse.Namespace) -> nn.Module:
    """Map ``state`` (authors' layout) into ``net`` strictly; on mismatch name the file and the likely option."""
    is_generator = isinstance(net, SetResnetGenerator)
    own_keys = net.state_dict().keys()
    if is_generator:
        ours = convert_generator_state(state, own_keys)
        built = f"--ngf {options.ngf} --n_blocks_G {options.n_blocks_G}"
        guess = _guess_generator_options
    else:
        ours = convert_discriminator_state(state, own_keys)
        built = f"--ndf {options.ndf} --n_layers_D {options.n_layers_D}"
        guess = _guess_discriminator_options
    try:
        net.load_state_dict(ours, strict=True)
    except RuntimeError:
        raise ConversionError(f"{path} does not fit the network built with {built}: {guess(ours)} "
                              f"(pass those options; the converter expects instance norm)") from None
    return net


def build_network(net_name: str, options: argparse.Namespace) -> nn.Module:
    if net_name.startswith("G"):
        return SetResnetGenerator(ngf=options.ngf, n_blocks=options.n_blocks_G)
    return SetPatchDiscriminator(ndf=options.ndf, n_layers=options.n_layers_D)


def find_sources(sources: list[Path], epoch: str) -> dict[str, Path]:
    """Net name -> file: from one folder (``<epoch>_net_<name>.pth``) or from file names."""
    if len(sources) == 1 and sources[0].is_dir():
        found = {name: sources[0] / f"{epoch}_net_{name}.pth" for name in NET_NAMES}
        found = {name: path for name, path in found.items() if path.is_file()}
        if not found:
            raise ConversionError(f"{sources[0]} holds no {epoch}_net_{{G_A,G_B,D_A,D_B}}.pth; check --src and "
                                  f"--epoch")
        return found
    found = {}
    for path in sources:
        match = FILE_PATTERN.match(path.name)
        if match is None:
            raise ConversionError(f"{path}: cannot tell the network from the name; expected "
                                  f"<epoch>_net_<G_A|G_B|D_A|D_B>.pth")
        if not path.is_file():
            raise ConversionError(f"{path}: no such file; check --src")
        if match["net"] in found:
            raise ConversionError(f"{path} and {found[match['net']]} are both {match['net']}; pass one of them")
        found[match["net"]] = path
    return found


def convert(options: argparse.Namespace) -> list[Path]:
    """Convert every source file; returns the written paths."""
    written = []
    for net_name, source in find_sources(options.src, options.epoch).items():
        net = convert_into(build_network(net_name, options), load_authors_file(source), source, options)
        target = options.dst / f"{options.epoch}_net_{net_name}.pth"
        save_atomic(net.state_dict(), target)  # an interrupted run leaves no truncated checkpoint
        written.append(target)
    return written


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, nargs="+", required=True,
                        help="folder with <epoch>_net_{G_A,G_B,D_A,D_B}.pth, or those files")
    parser.add_argument("--dst", type=Path, required=True, help="checkpoint folder to write, e.g. ./checkpoints/NAME")
    parser.add_argument("--epoch", default="latest", help="epoch of the files to read from a folder and to write")
    parser.add_argument("--ngf", type=int, default=64, help="generator filters in the first conv layer")
    parser.add_argument("--ndf", type=int, default=64, help="discriminator filters in the first conv layer")
    parser.add_argument("--n_blocks_G", type=int, default=9, help="ResNet blocks in each generator encoder")
    parser.add_argument("--n_layers_D", type=int, default=3, help="stride-2 layers in each discriminator extractor")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        written = convert(options)
    except (ConversionError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
