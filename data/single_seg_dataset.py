"""One domain with its masks, for test.py: ``<dataroot>/<phase>A`` and ``<phase>A_seg``.

With ``--direction BtoA`` it reads ``<phase>B`` and ``<phase>B_seg`` instead, but the keys are still
named ``A``: they always hold the domain being translated; ``domain`` says which folder was read ("A" or
"B"). Images of folder A have ``--input_nc`` channels and those of folder B ``--output_nc`` (B is the
generators' output side).
"""

from __future__ import annotations

import argparse
from typing import Any

from util.image_files import domain_letters

from .base_dataset import BaseDataset, DomainFolder, get_joint_transform


class SingleSegDataset(BaseDataset):
    """Samples ``A``, ``A_seg``, ``A_seg_ids``, ``A_paths``, ``A_num_instances`` and ``domain``, in file order."""

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        letter = domain_letters(opt)[0]
        channels = opt.output_nc if letter == "B" else opt.input_nc
        self.domain = DomainFolder(opt, letter, channels, with_masks=True)
        self.transform = get_joint_transform(opt)

    def __len__(self) -> int:
        return len(self.domain)

    def __getitem__(self, index: int) -> dict[str, Any]:
        a = self.domain.load(index, self.transform)
        return {"A": a["image"], "A_seg": a["seg"], "A_seg_ids": a["seg_ids"], "A_paths": a["path"],
                "A_num_instances": a["num_instances"], "domain": self.domain.letter}
