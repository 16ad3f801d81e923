"""Train an image-to-image translation model.

    python train.py --dataroot ./datasets/shapes --name shapes_instagan --model insta_gan

Checkpoints, the option file, the loss log and the HTML page go to ``<checkpoints_dir>/<name>/``.
``--continue_train`` resumes exactly where the last run stopped (epoch, iteration, optimisers, image
pools, random generators). Ctrl-C or SIGTERM saves ``latest`` after the current step and exits.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path
from typing import Self

import numpy as np
import torch
from tqdm import tqdm

from data import create_dataset
from data.check import check_dataset
from data.image_folder import DatasetError
from models import create_model
from models.base_model import NonFiniteLossError
from options.train_options import TrainOptions
from util import distributed
from util.checkpoint import STATE_FILE, CheckpointError, load_weights_only, save_atomic
from util.visualizer import Visualizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


class StopRequest:
    """Turns Ctrl-C / SIGTERM into a flag checked between steps, so the saved state is consistent.
    A second Ctrl-C stops at once."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def __enter__(self) -> Self:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        print(f"\n{self.signal_name} received: finishing the current step, then saving 'latest' "
              f"(press Ctrl-C again to stop at once)", flush=True)


class SilentVisualizer:
    """What ranks other than 0 use under torchrun: rank 0 alone logs, displays and saves."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None

    def state_dict(self) -> dict:
        return {}


class Trainer:
    """The epoch loop with periodic logging, display and saving, and exact resume (also under torchrun)."""

    def __init__(self, opt: argparse.Namespace):
        self.opt = opt
        self.dist = distributed.init_distributed(opt)
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        if opt.seed is not None:
            seed_everything(opt.seed)
        self.dataset = create_dataset(opt)
        self.model = create_model(opt)
        self.model.setup(opt)
        self.visualizer = Visualizer(opt) if self.dist.is_main else SilentVisualizer()
        self.epoch = opt.epoch_count
        self.epoch_iter = 0          # batches finished in the current epoch
        self.total_iters = 0         # images seen in total (CycleGAN's counter for the frequencies)
        self.total_steps = 0         # optimize_parameters calls in total
        self.bad_images: list[str] = []
        self.skipped_steps = 0
        self.last_saved = "none yet (nothing saved in this run)"
        self.epoch_rng = rng_state()
        self.resume_rng: dict | None = None   # RNG state at the saved step, restored after replaying the epoch
        if opt.continue_train:
            self.resume()
        self.start_time = time.time()

    def log(self, message: str) -> None:
        if self.dist.is_main:
            print(message, flush=True)

    @property
    def last_epoch(self) -> int:
        return self.opt.niter + self.opt.niter_decay

    # ------------------------------------------------------------------ saving and resuming
    def save(self, tag: str | int) -> None:
        if not self.dist.is_main:
            return
        self.model.save_networks(tag)
        if tag == "latest":
            state = {"epoch": self.epoch, "epoch_iter": self.epoch_iter, "total_iters": self.total_iters,
                     "total_steps": self.total_steps, "epoch_rng": self.epoch_rng, "rng": rng_state(),
                     "model": self.model.training_state(), "visualizer": self.visualizer.state_dict()}
            save_atomic(state, self.save_dir / STATE_FILE)
            self.last_saved = (f"{self.save_dir / 'latest_net_*.pth'} and {STATE_FILE} (epoch {self.epoch}, "
                               f"iteration {self.epoch_iter})")
        self.visualizer.save_loss_plot()

    def resume(self) -> None:
        path = self.save_dir / STATE_FILE  # its existence is checked when the options are parsed
        state = load_weights_only(path)
        self.model.load_training_state(state["model"], path)
        self.visualizer.load_state_dict(state["visualizer"])
        self.epoch, self.epoch_iter = state["epoch"], state["epoch_iter"]
        self.total_iters, self.total_steps = state["total_iters"], state["total_steps"]
        self.epoch_rng, self.resume_rng = state["epoch_rng"], state["rng"]
        self.last_saved = f"{path} (epoch {self.epoch}, iteration {self.epoch_iter})"
        self.log(f"resuming at epoch {self.epoch}, iteration {self.epoch_iter} of the epoch "
                 f"({self.total_steps} steps done)")

    def epoch_batches(self):
        """The epoch's batches; when resuming mid-epoch, replay the epoch's shuffling and data augmentation
        from its saved start state, skip the batches already trained on, then restore the RNG as it was."""
        set_rng_state(self.epoch_rng)
        self.dataset.set_epoch(self.epoch)
        iterator = iter(self.dataset)
        if self.resume_rng is not None:
            for _ in range(self.epoch_iter):
                next(iterator)
            set_rng_state(self.resume_rng)
            self.resume_rng = None
        return iterator

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Train to the last epoch; returns the process exit status."""
        with StopRequest() as stop:
            while self.epoch <= self.last_epoch:
                outcome = self.run_epoch(stop)
                if outcome == "epoch done":
                    self.end_epoch()
                    outcome = "max_steps" if self.max_steps_reached() else outcome
                if outcome == "signal":
                    return self.stop(stop.signal_name)
                if outcome == "max_steps":
                    self.save("latest")
                    self.log(f"step or time budget reached after {self.total_steps} steps "
                             f"({(time.time() - self.start_time) / 60:.1f} min); saved 'latest'")
                    return 0
        return 0

    def end_epoch(self) -> None:
        if self.epoch % self.opt.save_epoch_freq == 0:
            self.save(self.epoch)
        lr = self.model.update_learning_rate()
        self.epoch += 1
        self.epoch_iter = 0
        self.epoch_rng = rng_state()
        self.save("latest")
        self.log(f"end of epoch {self.epoch - 1} / {self.last_epoch} (saved), learning rate now {lr:.7f}")

    def max_steps_reached(self) -> bool:
        """--max_steps or --max_minutes used up (ranks agree, so they stop at the same step)."""
        over_time = 0 < self.opt.max_minutes * 60 <= time.time() - self.start_time
        return distributed.any_rank(0 < self.opt.max_steps <= self.total_steps or over_time, self.model.device)

    def run_epoch(self, stop: StopRequest) -> str:
        """Train one epoch (or its remainder): "epoch done", "signal" or "max_steps"."""
        self.model.train()
        batches_per_epoch = len(self.dataset.dataloader)
        progress = tqdm(total=batches_per_epoch, initial=self.epoch_iter, desc=f"epoch {self.epoch}",
                        unit="batch", dynamic_ncols=True, disable=None if self.dist.is_main else True)
        t_data_start = time.time()
        try:
            for batch in self.epoch_batches():
                t_data = time.time() - t_data_start
                t_start = time.time()
                if not self.train_on(batch):
                    t_data_start = time.time()
                    continue
                n_images = batch["A"].shape[0]
                self.epoch_iter += 1
                self.total_steps += 1
                previous_iters, self.total_iters = self.total_iters, self.total_iters + n_images
                t_comp = time.time() - t_start
                progress.update(1)
                progress.set_postfix(img_s=f"{n_images / max(t_comp + t_data, 1e-9):.2f}", refresh=False)
                self.periodic(previous_iters, t_comp / n_images, t_data / n_images, batches_per_epoch)
                if distributed.any_rank(stop.signal_name is not None, self.model.device):
                    stop.signal_name = stop.signal_name or "SIGTERM"
                    return "signal"
                if self.max_steps_reached() and self.epoch_iter < batches_per_epoch:
                    return "max_steps"
                t_data_start = time.time()
        finally:
            progress.close()
        return "epoch done"

    def train_on(self, batch: dict) -> bool:
        """One optimisation step; False when the batch was skipped (unreadable images, or a NaN loss
        with --nan_policy skip)."""
        self.note_bad_images(batch.pop("bad_samples", []))
        if "A" not in batch:
            return False
        self.model.set_input(batch)
        try:
            self.model.optimize_parameters()
        except NonFiniteLossError as err:
            if self.opt.nan_policy != "skip":
                raise
            self.skipped_steps += 1
            self.log(f"warning: {err} at epoch {self.epoch}, iteration {self.epoch_iter + 1}: update skipped "
                     f"({self.skipped_steps} so far, --nan_policy skip)")
            return False
        return True

    def note_bad_images(self, messages: list[str]) -> None:
        for message in messages:
            self.bad_images.append(message)
            self.log(f"warning: skipped an unreadable sample ({len(self.bad_images)} of at most "
                     f"{self.opt.max_bad_images}): {message}")
        if len(self.bad_images) > self.opt.max_bad_images:
            raise DatasetError(f"more than --max_bad_images {self.opt.max_bad_images} unreadable samples, the last: "
                               f"{self.bad_images[-1]}; run python -m data.check --dataroot {self.opt.dataroot}")

    def periodic(self, previous: int, t_comp: float, t_data: float, batches_per_epoch: int) -> None:
        """Display, log and save when the image counter crosses the frequencies (CycleGAN's semantics)."""
        opt, model = self.opt, self.model

        def crossed(freq: int) -> bool:
            return previous // freq != self.total_iters // freq or previous == 0

        if crossed(opt.display_freq):
            self.visualizer.display_current_results(model.get_current_visuals(), self.epoch,
                                                    save_result=crossed(opt.update_html_freq))
        if crossed(opt.print_freq):
            losses = distributed.mean_over_ranks(model.get_current_losses(), model.device)
            line = self.visualizer.print_current_losses(self.epoch, self.epoch_iter * opt.batch_size, losses,
                                                        t_comp, t_data)
            if line is not None:
                tqdm.write(line)
            self.visualizer.plot_current_losses(self.epoch, min(1.0, self.epoch_iter / batches_per_epoch), losses)
        if crossed(opt.save_latest_freq) and previous:
            self.save("latest")

    def stop(self, signal_name: str | None) -> int:
        if signal_name is None:
            return 0
        self.save("latest")
        self.log(f"stopped by {signal_name}: saved 'latest' at epoch {self.epoch}, iteration {self.epoch_iter} to "
              f"{self.save_dir}; resume with the same command plus --continue_train")
        return 130 if signal_name == "SIGINT" else 143


