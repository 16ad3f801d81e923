"""Run by tests/test_distributed.py under torchrun: trains, then saves this rank's weights for comparison."""

import sys
from pathlib import Path

import torch

import train
from models.base_model import unwrap
from options.train_options import TrainOptions
from util import distributed


def main() -> int:
    out_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    opt = TrainOptions().parse(argv, save=distributed.is_main_process(), show=distributed.is_main_process())
    trainer = train.Trainer(opt)
    status = trainer.run()
    weights = {name: unwrap(net).state_dict() for name, net in trainer.model.networks().items()}
    torch.save(weights, out_dir / f"weights_rank{trainer.dist.rank}.pt")
    distributed.shutdown_distributed(trainer.dist)
    return status


if __name__ == "__main__":
    sys.exit(main())
