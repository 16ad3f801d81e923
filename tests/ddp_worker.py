"""Run by tests/test_distributed.py under torchrun: trains, then saves this rank's weights for comparison.
With NAN_ON_RANK1_AT_BATCH=N, rank 1's N-th batch is poisoned with NaNs."""

import os
import sys
from pathlib import Path

import torch

import train
from models.base_model import unwrap
from util import distributed


def poison_rank1(run: train.TrainingRun, batch_number: int) -> None:
    """Rank 1 alone gets an all-NaN image in its batch_number-th batch, so only its losses are NaN."""
    if run.dist.rank != 1:
        return
    set_input, seen = run.model.set_input, [0]

    def poisoned(batch: dict) -> None:
        seen[0] += 1
        if seen[0] == batch_number:
            batch = {**batch, "A": torch.full_like(batch["A"], float("nan"))}
        set_input(batch)

    run.model.set_input = poisoned


def main() -> int:
    out_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    opt, options = train.parse_options(argv)
    run = train.TrainingRun(opt)
    train.write_options(opt, options)
    if os.environ.get("NAN_ON_RANK1_AT_BATCH"):
        poison_rank1(run, int(os.environ["NAN_ON_RANK1_AT_BATCH"]))
    status = train.train(run)
    weights = {name: unwrap(net).state_dict() for name, net in run.model.networks().items()}
    torch.save(weights, out_dir / f"weights_rank{run.dist.rank}.pt")
    distributed.shutdown_distributed(run.dist)
    return status


if __name__ == "__main__":
    sys.exit(main())
