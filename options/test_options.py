"""Test options: where results go and how many inputs to translate."""

from __future__ import annotations

import argparse

from .base_options import BaseOptions, OptionsError


class TestOptions(BaseOptions):
    is_train = False

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
        # Test time reads every image once, in order, without augmentation, and shows no dashboard.
        parser.set_defaults(serial_batches=True, no_flip=True, display_id=0, num_threads=0)
        return parser

    def validate(self, opt: argparse.Namespace) -> None:
        super().validate(opt)
        if opt.num_test < 1:
            raise OptionsError(f"--num_test must be at least 1 (got {opt.num_test})")
        if opt.aspect_ratio <= 0:
            raise OptionsError(f"--aspect_ratio must be positive (got {opt.aspect_ratio})")
