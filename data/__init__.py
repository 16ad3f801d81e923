"""Dataset registry and loader: ``--dataset_mode NAME`` finds the BaseDataset subclass in ``data/NAME_dataset.py``.

A new dataset is one file: ``data/my_thing_dataset.py`` with ``class MyThingDataset(BaseDataset)``
(the class name, lower-cased and without underscores, must be ``<name>dataset``).
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import random
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    default_collate,
)

from util.image_files import DatasetError

__all__ = [
    "DEFAULT_WORKERS",
    "DatasetError",
    "DatasetLoader",
    "SeededDataset",
    "SeededSampler",
    "TooManyWorkersWarning",
    "available_cores",
    "available_datasets",
    "create_dataset",
    "find_dataset_using_name",
    "get_option_setter",
    "make_dataloader",
    "num_workers",
    "seed_worker",
]

_DATA_DIR = Path(__file__).resolve().parent


def available_datasets() -> list[str]:
    """Dataset modes, from the files ``data/*_dataset.py``."""
    return sorted(p.name[: -len("_dataset.py")] for p in _DATA_DIR.glob("*_dataset.py")
                  if p.name != "base_dataset.py")


def find_dataset_using_name(name: str) -> type:
    """Import ``data.<name>_dataset`` and return its BaseDataset subclass named like ``<Name>Dataset``."""
    from .base_dataset import BaseDataset

    known = available_datasets()
    if name not in known:
        raise ValueError(f"unknown dataset mode {name!r}; known modes: {', '.join(known)}")
    module = importlib.import_module(f"{__name__}.{name}_dataset")
    wanted = name.replace("_", "").lower() + "dataset"
    for attr, cls in vars(module).items():
        if attr.lower() == wanted and isinstance(cls, type) and issubclass(cls, BaseDataset):
            return cls
    raise ValueError(f"data/{name}_dataset.py defines no BaseDataset subclass named like {wanted!r}")


def get_option_setter(name: str) -> Callable[[argparse.ArgumentParser, bool], argparse.ArgumentParser]:
    """The dataset's static ``modify_commandline_options(parser, is_train) -> parser`` hook."""
    return find_dataset_using_name(name).modify_commandline_options


# ----------------------------------------------------------------------------------------------- workers
DEFAULT_WORKERS = 4  # --num_threads when not given (None), capped by the cores this process may use
# torch's own check, repeated by every DataLoader and every new iterator; ours (one warning) replaces it
_TORCH_WORKERS_WARNING = r"This DataLoader will create \d+ worker processes in total"


class TooManyWorkersWarning(UserWarning):
    """An explicit --num_threads above the cores this process may use."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's or taskset's share), else all cores."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no sched_getaffinity on macOS and Windows
        return os.cpu_count() or 1


def num_workers(requested: int | None) -> int:
    """DataLoader workers for ``--num_threads``: None (not given) means min(4, cores), silently, so the default
    fits a small machine; an explicit number is kept, with one warning when it exceeds the cores."""
    cores = available_cores()
    if requested is None:
        return min(DEFAULT_WORKERS, cores)
    if requested > cores:
        warnings.warn(f"--num_threads {requested} starts more data-loading workers than the {cores} core(s) this "
                      f"process may use, which can slow loading down; leave --num_threads out to use "
                      f"min({DEFAULT_WORKERS}, cores)", TooManyWorkersWarning, stacklevel=2)
    return requested


@contextmanager
def _quiet_torch_workers_warning() -> Iterator[None]:
    """Hide torch's duplicate of our worker-count warning (see ``num_workers``) while a DataLoader is built or
    starts an iterator, the two places torch checks; other warnings pass."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TORCH_WORKERS_WARNING, category=UserWarning)
        yield


def seed_worker(worker_id: int) -> None:
    """Seed Python's and NumPy's RNGs in a DataLoader worker from the seed torch gave that worker."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _draw_seed() -> int:
    return int(torch.randint(2**62, ()).item())


class SeededSampler(Sampler):
    """Wraps a sampler to yield ``(index, seed)``: each sample gets its own augmentation seed.

    An epoch's randomness (its shuffling, through ``shuffle_generator``, and every sample's random crop,
    flip and B pick) follows from one epoch seed drawn from torch's global RNG when the epoch starts
    (``start_epoch``, called by ``iter(DatasetLoader)``; else when iteration begins). So it depends
    neither on the number of workers nor on whether they persist across epochs, and restoring the RNG
    state before ``iter()`` replays the epoch exactly (as train.py does to resume mid-epoch).
    """

    def __init__(self, sampler: Sampler | Iterable[int], shuffle_generator: torch.Generator | None = None):
        self.sampler = sampler
        self.shuffle_generator = shuffle_generator
        self._epoch_seed: int | None = None

    def __len__(self) -> int:
        return len(self.sampler)

    def start_epoch(self) -> None:
        self._epoch_seed = _draw_seed()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        seed = self._epoch_seed if self._epoch_seed is not None else _draw_seed()
        self._epoch_seed = None
        if self.shuffle_generator is not None:
            self.shuffle_generator.manual_seed(seed)
        for index in self.sampler:
            yield index, seed + 1 + index

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to a sampler that reshuffles per epoch (DistributedSampler)."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


BAD_SAMPLE = "bad_sample"


class SeededDataset(Dataset):
    """Loads ``dataset[index]`` with torch's CPU RNG seeded by the sample's seed, then restores the RNG.

    With ``skip_bad``, a sample whose files cannot be read (e.g. a truncated image met mid-training) becomes a
    marker that ``collate_skipping_bad`` leaves out of the batch and reports, instead of killing the run.
    """

    def __init__(self, dataset: Dataset, skip_bad: bool = False):
        self.dataset = dataset
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # CPU only: leave CUDA RNG of the main process alone
            try:
                return self.dataset[index]
            except DatasetError as err:
                if not self.skip_bad:
                    raise
                return {BAD_SAMPLE: str(err)}


def collate_skipping_bad(samples: list[dict]) -> dict:
    """Collate the readable samples; ``batch["bad_samples"]`` lists the messages of those left out."""
    good = [sample for sample in samples if BAD_SAMPLE not in sample]
    batch = default_collate(good) if good else {}
    batch["bad_samples"] = [sample[BAD_SAMPLE] for sample in samples if BAD_SAMPLE in sample]
    return batch


def make_dataloader(dataset: Dataset, opt: argparse.Namespace, sampler: Sampler | None = None) -> DataLoader:
    """DataLoader with the options' batch size and workers (``num_workers``: None = min(4, cores)); a ``sampler``
    (e.g. DistributedSampler) replaces the shuffling of ``--serial_batches``. Samples are seeded one by one
    (see SeededSampler)."""
    shuffle_generator = None
    if sampler is None and opt.serial_batches:
        sampler = SequentialSampler(dataset)
    elif sampler is None:
        shuffle_generator = torch.Generator()
        sampler = RandomSampler(dataset, generator=shuffle_generator)
    workers = num_workers(getattr(opt, "num_threads", None))
    # The loader draws its worker base seed from this generator rather than the global RNG, so that
    # starting an epoch consumes the global RNG the same way in a fresh process as with persistent workers.
    generator = torch.Generator().manual_seed(_draw_seed())
    seeded = SeededSampler(sampler, shuffle_generator)
    skip_bad = bool(getattr(opt, "max_bad_images", 0))
    with _quiet_torch_workers_warning():
        return DataLoader(SeededDataset(dataset, skip_bad), batch_size=opt.batch_size, sampler=seeded,
                          num_workers=workers, drop_last=False, persistent_workers=workers > 0,
                          pin_memory=torch.cuda.is_available(), worker_init_fn=seed_worker, generator=generator,
                          collate_fn=collate_skipping_bad)


def _original_message(err: DatasetError) -> str:
    """A DatasetError re-raised by a DataLoader worker carries the worker's traceback; keep its last line."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    if len(lines) <= 1:
        return str(err)
    last = lines[-1]
    prefix = f"{DatasetError.__name__}: "
    return last.split(prefix, 1)[1] if prefix in last else last


class DatasetLoader:
    """Iterates over batches of ``dataset``; ``len`` is the number of samples (capped by max_dataset_size)."""

    def __init__(self, dataset: Dataset, opt: argparse.Namespace, sampler: Sampler | None = None):
        self.opt = opt
        self.dataset = dataset
        self.dataloader = make_dataloader(dataset, opt, sampler)

    def load_data(self) -> DatasetLoader:
        return self

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to a sampler that reshuffles per epoch (DistributedSampler)."""
        self.dataloader.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        size = len(self.dataset)
        cap = self.opt.max_dataset_size
        return size if math.isinf(cap) else min(size, int(cap))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Starts the epoch at once: draws its seed from torch's global RNG now, not at the first batch."""
        self.dataloader.sampler.start_epoch()
        with _quiet_torch_workers_warning():
            iterator = iter(self.dataloader)
        return self._batches(iterator)

    @staticmethod
    def _batches(iterator: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            yield from iterator
        except DatasetError as err:
            raise DatasetError(_original_message(err)) from None


def create_dataset(opt: argparse.Namespace, sampler: Sampler | None = None) -> DatasetLoader:
    """Build the dataset named by ``opt.dataset_mode`` and wrap it in a DatasetLoader. Under torchrun each
    rank reads its own shard through a DistributedSampler (call ``set_epoch`` every epoch)."""
    dataset = find_dataset_using_name(opt.dataset_mode)(opt)
    if sampler is None and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        sampler = DistributedSampler(dataset, shuffle=not opt.serial_batches,
                                     seed=opt.seed if getattr(opt, "seed", None) is not None else 0)
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        print(f"dataset [{type(dataset).__name__}] was created with {len(dataset)} samples")
    return DatasetLoader(dataset, opt, sampler)