def dataset_is_usable(opt: argparse.Namespace) -> bool:
    """Fast header-level check of a mask dataset: stop on errors that would break training, warn otherwise."""
    if opt.dataset_mode != "unaligned_seg" or opt.skip_data_check:
        return True
    report = check_dataset(opt.dataroot, (opt.phase,), opt.max_instances, fast=True)
    if not distributed.is_main_process():
        return not report.errors
    if report.errors:
        print(report.format(limit=20), file=sys.stderr)
        print(f"error: the dataset in {opt.dataroot} cannot be trained on; fix the files above "
              f"(full check: python -m data.check --dataroot {opt.dataroot} --phase {opt.phase})", file=sys.stderr)
        return False
    if report.warnings:
        print(report.format(limit=10))
    return True


def main(argv: list[str] | None = None) -> int:
    opt = TrainOptions().parse(argv, save=distributed.is_main_process(), show=distributed.is_main_process())
    if not dataset_is_usable(opt):
        return 2
    trainer = None
    try:
        trainer = Trainer(opt)
        return trainer.run()
    except (CheckpointError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:
        print(f"error: {err} at epoch {trainer.epoch}, iteration {trainer.epoch_iter + 1} (step "
              f"{trainer.total_steps + 1}); training stopped before that update. Last good checkpoint: "
              f"{trainer.last_saved}. Lower --lr, try --amp none, or pass --nan_policy skip", file=sys.stderr)
        return 3
    finally:
        if trainer is not None:
            distributed.shutdown_distributed(trainer.dist)


if __name__ == "__main__":
    sys.exit(main())
