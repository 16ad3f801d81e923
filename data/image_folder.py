"""Kept so ``from data.image_folder import DatasetError`` (train.py, test.py) keeps working.

The on-disk layout helpers and ``DatasetError`` are defined in ``util.image_files``; import them from there.
"""

from __future__ import annotations

from util.image_files import DatasetError

__all__ = ["DatasetError"]
