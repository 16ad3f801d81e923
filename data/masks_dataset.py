"""Images with their instance masks, for training the mask predictor (``--model mask_predictor``).

    <dataroot>/<phase>A/<name>.png          images
    <dataroot>/<phase>A_seg/<name>_<k>.png  their instance masks (the layout InstaGAN trains on)

``--mask_domains A`` (default) reads folder A, ``B`` folder B, ``AB`` both as one set (a predictor for
both domains of a translation task). The keys are named ``A`` whichever folder a sample came from, as for
test.py's one-folder datasets, and ``domain`` says which.
"""

from __future__ import annotations

import argparse
from typing import Any

from .base_dataset import BaseDataset, DomainFolder, add_data_options, get_joint_transform

MASK_DOMAINS = ("A", "B", "AB")


class MasksDataset(BaseDataset):
    """Samples ``A`` (image), ``A_seg`` (max_instances, H, W), ``A_seg_ids``, ``A_paths``,
    ``A_num_instances`` and ``domain``; the folders of ``--mask_domains`` one after the other."""

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser = add_data_options(parser)
        parser.add_argument("--mask_domains", default="A", choices=MASK_DOMAINS,
                            help="which folders' images and masks to learn from: <phase>A, <phase>B or both")
        return parser

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        letters = getattr(opt, "mask_domains", "A")
        self.folders = [DomainFolder(opt, letter, opt.input_nc, with_masks=True) for letter in letters]
        self.transform = get_joint_transform(opt)

    def __len__(self) -> int:
        return sum(len(folder) for folder in self.folders)

    def __getitem__(self, index: int) -> dict[str, Any]:
        for folder in self.folders:
            if index < len(folder):
                sample = folder.load(index, self.transform)
                return {"A": sample["image"], "A_seg": sample["seg"], "A_seg_ids": sample["seg_ids"],
                        "A_paths": sample["path"], "A_num_instances": sample["num_instances"],
                        "domain": folder.letter}
            index -= len(folder)
        raise IndexError(index)
