"""Metrics (util/metrics.py), the cached domain classifier (util/domain_classifier.py) and evaluate.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import evaluate
from util import domain_classifier as dc
from util import metrics

SIZE = 32
TINY = dc.ClassifierSettings(size=16, steps=3, batch_size=8)


def square(top: int, left: int, side: int, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[top:top + side, left:left + side] = True
    return mask


def disc(cy: int, cx: int, radius: int, size: int = SIZE) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2


def noise_image(seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8) * 255 if array.dtype == bool else array).save(path)


# ---------------------------------------------------------------------------------------------- background
def test_identical_images_give_infinite_psnr_and_zero_l1():
    image = noise_image(0)
    error = metrics.background_error(image, image.copy(), [square(4, 4, 8)])
    assert error.l1 == 0.0
    assert error.psnr == math.inf


def test_background_change_lowers_psnr_but_instance_change_does_not():
    image, instance = noise_image(1), square(4, 4, 10)
    inside = image.copy()
    inside[instance] = 255 - inside[instance]
    assert metrics.background_error(image, inside, [instance]).psnr == math.inf
    outside = image.copy()
    outside[20:, 20:] = 0
    changed = metrics.background_error(image, outside, [instance])
    assert changed.psnr < 30 and changed.l1 > 0


def test_translated_masks_also_exclude_pixels_from_the_background():
    image, before, after = noise_image(2), square(2, 2, 6), square(20, 20, 8)
    output = image.copy()
    output[after] = 0  # the instance moved there: not background any more
    assert metrics.background_error(image, output, [before]).psnr < math.inf
    assert metrics.background_error(image, output, [before, after]).psnr == math.inf


def test_psnr_of_known_error():
    assert metrics.psnr_from_mse(0.01) == pytest.approx(20.0)


# ---------------------------------------------------------------------------------------------- instances
def test_iou_of_half_overlapping_squares_is_one_third():
    assert metrics.mask_iou(square(0, 0, 8), square(0, 4, 8)) == pytest.approx(1 / 3)


def test_input_masks_follow_the_model_order_largest_first_capped():
    small, big, empty, middle = square(0, 0, 3), square(10, 10, 9), np.zeros((SIZE, SIZE), bool), square(0, 20, 5)
    ordered = metrics.order_like_model([small, big, empty, middle], ins_max=2)
    assert [int(mask.sum()) for mask in ordered] == [81, 25]


def test_instance_count_kept_and_empty_translated_masks():
    first, second = square(0, 0, 8), square(16, 16, 8)
    fidelity = metrics.InstanceFidelity()
    fidelity.add_image([first, second], {0: first, 1: second})
    fidelity.add_image([first, second], {0: first, 1: np.zeros_like(first)})  # slot 1 came out empty
    assert fidelity.count_kept_fraction == 0.5
    assert fidelity.empty_translated == 1
    assert fidelity.mean_iou == pytest.approx(0.75)


def test_iou_matching_forgives_swapped_slots_while_slot_matching_does_not():
    first, second = square(0, 0, 8), square(16, 16, 8)
    assert metrics.match_instances([first, second], {0: second, 1: first}, "slot") == [0.0, 0.0]
    assert metrics.match_instances([first, second], {0: second, 1: first}, "iou") == [1.0, 1.0]


# ---------------------------------------------------------------------------------------------- domain score
class ConstantLogit(nn.Module):
    def __init__(self, logit: float):
        super().__init__()
        self.logit = logit

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.full((inputs.shape[0],), self.logit)


def test_domain_score_of_always_right_and_always_wrong_classifiers():
    inputs = torch.zeros(5, 3, 8, 8)
    assert metrics.domain_score(ConstantLogit(3.0), inputs, target_label=1) == 1.0
    assert metrics.domain_score(ConstantLogit(-3.0), inputs, target_label=1) == 0.0
    assert metrics.domain_score(ConstantLogit(-3.0), inputs, target_label=0) == 1.0


def test_sobel_magnitude_marks_edges_only():
    image = torch.zeros(1, 3, 8, 8)
    image[:, :, :, 4:] = 1.0
    edges = metrics.sobel_magnitude(image)
    assert edges.shape == image.shape
    assert edges[0, :, :, 3:5].min() > 1.0 and edges[0, :, :, :2].max() < 1e-3


# ---------------------------------------------------------------------------------------------- FID / KID
class ChannelStats(nn.Module):
    """Stand-in for Inception: channel means and a coarse grid of pixels of uint8 images."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert images.dtype == torch.uint8
        unit = images.float() / 255.0
        return torch.cat([unit.mean((2, 3)), unit[:, :, ::8, ::8].flatten(1)], 1)


