"""pix2pixHD's styles: the encoder's per-instance features of the training images, clustered per label with
K-means; at test time every instance gets one cluster centre of its label, so one label map gives several
looks (``scripts/cluster_features.py`` writes the file, the pix2pixhd model reads it).

An instance is a region of one instance id in one image; its label is the label most of its pixels carry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from util.checkpoint import load_weights_only, save_atomic

CLUSTER_FILE = "features_clustered.pt"   # in the run's folder, beside the checkpoints


def instance_features(feat: Tensor, inst: Tensor, label: Tensor | None) -> list[tuple[int, Tensor]]:
    """(label id, feature vector) of every instance in a batch: ``feat`` (B, C, H, W) is constant inside each
    instance of ``inst`` (B, 1, H, W); ``label`` None (RGB input) puts every instance under label 0."""
    found = []
    for sample in range(feat.shape[0]):
        ids = inst[sample, 0]
        for instance in ids.unique():
            where = ids == instance
            vector = feat[sample][:, where][:, 0]
            label_id = 0 if label is None else int(label[sample, 0][where].mode().values)
            found.append((label_id, vector.detach().float().cpu()))
    return found


def cluster_per_label(samples: list[tuple[int, Tensor]], n_clusters: int, seed: int = 0) -> dict[int, Tensor]:
    """K-means (scikit-learn) on each label's feature vectors: ``{label id: (k, C) centres}``, k =
    ``n_clusters`` or the number of distinct vectors when there are fewer."""
    from sklearn.cluster import KMeans

    by_label: dict[int, list[Tensor]] = {}
    for label_id, vector in samples:
        by_label.setdefault(label_id, []).append(vector)
    centres = {}
    for label_id, vectors in sorted(by_label.items()):
        data = torch.stack(vectors).numpy().astype(np.float64)
        k = min(n_clusters, len(np.unique(data.round(6), axis=0)))
        model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(data)
        centres[label_id] = torch.from_numpy(model.cluster_centers_).float()
    return centres


def save_clusters(path: str | Path, centres: dict[int, Tensor], counts: dict[int, int]) -> Path:
    return save_atomic({"centres": centres, "instances": counts}, path)


def load_clusters(path: str | Path) -> dict[int, Tensor]:
    state = load_weights_only(path)
    if not isinstance(state, dict) or "centres" not in state:
        raise ValueError(f"{path} is not a cluster file of scripts/cluster_features.py (no 'centres'); run "
                         f"python -m scripts.cluster_features --name <run> again")
    return {int(label_id): centres for label_id, centres in state["centres"].items()}


def style_feature_map(inst: Tensor, label: Tensor | None, centres: dict[int, Tensor],
                      choose: Callable[[int, int], int]) -> Tensor:
    """(B, C, H, W) feature map: every instance filled with centre ``choose(label id, k)`` of its label's k
    centres (label ids without centres, unseen in training, get zeros: the middle of the encoder's range)."""
    channels = next(iter(centres.values())).shape[1]
    out = torch.zeros(inst.shape[0], channels, *inst.shape[2:], device=inst.device)
    for sample in range(inst.shape[0]):
        ids = inst[sample, 0]
        for instance in ids.unique():
            where = ids == instance
            label_id = 0 if label is None else int(label[sample, 0][where].mode().values)
            if label_id in centres:
                options = centres[label_id]
                centre = options[choose(label_id, len(options)) % len(options)].to(out.device)
                out[sample][:, where] = centre.unsqueeze(1)
    return out
