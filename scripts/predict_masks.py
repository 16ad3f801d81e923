"""Predict the instance masks of a folder of images with a trained mask predictor, ready for test.py.

    python -m scripts.predict_masks --name shapes_masks --images datasets/photos/testA --out datasets/photos/testA_seg
    python -m scripts.predict_masks --name shapes_masks --images datasets/shapes_64/testA --out /tmp/testA_seg \\
        --truth datasets/shapes_64/testA_seg        # also score them against true masks

Masks are written as ``<name>_<k>.png`` (0/255, k = 0 for the largest instance), the layout the ``_seg``
folders of every dataset here use; the output folder appears complete or not at all. Images of another size
than the predictor was trained at are resized to it and their masks back (a note says how many).
``--truth`` prints the mean instance IoU, the share of images with the right instance count and the IoU of
touching instances (util/instances.py), and writes them to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from options.base_options import OptionsError
from test import load_mask_predictor, predict_mask_folder
from util.checkpoint import CheckpointError
from util.fileio import write_text_atomic
from util.image_files import DatasetError, index_mask_files, list_image_files
from util.instances import InstanceScores
from util.metrics import read_mask


def score_mask_folders(predicted: Path, truth: Path, images: Path) -> dict:
    """Predicted masks (``predicted``) against true ones (``truth``), image by image of ``images``."""
    if not truth.is_dir():
        raise DatasetError(f"--truth {truth} is not a folder of masks <name>_<k>.png")
    found, true = index_mask_files(predicted), index_mask_files(truth)
    scores = InstanceScores()
    for path in list_image_files(images):
        scores.add_image([read_mask(file) for file in found.get(path.stem, [])],
                         [read_mask(file) for file in true.get(path.stem, [])])
    return scores.summary()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="the mask predictor's run (trained with --model mask_predictor)")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--epoch", default="latest", help="which saved weights: latest or an epoch number")
    parser.add_argument("--images", required=True, type=Path, help="folder of images to predict masks for")
    parser.add_argument("--out", required=True, type=Path, help="folder to write <name>_<k>.png into")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--gpu_ids", default="-1", help="GPU ids, or -1 for the CPU")
    parser.add_argument("--truth", type=Path, default=None, help="true masks of the images, to score against")
    parser.add_argument("--json", type=Path, default=None, help="with --truth: write the scores here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        predictor = load_mask_predictor(args.name, args.checkpoints_dir, args.epoch, args.gpu_ids)
        predict_mask_folder(predictor, args.images, args.out, replace=args.overwrite, batch_size=args.batch_size)
        if args.truth is not None:
            scores = score_mask_folders(args.out, args.truth, args.images)
            print(json.dumps(scores, indent=1))
            if args.json is not None:
                write_text_atomic(args.json, json.dumps(scores, indent=1) + "\n")
    except OptionsError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    except (CheckpointError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
