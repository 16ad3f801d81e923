"""Test options: where results go and how many inputs to translate.

A test must rebuild the network it loads, exactly as trained. So that the user need not repeat the
training's flags, TestOptions reads ``<checkpoints_dir>/<name>/train_opt.json`` (written by train.py) and
makes the training's values of ``INHERITED_FROM_TRAINING`` the *defaults*: any flag on the test command
line still wins. ``--ignore_train_opt`` skips the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import models

from .base_options import TRAINING_OPTIONS_JSON, BaseOptions, OptionsError

INHERITED_FROM_TRAINING: tuple[str, ...] = (
    # Which network to build, and the dataset it learnt (the test reads <dataroot>/testA, testB).
    "model", "dataroot",
    # The architecture: a checkpoint loads only into the network built with these.
    "input_nc", "output_nc", "ngf", "ndf", "n_blocks_G", "n_layers_D", "norm", "init_type", "init_gain",
    "init_D", "no_dropout",
    # The image size and scaling the networks learnt; another scale changes what they translate
    # (--interpolation is the datasets' resize filter, where the dataset declares it).
    "load_size_h", "load_size_w", "crop_size_h", "crop_size_w", "preprocess", "interpolation",
    # The mask slots loaded per image, as in training.
    "max_instances",
    # The sequential loop as trained: instances translated per step (InstaGAN).
    "ins_per",
)
# NOT inherited, on purpose: --ins_max (the authors test with more instances than they train with, 20),
# --phase, --epoch, --direction (see below), --batch_size, --num_threads, --serial_batches, --gpu_ids, --amp:
# they describe this run, not the trained network. A model adds its own architecture options through a class
# attribute ``inherited_from_training: tuple[str, ...]`` (option names, as in the parsed options).
#
# The training's --direction becomes ``opt.train_direction`` (which folder was the source, A when no file says
# otherwise); the test's own --direction defaults to None, meaning "translate both folders" as the authors' test
# did, and --direction AtoB|BtoA translates only folder A -> B (resp. B -> A).

DEFAULT_TRAIN_DIRECTION = "AtoB"


class InvalidFileValue:
    """The default of an option whose value in train_opt.json is invalid: an error only if no flag replaces it."""

    def __init__(self, dest: str, value: Any, reason: str):
        self.dest, self.value, self.reason = dest, value, reason

    def __str__(self) -> str:
        return f"<invalid in {TRAINING_OPTIONS_JSON}: {self.value!r}>"


class TestOptions(BaseOptions):
    is_train = False
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        self.training_file: Path | None = None  # the train_opt.json whose values are the defaults
        self.training: dict[str, Any] = {}
        self._loaded = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        g = parser.add_argument_group("testing")
        g.add_argument("--phase", default="test", help="data phase folder prefix: test, train, val, ...")
        g.add_argument("--results_dir", default="./results", help="results go to results_dir/name/<phase>_<epoch>")
        g.add_argument("--aspect_ratio", type=float, default=1.0, help="width/height of the saved images")
        g.add_argument("--eval", action="store_true", help="put the networks in eval mode at test time")
        g.add_argument("--num_test", "--how_many", dest="num_test", type=int, default=50,
                       help="how many test inputs to translate")
        g.add_argument("--save_reconstructions", action="store_true",
                       help="also translate back and show the reconstructions")
        g.add_argument("--predict_masks", default=None, metavar="RUN",
                       help="a mask predictor run (trained with --model mask_predictor) that writes the masks of "
                            "each test folder whose _seg folder is missing or empty, under the results folder")
        g.add_argument("--ignore_train_opt", action="store_true",
                       help=f"do not read checkpoints_dir/name/{TRAINING_OPTIONS_JSON}: every option comes from "
                            f"this command line or its default")
        # Test time reads every image once, in order, without augmentation, and shows no dashboard.
        parser.set_defaults(serial_batches=True, no_flip=True, display_id=0, num_threads=0)
        # None = both folders (A -> B and B -> A), as the authors' test; the training's is opt.train_direction.
        parser.set_defaults(direction=None)
        _set_help(parser, "direction", "translate only folder A -> B (AtoB) or B -> A (BtoA); default: both")
        return parser

    # ------------------------------------------------------------------ the training's values
    def adjust_defaults(self, parser: argparse.ArgumentParser, argv: list[str] | None) -> None:
        """Make the training's values the defaults of the inherited options this parser knows so far.

        Called before the model hook too, so that ``--name X`` alone selects the trained model."""
        if not self._loaded:
            known, _ = parser.parse_known_args(argv)
            self._loaded = True
            if not known.ignore_train_opt:
                self._load(Path(known.checkpoints_dir) / known.name / TRAINING_OPTIONS_JSON)
        if not self.training:
            return
        self._apply(parser, INHERITED_FROM_TRAINING)
        model = parser.parse_known_args(argv)[0].model
        if isinstance(model, InvalidFileValue):
            raise self._file_error(model)
        if model != self.training.get("model"):
            return  # a model named on this command line: its own options keep their own defaults
        if model not in models.available_models():
            raise OptionsError(f"{self.training_file}: model = {json.dumps(model)} is not a model of this code "
                               f"base ({', '.join(models.available_models())}); pass --model explicitly, or "
                               f"repair or delete the file")
        self._apply(parser, getattr(models.find_model_using_name(model), "inherited_from_training", ()))

    def _load(self, path: Path) -> None:
        # The one file the options read (see options/base_options.py): the run's own train_opt.json.
        if not path.is_file():
            return
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise OptionsError(f"{path} cannot be read as the training's options ({err}); repair or delete "
                               f"it, or pass the architecture flags explicitly with --ignore_train_opt") from None
        if not isinstance(values, dict):
            raise OptionsError(f"{path} holds a JSON {type(values).__name__}, not the training's options (an "
                               f"object); repair or delete it, or pass the flags explicitly with --ignore_train_opt")
        self.training_file, self.training = path, values

    def _apply(self, parser: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
        actions = {action.dest: action for action in parser._actions}
        for name in names:
            if name in self.training and name in actions:  # options this parser does not know are ignored
                parser.set_defaults(**{name: _as_parsed(actions[name], name, self.training[name])})

    def _file_error(self, bad: InvalidFileValue) -> OptionsError:
        return OptionsError(f"{self.training_file}: {bad.dest} = {json.dumps(bad.value)} is not a valid value of "
                            f"--{bad.dest} ({bad.reason}); repair or delete the file, or pass --{bad.dest} "
                            f"explicitly")

    def complete(self, opt: argparse.Namespace) -> None:
        """Reject invalid file values no flag replaced; add ``opt.train_direction``."""
        for value in vars(opt).values():
            if isinstance(value, InvalidFileValue):
                raise self._file_error(value)
        opt.train_direction = self.training.get("direction", DEFAULT_TRAIN_DIRECTION)
        if opt.train_direction not in ("AtoB", "BtoA"):
            raise OptionsError(f"{self.training_file}: direction = {json.dumps(opt.train_direction)} is neither "
                               f"AtoB nor BtoA; repair or delete the file, or pass --ignore_train_opt")

    # ------------------------------------------------------------------ parsing
    def parse(self, argv: list[str] | None = None, save: bool = True, show: bool = True) -> argparse.Namespace:
        """As BaseOptions.parse, then one line naming the file the defaults came from (when ``show``)."""
        self.training_file, self.training, self._loaded = None, {}, False
        opt = super().parse(argv, save=save, show=show)
        if show and self.training_file is not None:
            print(f"defaults of the model, architecture and image size from {self.training_file} "
                  f"(trained {opt.train_direction}); flags on this command line win")
        return opt

    def validate(self, opt: argparse.Namespace) -> None:
        try:
            super().validate(opt)
        except OptionsError as err:
            if self.training_file is None:
                raise
            raise OptionsError(f"{err.message} (defaults read from {self.training_file}: pass the flag "
                               f"explicitly, or repair or delete that file)") from None
        if opt.num_test < 1:
            raise OptionsError(f"--num_test must be at least 1 (got {opt.num_test})")
        if opt.aspect_ratio <= 0:
            raise OptionsError(f"--aspect_ratio must be positive (got {opt.aspect_ratio})")


def _as_parsed(action: argparse.Action, dest: str, value: Any) -> Any:
    """``value`` from the JSON file as argparse would have produced it from the command line, with the same
    type and choices checks; an InvalidFileValue (an error unless a flag replaces it) where those fail."""
    if action.nargs == 0:  # a flag: store_true, store_const, ...
        if any(type(value) is type(ok) and value == ok for ok in (action.const, action.default)):
            return value
        return InvalidFileValue(dest, value, f"expected {json.dumps(action.const)} or {json.dumps(action.default)}")
    if value is None:
        return None if action.default is None else InvalidFileValue(dest, value, "null is not a value")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return InvalidFileValue(dest, value, "not a string or a number")
    try:
        parsed = action.type(str(value)) if callable(action.type) else str(value)
    except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
        return InvalidFileValue(dest, value, str(err) or "wrong type")
    if action.choices is not None and parsed not in action.choices:
        return InvalidFileValue(dest, value, f"choose from {', '.join(map(str, action.choices))}")
    return parsed


def _set_help(parser: argparse.ArgumentParser, dest: str, text: str) -> None:
    for action in parser._actions:
        if action.dest == dest:
            action.help = text
