"""Two unpaired image domains without masks (the CycleGAN baseline): ``<dataroot>/<phase>A`` and ``<phase>B``.

The ``_seg`` folders, if present, are ignored. ``--direction BtoA`` swaps the domains.
"""

from __future__ import annotations

import argparse
from typing import Any

from util.image_files import domain_letters

from .base_dataset import BaseDataset, DomainFolder, get_joint_transform, pick_b_index


class UnalignedDataset(BaseDataset):
    """Samples ``A``, ``B`` (images in [-1, 1]) and ``A_paths``, ``B_paths``."""

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        source, target = domain_letters(opt)
        self.domain_a = DomainFolder(opt, source, opt.input_nc, with_masks=False)
        self.domain_b = DomainFolder(opt, target, opt.output_nc, with_masks=False)
        self.transform = get_joint_transform(opt)

    def __len__(self) -> int:
        return max(len(self.domain_a), len(self.domain_b))

    def __getitem__(self, index: int) -> dict[str, Any]:
        a = self.domain_a.load(index % len(self.domain_a), self.transform)
        b = self.domain_b.load(pick_b_index(index, len(self.domain_b), self.opt.serial_batches), self.transform)
        return {"A": a["image"], "B": b["image"], "A_paths": a["path"], "B_paths": b["path"]}
