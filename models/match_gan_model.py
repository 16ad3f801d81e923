"""MatchGAN (Sun et al.): StarGAN plus a triplet matching loss over label groups, for training with few labels.

Images made for the same target labels form positive pairs, images made for different labels negative pairs.
D gets a matching head that reads two images' features and says whether they share labels:

- D learns it on real labelled images (the stream of labelled images beside each batch; anchor, an image with
  its labels, an image with other labels):
  lambda_mch * (BCE(M(a, p), 1) + BCE(M(a, n), 0));
- G learns from it on its translations, grouped by their target labels (StarGAN's targets come in pairs of
  consecutive samples: the two of a pair share them): the same loss, so that its images for one label vector
  look like one group and those for different vectors like different groups. With ``--mch_G_pairs real`` a
  translation is matched against the real labelled images instead: positive, one whose labels are its target;
  negative, one with other labels, so that it joins the real group of its target. With ``--mch_G_terms
  positive`` G keeps only the positive term: its images for one label vector are pulled into one group, but it
  is not rewarded for making images for different vectors differ (which any change can do, also in the
  attributes the two vectors share). With ``--mch_D_images real_and_translations`` D also learns matching on
  the translations (detached), grouped by their target labels: labels used as augmentation.

``--lambda_mch 0`` builds no matching head and is StarGAN exactly. Choices where the paper is silent are in
docs/match_gan.md.

    python train.py --model match_gan --dataroot ./datasets/shapes_attributes_64 --attributes rectangle,red,large \\
        --labelled_fraction 0.1
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base_model import Update, validate_loss_weights
from .stargan_model import StarGanModel


class MatchingHead(nn.Module):
    """Features of two images -> one logit "same labels": a 1x1 convolution and global pooling embed each image,
    a small MLP reads the absolute difference of the two embeddings."""

    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(channels, width, 1), nn.LeakyReLU(0.01, True),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.compare = nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.01, True), nn.Linear(width, 1))

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        return self.compare((self.embed(first) - self.embed(second)).abs()).flatten()


def pick_triplets(same: Tensor, different: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(anchor, positive, negative) indices from (anchors x candidates) masks of allowed positives and
    negatives: for each anchor with at least one of each, one of each at random."""
    anchors = (same.any(1) & different.any(1)).nonzero().flatten()
    if anchors.numel() == 0:
        empty = anchors.new_zeros(0)
        return empty, empty, empty
    noise = torch.rand(same.shape, device=same.device)
    positives = torch.where(same[anchors], noise[anchors], -1.0).argmax(1)
    negatives = torch.where(different[anchors], noise[anchors], -1.0).argmax(1)
    return anchors, positives, negatives


def cross_triplets(anchor_labels: Tensor, pool_labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(anchor, positive, negative) indices: anchors index ``anchor_labels``, positives and negatives index
    ``pool_labels`` (identical labels, different labels), chosen at random for each anchor that has both."""
    same = (anchor_labels[:, None, :] == pool_labels[None, :, :]).all(-1)
    return pick_triplets(same, ~same)


def triplets(labels: Tensor, allowed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(anchor, positive, negative) indices among the ``allowed`` samples: for each allowed anchor with another
    allowed sample of identical labels and one of different labels, one of each at random."""
    identical = (labels[:, None, :] == labels[None, :, :]).all(-1)
    both_allowed = allowed[:, None] & allowed[None, :]
    same = identical & both_allowed
    same.fill_diagonal_(False)
    return pick_triplets(same, ~identical & both_allowed)


class MatchGanModel(StarGanModel):
    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser = StarGanModel.modify_commandline_options(parser, is_train)
        if is_train:
            g = parser.add_argument_group("matchgan")
            g.add_argument("--lambda_mch", type=float, default=1.0,
                           help="weight of the triplet matching loss (0: StarGAN exactly)")
            g.add_argument("--mch_G_pairs", choices=["translations", "real"], default="translations",
                           help="G's matching triplets: among its translations grouped by target labels, or each "
                                "translation against real labelled images with its target labels and with others")
            g.add_argument("--mch_G_terms", choices=["both", "positive"], default="both",
                           help="G's matching terms: same-label pairs matched and different-label pairs told "
                                "apart (the method), or the same-label term only")
            g.add_argument("--mch_D_images", choices=["real", "real_and_translations"], default="real",
                           help="what D learns matching on: the real labelled images (default), or also the "
                                "translations grouped by their target labels (labels as augmentation: every "
                                "translation adds an example of its target group)")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        StarGanModel.validate_options(opt)
        if getattr(opt, "isTrain", False):
            validate_loss_weights(opt, ("lambda_mch",))

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.use_matching = self.isTrain and opt.lambda_mch > 0
        if not self.use_matching:
            return
        # Part of D (saved with it, stepped by D's optimiser), built last so that G and D start as StarGAN's.
        self.matching_head = MatchingHead(self.netD.channels).to(self.device)
        self.netD.matching = self.matching_head      # --compile wraps netD: keep a direct reference
        self.optimizer_D.add_param_group({"params": list(self.matching_head.parameters())})
        self.loss_names += ["D_mch", "G_mch"]

    def training_updates(self) -> Iterator[Update]:
        if not self.use_matching:
            yield from super().training_updates()
            return
        generator_negatives = self.opt.mch_G_terms == "both"
        for update in super().training_updates():
            if update.optimizer is self.optimizer_D:
                update.losses["D_mch"] = self.matching_loss(self.labelled_features, self.labels_L)
                if self.opt.mch_D_images == "real_and_translations":
                    update.losses["D_mch"] = update.losses["D_mch"] + self.matching_loss(
                        self.fake_features_for_D, self.targets)
            elif self.opt.mch_G_pairs == "real":
                with torch.no_grad():
                    real_features = self.netD(self.real_L)[2]
                update.losses["G_mch"] = self.matching_loss(self.fake_features, self.targets, real_features,
                                                            self.labels_L, negatives=generator_negatives)
            else:
                update.losses["G_mch"] = self.matching_loss(self.fake_features, self.targets,
                                                            negatives=generator_negatives)
            yield update

    def matching_loss(self, features: Tensor, labels: Tensor, pool_features: Tensor | None = None,
                      pool_labels: Tensor | None = None, negatives: bool = True) -> Tensor:
        """lambda_mch * (BCE(M(a, p), 1) + BCE(M(a, n), 0)) over the triplets of the batch (0 without any);
        with a pool, anchors from ``features`` and positives and negatives from the pool; without
        ``negatives``, lambda_mch * BCE(M(a, p), 1) over the same triplets."""
        if pool_features is None:
            anchors, positives, negative_indices = triplets(labels, torch.ones_like(labels[:, 0], dtype=torch.bool))
            pool_features = features
        else:
            anchors, positives, negative_indices = cross_triplets(labels, pool_labels)
        if anchors.numel() == 0:
            return features.sum() * 0.0
        head = self.matching_head
        same = head(features[anchors], pool_features[positives]).float()
        loss = F.binary_cross_entropy_with_logits(same, torch.ones_like(same))
        if negatives:
            other = head(features[anchors], pool_features[negative_indices]).float()
            loss = loss + F.binary_cross_entropy_with_logits(other, torch.zeros_like(other))
        return self.opt.lambda_mch * loss
