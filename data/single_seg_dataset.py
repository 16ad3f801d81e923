"""One domain with its masks, for test.py: ``<dataroot>/<phase>A`` and ``<phase>A_seg``.

``--direction BtoA`` reads ``<phase>B`` and ``<phase>B_seg`` instead; the keys stay named ``A`` (the domain
being translated) and ``domain`` says which folder was read ("A" or "B").
"""

from __future__ import annotations

from .base_dataset import OneFolderDataset


class SingleSegDataset(OneFolderDataset):
    """Samples ``A``, ``A_seg``, ``A_seg_ids`` (the mask-file number k of each slot, -1 for padding),
    ``A_paths``, ``A_num_instances`` and ``domain``, in file order."""

    with_masks = True
