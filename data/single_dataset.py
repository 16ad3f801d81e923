"""One domain's images without masks, for test.py with mask-free models (CycleGAN): ``<dataroot>/<phase>A``.

A plain unpaired folder (trainA, trainB, testA, testB, no ``_seg`` folders) is enough. As in
single_seg_dataset.py, ``--direction BtoA`` reads ``<phase>B`` instead while the keys stay named ``A`` (the
domain being translated), and ``domain`` says which folder was read ("A" or "B"). Images of folder A have
``--input_nc`` channels and those of folder B ``--output_nc``.
"""

from __future__ import annotations

import argparse
from typing import Any

from util.image_files import domain_letters

from .base_dataset import BaseDataset, DomainFolder, get_joint_transform


class SingleDataset(BaseDataset):
    """Samples ``A`` (image in [-1, 1]), ``A_paths`` and ``domain``, in file order; ``_seg`` folders are ignored."""

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        letter = domain_letters(opt)[0]
        channels = opt.output_nc if letter == "B" else opt.input_nc
        self.domain = DomainFolder(opt, letter, channels, with_masks=False)
        self.transform = get_joint_transform(opt)

    def __len__(self) -> int:
        return len(self.domain)

    def __getitem__(self, index: int) -> dict[str, Any]:
        a = self.domain.load(index, self.transform)
        return {"A": a["image"], "A_paths": a["path"], "domain": self.domain.letter}
