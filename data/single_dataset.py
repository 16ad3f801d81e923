"""One domain's images without masks, for test.py with mask-free models (CycleGAN): ``<dataroot>/<phase>A``.

A plain unpaired folder (trainA, trainB, testA, testB, no ``_seg`` folders) is enough. ``--direction BtoA``
reads ``<phase>B`` instead; the keys stay named ``A`` and ``domain`` says which folder was read.
"""

from __future__ import annotations

from .base_dataset import OneFolderDataset


class SingleDataset(OneFolderDataset):
    """Samples ``A`` (image in [-1, 1]), ``A_paths`` and ``domain``, in file order; ``_seg`` folders are ignored."""

    with_masks = False
