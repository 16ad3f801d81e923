"""Options shared by training and testing.

The model and the dataset named on the command line may add or change options through their static
``modify_commandline_options(parser, is_train)`` hook, as in the CycleGAN code base. The authors' flag
spellings (``--loadSizeH``, ``--fineSizeW``, ...) are accepted beside the modern ones.

Parsing and validating never touch the user's files (datasets, checkpoints): a bad combination fails
before anything is read or written. The one deliberate exception is TestOptions reading the training's
``train_opt.json`` (see options/test_options.py). Writing the option files is a separate, explicit step
(``save_options_text``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

import data
import models
from util.fileio import write_text_atomic

TRAINING_OPTIONS_JSON = "train_opt.json"


class OptionsError(SystemExit):
    """A bad option or combination: exits with status 2 and a message naming the option and the fix."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")
        self.message = message


class BaseOptions:
    """Builds the parser in two passes: first the base options, then the model's and dataset's additions."""

    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        g = parser.add_argument_group("experiment")
        g.add_argument("--dataroot", default="./datasets/shapes",
                       help="dataset folder holding <phase>A, <phase>A_seg, <phase>B, <phase>B_seg")
        g.add_argument("--name", default="experiment_name", help="experiment name; files go to checkpoints_dir/name")
        g.add_argument("--gpu_ids", default="auto",
                       help="GPU ids, e.g. 0 or 0,1,2; -1 for CPU; auto = GPU 0 if CUDA is available, else CPU")
        g.add_argument("--checkpoints_dir", default="./checkpoints", help="models and logs are saved here")
        g.add_argument("--seed", type=int, default=None, help="random seed for reproducible runs")
        g.add_argument("--verbose", action="store_true", help="print network architectures")
        g.add_argument("--suffix", default="", help="name suffix, formatted with the options, e.g. {model}_{ngf}")

        g = parser.add_argument_group("model")
        g.add_argument("--model", default="insta_gan", help=f"model to use: {', '.join(models.available_models())}")
        g.add_argument("--input_nc", type=int, default=3, help="image channels of the input (3 RGB, 1 grey)")
        g.add_argument("--output_nc", type=int, default=3, help="image channels of the output (3 RGB, 1 grey)")
        g.add_argument("--ngf", type=int, default=64, help="generator filters in the first conv layer")
        g.add_argument("--ndf", type=int, default=64, help="discriminator filters in the first conv layer")
        g.add_argument("--n_blocks_G", type=int, default=9, help="ResNet blocks in each generator encoder")
        g.add_argument("--n_layers_D", type=int, default=3, help="stride-2 layers in each discriminator extractor")
        g.add_argument("--norm", default="instance", choices=["instance", "batch", "none"], help="normalisation")
        g.add_argument("--init_type", default="normal", choices=["normal", "xavier", "kaiming", "orthogonal"],
                       help="weight initialisation of the generators")
        g.add_argument("--init_gain", type=float, default=0.02, help="scale of the initialisation")
        g.add_argument("--init_D", default="pytorch", choices=["pytorch", "same_as_G"],
                       help="discriminator init: pytorch = PyTorch's default, as the authors' code effectively "
                            "did; same_as_G = --init_type/--init_gain")
        g.add_argument("--no_dropout", action="store_true",
                       help="no dropout in pix2pix's U-Net (the only net here with dropout)")
        g.add_argument("--epoch", default="latest", help="which epoch to load: latest or a number")

        g = parser.add_argument_group("speed")
        g.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"],
                       help="mixed precision (autocast) on GPU or CPU; fp16 adds loss scaling")
        g.add_argument("--channels_last", action="store_true", help="channels-last memory format for convolutions")
        g.add_argument("--compile", action="store_true",
                       help="torch.compile the networks; falls back to eager mode with a warning where it fails")

        g = parser.add_argument_group("data")
        g.add_argument("--dataset_mode", default="unaligned_seg",
                       help=f"dataset to use: {', '.join(data.available_datasets())}")
        g.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="translation direction")
        g.add_argument("--serial_batches", action="store_true", help="take images in order, B paired with A's index")
        g.add_argument("--num_threads", type=int, default=None,
                       help="data-loading worker processes (default: min(4, the cores this process may use)); "
                            "more than the cores warns once")
        g.add_argument("--batch_size", type=int, default=1, help="images per batch (per process)")
        g.add_argument("--load_size", type=int, default=None, help="set --load_size_h and --load_size_w at once")
        g.add_argument("--crop_size", type=int, default=None, help="set --crop_size_h and --crop_size_w at once")
        g.add_argument("--load_size_h", "--loadSizeH", dest="load_size_h", type=int, default=286,
                       help="resize images to this height")
        g.add_argument("--load_size_w", "--loadSizeW", dest="load_size_w", type=int, default=286,
                       help="resize images to this width")
        g.add_argument("--crop_size_h", "--fineSizeH", dest="crop_size_h", type=int, default=256,
                       help="then crop to this height")
        g.add_argument("--crop_size_w", "--fineSizeW", dest="crop_size_w", type=int, default=256,
                       help="then crop to this width")
        g.add_argument("--preprocess", "--resize_or_crop", dest="preprocess", default="resize_and_crop",
                       choices=["resize_and_crop", "resize", "crop", "none"], help="image scaling and cropping")
        g.add_argument("--no_flip", action="store_true", help="do not flip images for augmentation")
        g.add_argument("--max_dataset_size", type=float, default=math.inf, help="use at most this many images")
        g.add_argument("--max_instances", type=int, default=20,
                       help="mask slots loaded per image (the authors used 20); extra masks are dropped")

        g = parser.add_argument_group("dashboard")
        g.add_argument("--display_winsize", type=int, default=256, help="display size of images in HTML/visdom")
        g.add_argument("--display_id", type=int, default=1, help="visdom window id; 0 turns visdom off")
        g.add_argument("--display_server", default="http://localhost", help="visdom server address")
        g.add_argument("--display_env", default="main", help="visdom environment")
        g.add_argument("--display_port", type=int, default=8097, help="visdom server port")
        g.add_argument("--display_ncols", type=int, default=4, help="images per row in the visdom grid")
        return parser

    # ------------------------------------------------------------------ parsing
    def build_parser(self, argv: list[str] | None) -> argparse.ArgumentParser:
        """The base options, then the model's and the dataset's additions.

        The intermediate passes (which learn --model and --dataset_mode) run on a parser without --help, so
        that ``--help`` reaches the final parser and lists the model's and the dataset's options too."""
        parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                         allow_abbrev=False, add_help=False)
        parser = self.initialize(parser)
        self.adjust_defaults(parser, argv)
        known, _ = parser.parse_known_args(argv)
        parser = self._hook(models, "model", known.model)(parser, self.is_train)
        self.adjust_defaults(parser, argv)
        known, _ = parser.parse_known_args(argv)  # the model may change the dataset default
        parser = self._hook(data, "dataset_mode", known.dataset_mode)(parser, self.is_train)
        self.adjust_defaults(parser, argv)
        parser.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                            help="show this help message, with the model's and the dataset's options, and exit")
        return parser

    def adjust_defaults(self, parser: argparse.ArgumentParser, argv: list[str] | None) -> None:
        """Called after each stage of ``build_parser``; TestOptions puts the training's values here."""

    def complete(self, opt: argparse.Namespace) -> None:
        """Called on the parsed options before validation; TestOptions adds ``opt.train_direction``."""

    @staticmethod
    def _hook(registry, option: str, name: str):
        try:
            return registry.get_option_setter(name)
        except ValueError as err:
            raise OptionsError(f"--{option} {name}: {err}") from None

    def parse(self, argv: list[str] | None = None, save: bool = True, show: bool = True) -> argparse.Namespace:
        """Parse, validate, print (when ``show``) and write the option files (when ``save``, see
        ``save_options_text``). ``self.argv`` keeps the arguments parsed, for train_opt.json."""
        self.argv = list(sys.argv[1:] if argv is None else argv)
        parser = self.build_parser(self.argv)
        opt = parser.parse_args(self.argv)
        opt.isTrain = self.is_train
        self.complete(opt)
        self._apply_shortcuts(opt)
        if opt.suffix:
            opt.name = f"{opt.name}_{expand_suffix(opt)}"
        self.validate(opt)
        opt.gpu_ids = self._resolve_gpu_ids(opt.gpu_ids)
        text = format_options(opt, parser)
        if show:
            print(text)
        if save:
            save_options_text(opt, text, self.argv)
        self.parser = parser
        self.text = text
        return opt

    @staticmethod
    def _apply_shortcuts(opt: argparse.Namespace) -> None:
        if opt.load_size is not None:
            opt.load_size_h = opt.load_size_w = opt.load_size
        if opt.crop_size is not None:
            opt.crop_size_h = opt.crop_size_w = opt.crop_size

    def validate(self, opt: argparse.Namespace) -> None:
        """Reject combinations that would fail later, naming the option and the valid range."""
        for flag in ("load_size_h", "load_size_w", "crop_size_h", "crop_size_w", "batch_size", "ngf", "ndf",
                     "max_instances", "input_nc", "output_nc", "n_layers_D"):
            if getattr(opt, flag) < 1:
                raise OptionsError(f"--{flag} must be at least 1 (got {getattr(opt, flag)})")
        if opt.n_blocks_G < 0 or (opt.num_threads is not None and opt.num_threads < 0):
            raise OptionsError("--n_blocks_G and --num_threads must not be negative")
        if opt.preprocess in ("resize_and_crop", "crop"):
            for side in ("h", "w"):
                crop, load = getattr(opt, f"crop_size_{side}"), getattr(opt, f"load_size_{side}")
                if opt.preprocess == "resize_and_crop" and crop > load:
                    raise OptionsError(f"--crop_size_{side} {crop} is larger than --load_size_{side} {load}: "
                                       f"the crop must fit in the resized image")
        if opt.preprocess != "none":
            out_h, out_w = ((opt.load_size_h, opt.load_size_w) if opt.preprocess == "resize"
                            else (opt.crop_size_h, opt.crop_size_w))
            if out_h % 4 or out_w % 4:
                which = "--load_size_h/--load_size_w" if opt.preprocess == "resize" else "--crop_size_h/--crop_size_w"
                raise OptionsError(f"network input {out_h}x{out_w} must be a multiple of 4 (the generator "
                                   f"downsamples twice); change {which}")
        if opt.max_dataset_size < 1:
            raise OptionsError("--max_dataset_size must be at least 1")
        validate_name(opt.name)
        if not math.isfinite(opt.init_gain) or opt.init_gain <= 0:
            raise OptionsError(f"--init_gain must be a positive number (got {opt.init_gain})")
        validate_discriminator_depth(opt)
        validate_model = getattr(models.find_model_using_name(opt.model), "validate_options", None)
        if validate_model is not None:
            try:
                validate_model(opt)
            except ValueError as err:
                raise OptionsError(str(err)) from None

    @staticmethod
    def _resolve_gpu_ids(text: str) -> list[int]:
        if text == "auto":
            return [0] if torch.cuda.is_available() else []
        try:
            ids = [int(tok) for tok in str(text).split(",") if tok.strip() != ""]
        except ValueError:
            raise OptionsError(f"--gpu_ids {text!r}: give comma-separated integers, -1 for CPU, or auto") from None
        ids = [i for i in ids if i >= 0]
        available = torch.cuda.device_count()
        missing = [i for i in ids if i >= available]
        if missing:
            raise OptionsError(f"--gpu_ids {text}: GPU {missing[0]} does not exist (this machine has "
                               f"{available} CUDA device(s)); use --gpu_ids -1 for CPU")
        return ids


