"""Training options: logging and saving frequencies, the epoch schedule and the optimiser."""

from __future__ import annotations

import argparse
import math

from .base_options import BaseOptions, OptionsError


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        g = parser.add_argument_group("training")
        g.add_argument("--phase", default="train", help="data phase folder prefix: train, test, ...")
        g.add_argument("--print_freq", type=int, default=100, help="print and log losses every N images")
        g.add_argument("--display_freq", type=int, default=400, help="show visuals every N images")
        g.add_argument("--update_html_freq", type=int, default=1000, help="save visuals to the HTML page every N images")
        g.add_argument("--save_latest_freq", type=int, default=5000, help="save the latest checkpoint every N images")
        g.add_argument("--save_epoch_freq", type=int, default=5, help="keep a checkpoint every N epochs")
        g.add_argument("--no_html", action="store_true", help="do not write checkpoints/<name>/web/index.html")
        g.add_argument("--continue_train", action="store_true",
                       help="resume from the latest full training state (epoch, iteration, optimisers, RNG)")
        g.add_argument("--epoch_count", type=int, default=1, help="first epoch number of a fresh run")
        g.add_argument("--niter", "--n_epochs", dest="niter", type=int, default=100,
                       help="epochs at the initial learning rate")
        g.add_argument("--niter_decay", "--n_epochs_decay", dest="niter_decay", type=int, default=100,
                       help="epochs of linear decay of the learning rate to zero")
        g.add_argument("--max_steps", type=int, default=0,
                       help="stop after this many optimisation calls in total (0 = run all epochs); "
                            "for short smoke runs and time-boxed benchmarks")
        g.add_argument("--max_minutes", type=float, default=0,
                       help="stop (saving 'latest') after this many minutes of training in this run (0 = no limit)")
        g.add_argument("--nan_policy", default="stop", choices=["stop", "skip"],
                       help="when a loss becomes NaN/Inf: stop (naming the loss and the last good checkpoint) "
                            "or skip that update and go on")
        g.add_argument("--max_loss", type=float, default=1e5,
                       help="a loss above this means training diverged (e.g. --lr far too high): handled like a NaN "
                            "loss (--nan_policy); 0 turns the check off")
        g.add_argument("--max_nan_skips", type=int, default=20,
                       help="with --nan_policy skip: stop after this many updates in a row were skipped")
        g.add_argument("--overwrite", action="store_true",
                       help="start over in <checkpoints_dir>/<name> even if it holds a run (its files are replaced)")
        g.add_argument("--max_bad_images", type=int, default=10,
                       help="unreadable images met during training are skipped with a warning, up to this many "
                            "(0 = stop at the first)")
        g.add_argument("--skip_data_check", action="store_true",
                       help="do not run the fast dataset check (python -m data.check) at start-up")
        g.add_argument("--step_idle_params", action="store_true",
                       help="also step parameters that got no gradient in an update, with a zero gradient, as the "
                            "authors' code did on PyTorch 0.4 (Adam's momentum keeps moving a discriminator with "
                            "no instance left in its direction); off: they stay put (see docs/method.md)")
        g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
        g.add_argument("--beta2", type=float, default=0.999, help="Adam beta2")
        g.add_argument("--lr", type=float, default=0.0002, help="initial learning rate of G and D")
        g.add_argument("--gan_mode", default="lsgan", choices=["lsgan", "vanilla"], help="adversarial loss")
        g.add_argument("--no_lsgan", dest="gan_mode", action="store_const", const="vanilla",
                       help="authors' spelling of --gan_mode vanilla")
        g.add_argument("--pool_size", type=int, default=50, help="image pool size for the discriminators")
        g.add_argument("--lr_policy", default="linear", choices=["linear", "step", "cosine"],
                       help="learning rate schedule")
        g.add_argument("--lr_decay_iters", type=int, default=50, help="step schedule: decay every N epochs")
        return parser

    def validate(self, opt: argparse.Namespace) -> None:
        super().validate(opt)
        for flag in ("print_freq", "display_freq", "update_html_freq", "save_latest_freq", "save_epoch_freq"):
            if getattr(opt, flag) < 1:
                raise OptionsError(f"--{flag} must be at least 1 (got {getattr(opt, flag)})")
        if opt.niter < 0 or opt.niter_decay < 0 or opt.niter + opt.niter_decay < 1:
            raise OptionsError(f"--niter {opt.niter} --niter_decay {opt.niter_decay}: both must be >= 0 "
                               f"and their sum at least 1")
        if not math.isfinite(opt.lr) or opt.lr <= 0:
            raise OptionsError(f"--lr must be a positive number (got {opt.lr})")
        for beta in ("beta1", "beta2"):
            if not 0 <= getattr(opt, beta) < 1:
                raise OptionsError(f"--{beta} must be in [0, 1) (got {getattr(opt, beta)}); Adam's defaults here "
                                   f"are 0.5 and 0.999")
        if opt.epoch_count > opt.niter + opt.niter_decay:
            raise OptionsError(f"--epoch_count {opt.epoch_count} is past the last epoch ({opt.niter} + "
                               f"{opt.niter_decay}): nothing would be trained; to resume a run use --continue_train")
        if not math.isfinite(opt.max_loss) or opt.max_loss < 0:
            raise OptionsError(f"--max_loss must be a non-negative number (got {opt.max_loss}; 0 turns it off)")
        for flag in ("pool_size", "max_steps", "max_minutes", "max_bad_images", "max_nan_skips"):
            if not getattr(opt, flag) >= 0:   # also rejects nan
                raise OptionsError(f"--{flag} must not be negative (got {getattr(opt, flag)})")