def test_fid_and_kid_plumbing_with_stand_in_extractor():
    images = torch.from_numpy(np.stack([noise_image(seed, 16) // 2 for seed in range(12)])).permute(0, 3, 1, 2)
    same = metrics.fid_and_kid(images, images.clone(), ChannelStats(), kid_subsets=5)
    shifted = metrics.fid_and_kid(images + 100, images, ChannelStats(), kid_subsets=5)
    assert abs(same["fid"]) < 1e-3
    assert shifted["fid"] > 1.0 and shifted["kid_mean"] > same["kid_mean"] + 0.1


def test_missing_inception_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(metrics.InceptionWeightsMissing) as caught:
        metrics.find_inception_weights(tmp_path / "nowhere.pth")
    assert metrics.INCEPTION_URL in str(caught.value) and "--inception_weights" in str(caught.value)
    with pytest.raises(metrics.InceptionWeightsMissing, match="torch_home"):
        metrics.find_inception_weights()
    present = tmp_path / metrics.INCEPTION_FILE
    present.write_bytes(b"")
    assert metrics.find_inception_weights(present) == present


# ---------------------------------------------------------------------------------------------- data on disk
def make_dataset(root: Path, n_train: int = 6, n_test: int = 4) -> None:
    """Domain A: discs on noise; domain B: squares on noise; one or two instances per image."""
    rng = np.random.default_rng(0)
    for phase, count in (("train", n_train), ("test", n_test)):
        for letter, shape in (("A", disc), ("B", square)):
            for index in range(count):
                image = noise_image(index + (100 if letter == "B" else 0)) // 4
                masks = [disc(8, 8, 5) if shape is disc else square(3, 3, 10)]
                if index % 2:
                    masks.append(disc(22, 22, 4) if shape is disc else square(18, 18, 8))
                for k, mask in enumerate(masks):
                    image[mask] = rng.integers(150, 256, 3)
                    save_png(mask, root / f"{phase}{letter}_seg" / f"img{index}_{k}.png")
                save_png(image, root / f"{phase}{letter}" / f"img{index}.png")


def make_results(dataroot: Path, page: Path, drop_slot_of: str | None = None) -> Path:
    """A test.py-style folder whose 'translation' is the input itself (masks in largest-first slots)."""
    images = page / "images"
    images.mkdir(parents=True)
    (page / "index.html").write_text("<html></html>")
    for path in sorted((dataroot / "testA").glob("*.png")):
        stem = path.stem
        picture = np.asarray(Image.open(path).convert("RGB"))
        save_png(picture, images / f"{stem}_real_A_img.png")
        save_png(picture, images / f"{stem}_fake_B_img.png")
        masks = [metrics.read_mask(p) for p in sorted((dataroot / "testA_seg").glob(f"{stem}_*.png"))]
        for slot, mask in enumerate(metrics.order_like_model(masks, ins_max=4)):
            if stem == drop_slot_of and slot == 1:
                continue
            save_png(mask, images / f"{stem}_fake_B_seg_{slot}.png")
    return page


# ---------------------------------------------------------------------------------------------- classifier cache
def test_classifier_cache_is_reused_and_refreshed_when_data_change(tmp_path):
    make_dataset(tmp_path)
    logs: list[str] = []
    net, first = dc.load_or_train(tmp_path, "image", TINY, log=logs.append)
    assert first.trained and Path(first.cache_path).is_file()
    assert 0.0 <= first.val_accuracy <= 1.0
    again, second = dc.load_or_train(tmp_path, "image", TINY, log=logs.append)
    assert not second.trained and second.val_accuracy == first.val_accuracy
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))
    save_png(noise_image(7), tmp_path / "trainB" / "extra.png")
    _, third = dc.load_or_train(tmp_path, "image", TINY, log=logs.append)
    assert third.trained
    _, other_settings = dc.load_or_train(tmp_path, "image", dc.ClassifierSettings(size=16, steps=4, batch_size=8),
                                         log=logs.append)
    assert other_settings.trained


def test_mask_classifier_input_is_the_cropped_outline():
    small, big = dc.mask_input(square(2, 2, 10), 16), dc.mask_input(square(1, 1, 30), 16)
    assert torch.allclose(small, big, atol=0.2)  # size and position do not matter, the shape does
    assert not torch.allclose(dc.mask_input(disc(15, 15, 10), 16), big, atol=0.2)
    assert dc.mask_input(np.zeros((SIZE, SIZE), bool), 16) is None


# ---------------------------------------------------------------------------------------------- evaluate.py
def test_evaluate_end_to_end_writes_documented_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    dataroot, page = tmp_path / "data", tmp_path / "results" / "run" / "test_latest"
    make_dataset(dataroot)
    make_results(dataroot, page, drop_slot_of="img1")
    code = evaluate.main(["--results", str(page), "--dataroot", str(dataroot), "--classifier_size", "16",
                          "--classifier_steps", "3"])
    assert code == 0
    out, err = capsys.readouterr()
    assert "background PSNR" in out and metrics.INCEPTION_URL in err
    result = json.loads((page / "metrics.json").read_text())
    for key in ("num_images", "fid", "kid_mean", "kid_std", "domain_score", "domain_classifier_val_accuracy",
                "shape_score", "shape_classifier_val_accuracy", "background_l1", "background_psnr", "mean_iou",
                "instance_count_kept", "empty_translated_masks", "num_input_instances", "skipped", "per_image"):
        assert key in result
    assert result["num_images"] == 4 and result["num_input_instances"] == 6
    assert result["background_psnr"] == math.inf and result["background_l1"] == 0.0
    assert result["fid"] is None and metrics.INCEPTION_URL in result["skipped"]["fid"]
    assert result["instance_count_kept"] == 0.75 and result["empty_translated_masks"] == 1
    assert result["mean_iou"] == pytest.approx(5 / 6)
    assert 0.0 <= result["domain_score"] <= 1.0 and 0.0 <= result["shape_score"] <= 1.0


def test_evaluate_results_api_with_stand_in_extractor(tmp_path):
    dataroot, page = tmp_path / "data", tmp_path / "page"
    make_dataset(dataroot)
    make_results(dataroot, page)
    result = evaluate.evaluate_results(page, dataroot, feature_extractor=ChannelStats(), domain_score=False,
                                       shape_score=False, kid_subset_size=2, log=lambda _: None)
    assert result["fid"] is not None and result["fid"] > 0  # translated A vs real B differ
    assert result["mean_iou"] == 1.0 and result["instance_count_kept"] == 1.0
    assert result["domain_score"] is None


def test_wrong_ins_max_and_wrong_folder_are_clear_errors(tmp_path, capsys):
    dataroot, page = tmp_path / "data", tmp_path / "page"
    make_dataset(dataroot)
    make_results(dataroot, page)
    common = ["--dataroot", str(dataroot), "--no_fid", "--no_domain_score", "--no_shape_score"]
    assert evaluate.main(["--results", str(page), "--ins_max", "1", *common]) == 2
    assert "--ins_max" in capsys.readouterr().err
    assert evaluate.main(["--results", str(tmp_path), *common]) == 2
    assert "_fake_B_img.png" in capsys.readouterr().err