def expand_suffix(opt: argparse.Namespace) -> str:
    """``--suffix`` formatted with the options, e.g. ``{model}_{ngf}``."""
    try:
        return opt.suffix.format(**vars(opt))
    except (KeyError, IndexError, ValueError) as err:
        raise OptionsError(f"--suffix {opt.suffix!r}: {err.args[0]!r} is not an option name (use e.g. {{model}}_{{ngf}}; "
                           f"double braces for a literal brace)") from None


def validate_name(name: str) -> None:
    """A run name is one folder inside --checkpoints_dir, never a path out of it."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise OptionsError(f"--name {name!r} must be a plain folder name (no '/', '..' or empty name): the run is "
                           f"written to <checkpoints_dir>/<name>")


def validate_discriminator_depth(opt: argparse.Namespace) -> None:
    """Each of --n_layers_D stride-2 convolutions halves the input and the two 4x4 stride-1 convolutions at
    the end take 3 pixels: the input must keep at least 3 pixels after the halvings."""
    if opt.preprocess == "none":
        return
    side = min((opt.load_size_h, opt.load_size_w) if opt.preprocess == "resize" else (opt.crop_size_h, opt.crop_size_w))
    if side // 2 ** opt.n_layers_D < 3:
        deepest = max(n for n in range(1, 12) if side // 2 ** n >= 3) if side >= 6 else 0
        raise OptionsError(f"--n_layers_D {opt.n_layers_D} is too deep for {side}-pixel inputs (the discriminator "
                           f"would have nothing left to judge): use --n_layers_D {deepest} or less, or larger images")


def format_options(opt: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """One line per option; values that differ from the default carry ``[default: ...]``."""
    lines = ["----------------- Options ---------------"]
    for key, value in sorted(vars(opt).items()):
        default = parser.get_default(key)
        note = f"\t[default: {default}]" if default is not None and value != default else ""
        lines.append(f"{key:>25}: {value!s:<30}{note}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines)


def options_json(opt: argparse.Namespace, argv: list[str]) -> str:
    """Every option value plus ``"argv"`` (the arguments parsed, without the program name), as strict JSON.

    Non-finite floats (``--max_dataset_size`` defaults to infinity) are written as the strings ``"inf"``,
    ``"-inf"`` and ``"nan"``, which strict JSON readers accept and ``float()`` (the option's type) reads back."""
    values = {key: _jsonable(value) for key, value in vars(opt).items()}
    values["argv"] = list(argv)
    return json.dumps(values, indent=2, sort_keys=True, allow_nan=False) + "\n"


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "-inf", "nan"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return str(value)


def save_options_text(opt: argparse.Namespace, text: str, argv: list[str] | None = None) -> Path:
    """Write the option table to ``<checkpoints_dir>/<name>/<phase>_opt.txt`` (test runs: ``test_opt.txt``,
    so that testing on ``--phase train`` cannot overwrite the training's file); a training run also writes
    ``train_opt.json``, which test.py reads for the architecture it must rebuild. ``argv`` defaults to
    ``sys.argv[1:]``. Returns the text file's path."""
    argv = sys.argv[1:] if argv is None else argv
    expr_dir = Path(opt.checkpoints_dir) / opt.name
    path = expr_dir / (f"{opt.phase}_opt.txt" if opt.isTrain else "test_opt.txt")
    write_text_atomic(path, text + "\n" + f"command: {' '.join([sys.argv[0], *argv])}\n")
    if opt.isTrain:
        write_text_atomic(expr_dir / TRAINING_OPTIONS_JSON, options_json(opt, argv))
    return path
