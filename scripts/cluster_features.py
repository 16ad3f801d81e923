"""Cluster the instance features of a trained pix2pixHD run (``--instance_feat``) into styles per label.

    python -m scripts.cluster_features --name shapes_hd [--checkpoints_dir ./checkpoints] [--n_clusters 10]

Encodes every image of the training split with the run's encoder E, takes one feature vector per instance
(E's output is constant inside each instance) and its label (the label most of its pixels carry), runs K-means
per label (scikit-learn) and writes the centres to ``<checkpoints_dir>/<name>/features_clustered.pt``.
``test.py --n_styles N`` then draws every test label map in N styles (style s: centre s of each instance's
label; ``--random_styles``: a random centre per instance). Other test.py options (``--epoch``, ``--phase``,
``--gpu_ids``, ``--max_dataset_size``...) are accepted and passed on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from data import create_dataset
from models import create_model
from models.instance_styles import CLUSTER_FILE, cluster_per_label, instance_features, save_clusters
from options.base_options import OptionsError
from options.test_options import TestOptions


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n_clusters", type=int, default=10, help="K-means centres (styles) per label")
    parser.add_argument("--out", default="", help=f"cluster file (default: the run's {CLUSTER_FILE})")
    own, rest = parser.parse_known_args(argv)
    if own.n_clusters < 1:
        parser.error("--n_clusters must be at least 1")
    opt = TestOptions().parse(["--phase", "train", "--eval", *rest], save=False, show=False)
    return own, opt


def encode_training_set(opt: argparse.Namespace) -> list[tuple[int, torch.Tensor]]:
    """(label id, feature vector) of every instance of the ``--phase`` split."""
    model = create_model(opt)
    if opt.model != "pix2pixhd" or not model.use_features:
        raise OptionsError(f"run {opt.name} is a {opt.model} model without the instance encoder: cluster_features "
                           f"needs a pix2pixhd run trained with --instance_feat")
    model.setup(opt)
    model.eval()
    samples = []
    with torch.no_grad(), model.autocast():
        for batch in create_dataset(opt):
            model.set_input(batch)
            feat = model.netE(model.real_B, model.inst)
            samples += instance_features(feat, model.inst, model.label)
    return samples


def main(argv: list[str] | None = None) -> int:
    try:
        own, opt = parse(argv)
        samples = encode_training_set(opt)
    except (OptionsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    centres = cluster_per_label(samples, own.n_clusters, seed=opt.seed or 0)
    counts = {label_id: sum(1 for found, _ in samples if found == label_id) for label_id in centres}
    path = Path(own.out) if own.out else Path(opt.checkpoints_dir) / opt.name / CLUSTER_FILE
    save_clusters(path, centres, counts)
    summary = ", ".join(f"label {label_id}: {len(c)} centres from {counts[label_id]} instances"
                        for label_id, c in centres.items())
    print(f"wrote {path}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
