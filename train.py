"""Train an image-to-image translation model.

    python train.py --dataroot ./datasets/shapes --name shapes_instagan --model insta_gan

Checkpoints, the option file, the loss log and the HTML page go to ``<checkpoints_dir>/<name>/``.
``--continue_train`` resumes exactly where the last run stopped (epoch, iteration, optimisers, image
pools, random generators). Ctrl-C or SIGTERM saves ``latest`` after the current step and exits.

``train`` below is the whole loop; the helpers around it keep the run's counters, save and resume it,
and decide what a bad image or a NaN loss does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from data import create_dataset
from data.check import check_dataset
from models import create_model
from models.base_model import NonFiniteLossError
from options.base_options import OptionsError, save_options_text
from options.train_options import TrainOptions
from util import distributed
from util.checkpoint import STATE_FILE, CheckpointError, load_weights_only, save_atomic
from util.fileio import remove_stale_temporaries
from util.image_files import DatasetError
from util.run_control import StopRequest, rng_state, seed_everything, set_rng_state
from util.visualizer import Visualizer


def train(run: TrainingRun) -> int:
    """Train to the last epoch, or until --max_steps/--max_minutes or a signal; returns the exit status."""
    model, opt = run.model, run.opt
    with StopRequest() as stop:
        while run.epoch <= run.last_epoch:
            model.train()
            for batch, data_time in run.epoch_batches():
                start = time.time()
                if not optimize_step(run, batch):
                    continue
                run.count_step(samples_in(batch), time.time() - start, data_time)
                report(run)
                if stop.agreed(model.device):
                    run.save("latest")
                    run.log(f"stopped by {stop.signal_name}: saved 'latest' at epoch {run.epoch}, iteration "
                            f"{run.epoch_iter} to {run.save_dir}; resume with the same command plus --continue_train")
                    return stop.exit_status
                if run.budget_used() and run.epoch_iter < run.batches_per_epoch:
                    return run.finish_early()
            if run.epoch % opt.save_epoch_freq == 0:
                run.save(run.epoch)
            lr = model.update_learning_rate()
            run.start_next_epoch()
            run.save("latest")
            run.log(f"end of epoch {run.epoch - 1} / {run.last_epoch} (saved), learning rate now {lr:.7f}")
            if run.budget_used():
                return run.finish_early()
    return 0


def optimize_step(run: TrainingRun, batch: dict) -> bool:
    """One optimisation step; False when the batch was skipped (only unreadable images, or a NaN loss with
    --nan_policy skip: every torchrun rank raises at the same update, so all skip together)."""
    note_bad_images(run, batch.pop("bad_samples", []))
    if not samples_in(batch):
        return False
    run.model.set_input(batch)
    try:
        run.model.optimize_parameters()
    except NonFiniteLossError as err:
        if run.opt.nan_policy != "skip" or run.skipped_in_a_row >= run.opt.max_nan_skips:
            raise
        run.skipped_steps += 1
        run.skipped_in_a_row += 1
        run.log(f"warning: {err} at epoch {run.epoch}, iteration {run.epoch_iter + 1}: update skipped "
                f"({run.skipped_steps} so far, {run.skipped_in_a_row} in a row, --nan_policy skip)")
        return False
    run.skipped_in_a_row = 0
    return True


def samples_in(batch: dict) -> int:
    """Samples in a collated batch, whatever its keys (``A``/``B``, or ``label``/``image`` of paired data): the
    first dimension of its first tensor; 0 when the loader skipped every sample as unreadable."""
    return next((len(value) for value in batch.values() if isinstance(value, torch.Tensor)), 0)


def note_bad_images(run: TrainingRun, messages: list[str]) -> None:
    """Warn about each unreadable sample the loader skipped; stop after --max_bad_images of them."""
    for message in messages:
        run.bad_images.append(message)
        run.log(f"warning: skipped an unreadable sample ({len(run.bad_images)} of at most "
                f"{run.opt.max_bad_images}): {message}")
    if len(run.bad_images) > run.opt.max_bad_images:
        raise DatasetError(f"more than --max_bad_images {run.opt.max_bad_images} unreadable samples, the last: "
                           f"{run.bad_images[-1]}; run python -m data.check --dataroot {run.opt.dataroot}")


def report(run: TrainingRun) -> None:
    """Display, log and save 'latest' when the image counter crosses the frequencies (CycleGAN's semantics)."""
    opt, model, visualizer = run.opt, run.model, run.visualizer

    def crossed(freq: int) -> bool:
        return run.previous_iters // freq != run.total_iters // freq or run.previous_iters == 0

    if crossed(opt.display_freq):
        visualizer.display_current_results(model.get_current_visuals(), model.visual_names, run.epoch,
                                           save_result=crossed(opt.update_html_freq))
    if crossed(opt.print_freq):
        losses = distributed.mean_over_ranks(model.get_current_losses(), model.device)
        line = visualizer.print_current_losses(run.epoch, run.epoch_iter * opt.batch_size, losses,
                                               run.compute_time, run.data_time)
        if line is not None:
            tqdm.write(line)
        visualizer.plot_current_losses(run.epoch, min(1.0, run.epoch_iter / run.batches_per_epoch), losses)
    if crossed(opt.save_latest_freq) and run.previous_iters:
        run.save("latest")


class SilentVisualizer:
    """What ranks other than 0 use under torchrun: rank 0 alone logs, displays and saves."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None

    def state_dict(self) -> dict:
        return {}


class TrainingRun:
    """The data, the model, the dashboard and the counters of one run, saved and restored as a whole."""

    def __init__(self, opt: argparse.Namespace):
        self.opt = opt
        self.dist = distributed.init_distributed(opt)
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        if opt.seed is not None:
            seed_everything(opt.seed)
        self.dataset = create_dataset(opt)
        self.batches_per_epoch = len(self.dataset.dataloader)
        self.model = create_model(opt)
        self.model.setup(opt)
        self.visualizer = Visualizer(opt) if self.dist.is_main else SilentVisualizer()
        self.last_epoch = opt.niter + opt.niter_decay
        self.epoch = opt.epoch_count
        self.epoch_iter = 0          # batches finished in the current epoch
        self.total_iters = 0         # images seen in total (CycleGAN's counter for the frequencies)
        self.previous_iters = 0      # total_iters before the last step
        self.total_steps = 0         # optimize_parameters calls in total
        self.compute_time = self.data_time = 0.0   # seconds per image of the last step
        self.bad_images: list[str] = []
        self.skipped_steps = 0
        self.skipped_in_a_row = 0
        self.last_saved = "none yet (nothing saved in this run)"
        self.epoch_rng = rng_state()
        self.resume_rng: dict | None = None   # RNG state at the saved step, restored after replaying the epoch
        if self.dist.is_main:
            removed = remove_stale_temporaries(self.save_dir)
            if removed:
                self.log(f"removed {len(removed)} temporary file(s) left by an interrupted save in {self.save_dir}")
        if opt.continue_train:
            self.resume()
        self.start_time = time.time()

    def log(self, message: str) -> None:
        if self.dist.is_main:
            print(message, flush=True)

    def count_step(self, images: int, compute_time: float, data_time: float) -> None:
        self.epoch_iter += 1
        self.total_steps += 1
        self.previous_iters, self.total_iters = self.total_iters, self.total_iters + images
        self.compute_time, self.data_time = compute_time / images, data_time / images
        self.progress.update(1)
        self.progress.set_postfix(img_s=f"{images / max(compute_time + data_time, 1e-9):.2f}", refresh=False)

    def budget_used(self) -> bool:
        """--max_steps or --max_minutes used up (ranks agree, so they stop at the same step)."""
        over_time = 0 < self.opt.max_minutes * 60 <= time.time() - self.start_time
        return distributed.any_rank(0 < self.opt.max_steps <= self.total_steps or over_time, self.model.device)

    def finish_early(self) -> int:
        self.save("latest")
        self.log(f"step or time budget reached after {self.total_steps} steps "
                 f"({(time.time() - self.start_time) / 60:.1f} min); saved 'latest'")
        return 0

    def start_next_epoch(self) -> None:
        self.epoch += 1
        self.epoch_iter = 0
        self.epoch_rng = rng_state()

    # ------------------------------------------------------------------ the epoch's batches
    def epoch_batches(self):
        """Yield (batch, seconds spent loading it). When resuming mid-epoch, replay the epoch's shuffling and
        augmentation from its saved start state, skip the batches already trained on, then restore the RNG
        as it was at the save."""
        set_rng_state(self.epoch_rng)
        self.dataset.set_epoch(self.epoch)
        iterator = iter(self.dataset)
        if self.resume_rng is not None and self.epoch_iter > 0:
            for _ in range(self.epoch_iter):
                next(iterator)
            set_rng_state(self.resume_rng)
        # Saved at an epoch boundary, the state equals the epoch's start state: the loader has just drawn
        # the epoch's seed from it, exactly as the uninterrupted run did, so nothing is restored.
        self.resume_rng = None
        self.progress = tqdm(total=self.batches_per_epoch, initial=self.epoch_iter, desc=f"epoch {self.epoch}",
                             unit="batch", dynamic_ncols=True, disable=None if self.dist.is_main else True)
        try:
            loaded = time.time()
            for batch in iterator:
                yield batch, time.time() - loaded
                loaded = time.time()
        finally:
            self.progress.close()

    # ------------------------------------------------------------------ saving and resuming
    def save(self, tag: str | int) -> None:
        """Weights as ``<tag>_net_*.pth``; for 'latest' also the whole training state in one file."""
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
        path = self.save_dir / STATE_FILE
        state = load_weights_only(path)
        self.model.load_training_state(state["model"], path)
        self.visualizer.load_state_dict(state["visualizer"])
        self.epoch, self.epoch_iter = state["epoch"], state["epoch_iter"]
        self.total_iters, self.total_steps = state["total_iters"], state["total_steps"]
        self.epoch_rng, self.resume_rng = state["epoch_rng"], state["rng"]
        self.last_saved = f"{path} (epoch {self.epoch}, iteration {self.epoch_iter})"
        self.log(f"resuming at epoch {self.epoch}, iteration {self.epoch_iter} of the epoch "
                 f"({self.total_steps} steps done)")


def check_resume_state(opt: argparse.Namespace) -> None:
    """--continue_train needs a saved training state; say so before any work is done or any file written."""
    state = Path(opt.checkpoints_dir) / opt.name / STATE_FILE
    if opt.continue_train and not state.is_file():
        raise OptionsError(f"--continue_train: no training state {state}; train without --continue_train "
                           f"first, or check --name and --checkpoints_dir")


def dataset_is_usable(opt: argparse.Namespace) -> bool:
    """Fast start-up check (headers, a sample of mask pixels, image sizes against the crop and batch): stop on
    errors that would break or spoil training, warn otherwise."""
    if opt.dataset_mode not in ("unaligned_seg", "unaligned", "aligned") or opt.skip_data_check:
        return True
    label_nc = getattr(opt, "label_nc", 0) or None   # aligned data: label ids must stay below --label_nc
    report = check_dataset(opt.dataroot, (opt.phase,), opt.max_instances, fast=True, preprocess=opt.preprocess,
                           crop_size=(opt.crop_size_h, opt.crop_size_w), batch_size=opt.batch_size,
                           with_masks=opt.dataset_mode == "unaligned_seg", label_nc=label_nc)
    if not distributed.is_main_process():
        return not report.errors
    if report.errors:
        print(report.format(limit=20), file=sys.stderr)
        no_masks = {"unaligned": " --no_masks", "aligned": f" --label_nc {label_nc}" if label_nc else ""}.get(
            opt.dataset_mode, "")
        print(f"error: the dataset in {opt.dataroot} cannot be trained on; fix the files above (full check: "
              f"python -m data.check --dataroot {opt.dataroot} --phase {opt.phase}{no_masks})", file=sys.stderr)
        return False
    if report.warnings:
        print(report.format(limit=10))
    return True


def check_not_overwriting(opt: argparse.Namespace) -> None:
    """Never start a fresh run over a saved one by accident: that needs --continue_train or --overwrite."""
    run_dir = Path(opt.checkpoints_dir) / opt.name
    saved = sorted(run_dir.glob("*_net_*.pth")) + sorted(run_dir.glob(STATE_FILE))
    if opt.continue_train or not saved:
        return
    if not opt.overwrite:
        raise OptionsError(f"{run_dir} already holds a run ({len(saved)} checkpoint files, e.g. {saved[0].name}): "
                           f"add --continue_train to resume it, --overwrite to start over (its checkpoints are "
                           f"deleted), or choose another --name")
    if distributed.is_main_process():
        for path in saved:
            path.unlink(missing_ok=True)
        print(f"--overwrite: deleted the {len(saved)} checkpoint files of the previous run in {run_dir}")


def parse_options(argv: list[str] | None) -> tuple[argparse.Namespace, TrainOptions]:
    """Parse and check the options and the run folder; nothing is written yet (see write_options)."""
    options = TrainOptions()
    opt = options.parse(argv, save=False, show=distributed.is_main_process())
    check_resume_state(opt)
    check_not_overwriting(opt)
    return opt, options


def write_options(opt: argparse.Namespace, options: TrainOptions) -> None:
    """train_opt.txt and train_opt.json, once the run is set up (a failed resume leaves the old ones)."""
    if distributed.is_main_process():
        save_options_text(opt, options.text, options.argv)


def main(argv: list[str] | None = None) -> int:
    run = None
    try:
        opt, options = parse_options(argv)
        if not dataset_is_usable(opt):
            return 2
        run = TrainingRun(opt)
        write_options(opt, options)
        return train(run)
    except OptionsError as err:
        print(err.code, file=sys.stderr)
        return 2
    except (CheckpointError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        saved = run.last_saved if run is not None else "nothing"
        print(f"\nstopped at once by a second Ctrl-C: the current step was not saved; last save: {saved}",
              file=sys.stderr)
        return 1   # not 130: the run did not stop cleanly
    except NonFiniteLossError as err:
        in_a_row = (f" after {run.skipped_in_a_row} skipped updates in a row (--max_nan_skips)"
                    if run.skipped_in_a_row else "")
        print(f"error: {err} at epoch {run.epoch}, iteration {run.epoch_iter + 1} (step "
              f"{run.total_steps + 1}){in_a_row}; training stopped before that update. Last good checkpoint: "
              f"{run.last_saved}. Lower --lr, try --amp none, or pass --nan_policy skip", file=sys.stderr)
        return 3
    finally:
        if run is not None:
            distributed.shutdown_distributed(run.dist)


if __name__ == "__main__":
    sys.exit(main())
