"""InstaGAN's training data: two unpaired domains, each image with its instance masks .

    <dataroot>/<phase>A/<name>.png         images of domain A (.png .jpg .jpeg, any case)
    <dataroot>/<phase>A_seg/<name>_<k>.png its k-th instance mask, k = 0, 1, ...
    <dataroot>/<phase>B/...  and  <phase>B_seg/...   likewise for domain B

With ``--direction BtoA`` the folders swap: the returned ``A`` comes from ``<phase>B``. The ``A``
image has ``--input_nc`` channels and ``B`` has ``--output_nc``.
"""

from __future__ import annotations

import argparse
from typing import Any

from util.image_files import domain_letters

from .base_dataset import BaseDataset, DomainFolder, get_joint_transform, pick_b_index


class UnalignedSegDataset(BaseDataset):
    """Samples ``A``, ``A_seg``, ``A_seg_ids``, ``A_paths``, ``A_num_instances`` and the same for ``B``.

    ``A_seg`` is (max_instances, H, W) in [-1, 1]: one channel per mask in the order of k, then empty
    slots that are exactly -1. ``A_seg_ids`` (max_instances,) holds each slot's k (the mask file
    ``<name>_<k>.png`` it was read from), -1 for empty slots. ``A_num_instances`` counts the mask files used. ``A`` is taken at
    ``index % len(A)``; the length is that of the larger domain.
    """

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        source, target = domain_letters(opt)
        self.domain_a = DomainFolder(opt, source, opt.input_nc, with_masks=True)
        self.domain_b = DomainFolder(opt, target, opt.output_nc, with_masks=True)
        self.transform = get_joint_transform(opt)

    def __len__(self) -> int:
        return max(len(self.domain_a), len(self.domain_b))

    def __getitem__(self, index: int) -> dict[str, Any]:
        a = self.domain_a.load(index % len(self.domain_a), self.transform)
        b_index = pick_b_index(index, len(self.domain_b), self.opt.serial_batches)
        b = self.domain_b.load(b_index, self.transform)
        return {"A": a["image"], "A_seg": a["seg"], "A_seg_ids": a["seg_ids"], "A_paths": a["path"],
                "A_num_instances": a["num_instances"],
                "B": b["image"], "B_seg": b["seg"], "B_seg_ids": b["seg_ids"], "B_paths": b["path"],
                "B_num_instances": b["num_instances"]}
