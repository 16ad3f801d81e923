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
from util.image_files import DatasetError

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


GREY = 100   # a flat image's value
STEP = 51    # 51 / 255 = 0.2 on the 0..1 scale the metrics use


def flat_image(value: int = GREY, size: int = SIZE) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def psnr_db(mse: float) -> float:
    return 10 * math.log10(1 / mse)


# ---------------------------------------------------------------------------------------------- background
def test_identical_images_give_infinite_psnr_and_zero_l1():
    image = noise_image(0)
    error = metrics.background_error(image, image.copy(), [square(4, 4, 8)])
    assert error.l1 == 0.0
    assert error.psnr == math.inf


def test_instance_change_leaves_the_background_perfect():
    image, instance = noise_image(1), square(4, 4, 10)
    inside = image.copy()
    inside[instance] = 255 - inside[instance]
    error = metrics.background_error(image, inside, [instance])
    assert error.psnr == math.inf and error.l1 == 0.0


def test_whole_background_shifted_by_0_2_gives_l1_0_2_and_psnr_14_db():
    image, instance = flat_image(), square(4, 4, 10)
    output = image + STEP
    error = metrics.background_error(image, output, [instance])
    assert error.values == (SIZE * SIZE - 100) * 3   # every channel of every background pixel, none inside
    assert error.l1 == pytest.approx(0.2)
    assert error.psnr == pytest.approx(psnr_db(0.2**2)) and error.psnr == pytest.approx(13.979, abs=1e-3)


def test_background_change_of_known_area_gives_its_share_of_the_error():
    image, instance = flat_image(), square(4, 4, 10)   # 100 instance pixels, 924 background pixels
    output = image.copy()
    output[instance] = 255                              # the instance may change freely
    output[20:32, 20:32] += STEP                        # 144 background pixels change by 0.2
    error = metrics.background_error(image, output, [instance])
    share = 144 / 924
    assert error.l1 == pytest.approx(0.2 * share)
    assert error.psnr == pytest.approx(psnr_db(0.2**2 * share)) and error.psnr == pytest.approx(22.05, abs=0.01)


def test_translated_masks_also_exclude_pixels_from_the_background():
    image, before, after = flat_image(200), square(2, 2, 6), square(20, 20, 8)
    output = image.copy()
    output[after] -= STEP  # the instance moved there: not background any more
    only_input = metrics.background_error(image, output, [before])
    assert only_input.l1 == pytest.approx(0.2 * 64 / (SIZE * SIZE - 36))
    assert metrics.background_error(image, output, [before, after]).psnr == math.inf


def test_background_errors_of_several_images_pool_their_pixels():
    """The run's figure weighs every background pixel equally, not every image."""
    instance = square(4, 4, 10)
    changed = metrics.background_error(flat_image(), flat_image() + STEP, [instance])     # 924 pixels off by 0.2
    total = metrics.RegionError()
    total += changed
    total += metrics.background_error(flat_image(), flat_image(), [])                    # 1024 pixels exact
    assert total.l1 == pytest.approx(0.2 * 924 / (924 + 1024))
    assert total.psnr == pytest.approx(psnr_db(0.2**2 * 924 / (924 + 1024)))


def test_psnr_of_known_error():
    assert metrics.psnr_from_mse(0.01) == pytest.approx(20.0)


# ---------------------------------------------------------------------------------------------- instances
def test_iou_of_half_overlapping_squares_is_one_third():
    assert metrics.mask_iou(square(0, 0, 8), square(0, 4, 8)) == pytest.approx(1 / 3)


def test_iou_of_known_overlaps():
    assert metrics.mask_iou(square(0, 0, 8), square(0, 2, 8)) == pytest.approx(48 / 80)   # shifted by 2 columns
    assert metrics.mask_iou(square(0, 0, 8), square(2, 2, 4)) == pytest.approx(16 / 64)   # nested
    assert metrics.mask_iou(square(0, 0, 8), square(16, 16, 8)) == 0.0                    # apart
    assert metrics.mask_iou(square(0, 0, 8), square(0, 0, 8)) == 1.0


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


def polynomial_kid(fake: np.ndarray, real: np.ndarray) -> float:
    """KID by its definition: unbiased MMD^2 with the kernel (x.y / d + 1)^3, all samples in one subset."""
    def kernel(a, b):
        return (a @ b.T / a.shape[1] + 1) ** 3

    n = fake.shape[0]
    within = (kernel(fake, fake).sum() - np.trace(kernel(fake, fake)) + kernel(real, real).sum()
              - np.trace(kernel(real, real))) / (n * (n - 1))
    return float(within - 2 * kernel(fake, real).mean())


def test_fid_and_kid_of_a_known_shift_with_stand_in_extractor():
    images = torch.from_numpy(np.stack([noise_image(seed, 16) // 2 for seed in range(12)])).permute(0, 3, 1, 2)
    same = metrics.fid_and_kid(images, images.clone(), ChannelStats(), kid_subsets=5)
    shifted = metrics.fid_and_kid(images + 100, images, ChannelStats(), kid_subsets=5)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    # +100 grey levels move each of the 15 features (3 channel means, 2x2x3 pixels) by 100/255 and leave the
    # covariance as it was: FID = |mean difference|^2
    assert shifted["fid"] == pytest.approx(15 * (100 / 255) ** 2, rel=1e-6)
    features = [ChannelStats()(batch).double().numpy() for batch in (images + 100, images)]
    assert shifted["kid_mean"] == pytest.approx(polynomial_kid(*features), rel=1e-6)
    assert same["kid_mean"] == pytest.approx(polynomial_kid(features[1], features[1]), abs=1e-9)


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


def make_results(dataroot: Path, page: Path, drop_slot_of: str | None = None, translated_from: str = "A") -> Path:
    """A test.py-style folder whose 'translation' is the input itself (masks in largest-first slots), or, with
    ``translated_from="B"``, the real B image and masks of the same name (a perfect translation)."""
    images = page / "images"
    images.mkdir(parents=True)
    (page / "index.html").write_text("<html></html>")
    for path in sorted((dataroot / "testA").glob("*.png")):
        stem = path.stem
        picture = np.asarray(Image.open(path).convert("RGB"))
        save_png(picture, images / f"{stem}_real_A_img.png")
        translated = dataroot / f"test{translated_from}"
        save_png(np.asarray(Image.open(translated / path.name).convert("RGB")), images / f"{stem}_fake_B_img.png")
        masks = [metrics.read_mask(p) for p in sorted((dataroot / f"{translated.name}_seg").glob(f"{stem}_*.png"))]
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
    assert first.train_samples == {"A": 6, "B": 6}
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
    assert set(result["skipped"]) == {"fid", "target"}   # no ground truth here; both classifiers ran (their scores: the labelled-data test below)


def make_hand_results(root: Path) -> tuple[Path, Path]:
    """Two flat grey inputs with known masks and a 'translation' whose every error is known (see the test)."""
    dataroot, images = root / "data", root / "page" / "images"
    inputs = {"img0": [square(4, 4, 8), square(20, 20, 6)], "img1": [square(0, 0, 10)]}
    for stem, masks in inputs.items():
        save_png(flat_image(), dataroot / "testA" / f"{stem}.png")
        save_png(flat_image(), images / f"{stem}_real_A_img.png")
        for k, mask in enumerate(masks):
            save_png(mask, dataroot / "testA_seg" / f"{stem}_{k}.png")
    fake = flat_image()
    fake[24:32, 0:8] += STEP      # 64 background pixels off by 0.2
    fake[4:12, 6:14] = 255        # inside the translated instance: not background
    save_png(fake, images / "img0_fake_B_img.png")
    save_png(square(4, 6, 8), images / "img0_fake_B_seg_0.png")    # slot 0 (the larger input) moved 2 columns
    save_png(square(20, 20, 6), images / "img0_fake_B_seg_1.png")   # slot 1 kept exactly
    save_png(flat_image(), images / "img1_fake_B_img.png")          # img1: background kept, instance lost
    return dataroot, root / "page"


def test_evaluate_reports_hand_computed_background_iou_and_counts(tmp_path, capsys):
    dataroot, page = make_hand_results(tmp_path)
    assert evaluate.main(["--results", str(page), "--dataroot", str(dataroot), "--no_fid", "--no_domain_score",
                          "--no_shape_score"]) == 0
    result = json.loads((page / "metrics.json").read_text())
    # img0 background: 1024 pixels less the input masks (64 + 36) and the moved mask's 16 new pixels = 908
    img0, img1 = result["per_image"]
    assert img0["background_l1"] == pytest.approx(0.2 * 64 / 908)
    assert img0["background_psnr"] == pytest.approx(psnr_db(0.04 * 64 / 908))
    assert img1["background_l1"] == 0.0 and img1["background_psnr"] == math.inf
    # the run's figures pool img0's 908 and img1's 924 background pixels
    assert result["background_l1"] == pytest.approx(0.2 * 64 / (908 + 924))
    assert result["background_psnr"] == pytest.approx(psnr_db(0.04 * 64 / (908 + 924)))
    # IoU per input instance in slot order: moved square 48/80, kept square 1, lost instance 0
    assert img0["ious"] == pytest.approx([0.6, 1.0]) and img1["ious"] == [0.0]
    assert result["mean_iou"] == pytest.approx((0.6 + 1.0 + 0.0) / 3)
    assert result["instance_count_kept"] == 0.5           # img0 kept both instances, img1 lost its only one
    assert result["empty_translated_masks"] == 1 and result["num_input_instances"] == 3
    assert (img0["input_instances"], img0["translated_instances"]) == (2, 2)
    assert (img1["input_instances"], img1["translated_instances"]) == (1, 0)
    assert "background PSNR" in capsys.readouterr().out


def add_hand_targets(dataroot: Path) -> float:
    """Ground truth for make_hand_results: white objects on the grey inputs; returns one object's colour error.
    img0's target mask 0 is where the translation painted white (exact), its mask 1 stays grey in the
    translation, and img1's only object was lost (grey)."""
    targets = {"img0": [square(4, 6, 8), square(20, 20, 6)], "img1": [square(0, 0, 10)]}
    for stem, masks in targets.items():
        target = flat_image()
        for k, mask in enumerate(masks):
            target[mask] = 255
            save_png(mask, dataroot / "testA_target_seg" / f"{stem}_{k}.png")
        save_png(target, dataroot / "testA_target" / f"{stem}.png")
    return (255 - GREY) / 255


def test_evaluate_scores_outputs_against_ground_truth_with_references(tmp_path, capsys):
    dataroot, page = make_hand_results(tmp_path)
    wrong = add_hand_targets(dataroot)
    assert evaluate.main(["--results", str(page), "--dataroot", str(dataroot), "--no_fid", "--no_domain_score",
                          "--no_shape_score"]) == 0
    result = json.loads((page / "metrics.json").read_text())
    pixels = 2 * SIZE * SIZE
    # full image: img0's 64 background pixels off by 0.2 and its grey object 1 (36 px); img1's lost object (100 px)
    assert result["target_psnr"] == pytest.approx(psnr_db((64 * 0.04 + 136 * wrong**2) / pixels), abs=1e-4)
    assert result["identity_target_psnr"] == pytest.approx(psnr_db(200 * wrong**2 / pixels), abs=1e-4)
    assert result["identity_target_ssim"] < result["target_ssim"] < 1.0
    # with the target's objects pasted in, only img0's 64 background pixels (far from every object) stay wrong
    assert result["true_objects_target_psnr"] == pytest.approx(psnr_db(64 * 0.04 / pixels), abs=1e-4)
    assert "identity_true_objects_target_psnr" not in result
    # inside the 200 target-object pixels, 136 are wrong; per object: exact, wrong, wrong
    assert result["object_psnr"] == pytest.approx(psnr_db(136 * wrong**2 / 200))
    assert result["object_colour_error"] == pytest.approx(2 * wrong / 3)
    assert result["identity_object_colour_error"] == pytest.approx(wrong)
    # pixels to change: img0's object 0 moves 2 columns (16 rim + 16 new pixels); the translation drew it there
    # (img1's lost object has nothing to change: same input and target mask)
    assert result["shape_change_score"] == 1.0 and result["identity_shape_change_score"] == 0.0
    # translated masks: img0's two match their targets exactly, img1's was lost
    assert result["target_mask_iou"] == pytest.approx(2 / 3)
    # the input masks themselves: img0's object 0 is 2 columns off its target (IoU 48 / 80), the others match
    assert result["identity_target_mask_iou"] == pytest.approx((0.6 + 1.0 + 1.0) / 3)
    # background outside input AND target masks: 1024 - 116 and 1024 - 100 pixels; flat inputs: perfect floors
    assert result["target_background_psnr"] == pytest.approx(psnr_db(0.04 * 64 / (908 + 924)))
    assert result["background_floor_dataset_colour"] == math.inf
    assert result["background_floor_image_colour"] == math.inf
    assert result["background_target_itself"] == math.inf   # hand targets equal the input off their masks
    assert "target" not in result["skipped"]
    assert "reference: the input unchanged" in capsys.readouterr().out


def test_without_ground_truth_the_target_metrics_are_skipped_saying_why(tmp_path, capsys):
    dataroot, page = make_hand_results(tmp_path)
    assert evaluate.main(["--results", str(page), "--dataroot", str(dataroot), "--no_fid", "--no_domain_score",
                          "--no_shape_score"]) == 0
    result = json.loads((page / "metrics.json").read_text())
    assert all(result[key] is None for key in evaluate.TARGET_KEYS)
    assert "testA_target" in result["skipped"]["target"]
    assert "testA_target" in capsys.readouterr().err


def test_shape_change_score_is_zero_for_the_input_one_for_the_target_and_ignores_colour():
    """An 8x8 red square becomes a 4x16 bar: 32 rim pixels must turn background, 32 new pixels object."""
    square_mask, bar_mask = square(8, 8, 8), np.zeros((SIZE, SIZE), dtype=bool)
    bar_mask[10:14, 4:20] = True
    source, target = flat_image(), flat_image()
    source[square_mask], target[bar_mask] = (200, 0, 0), (200, 0, 0)
    sources, targets = {0: square_mask}, {0: bar_mask}
    assert metrics.shape_change_counts(source, sources, targets) == (0, 64)
    assert metrics.shape_change_counts(target, sources, targets) == (64, 64)
    green_bar = flat_image()
    green_bar[bar_mask] = (0, 200, 0)                     # the right shape in the wrong colour
    assert metrics.shape_change_counts(green_bar, sources, targets) == (64, 64)
    half = source.copy()
    half[bar_mask & ~square_mask] = (200, 0, 0)          # the bar's new pixels drawn, the square's rims kept
    assert metrics.shape_change_counts(half, sources, targets) == (32, 64)
    assert metrics.shape_change_counts(flat_image(), sources, targets) == (0, 64)   # object erased


def test_true_objects_psnr_forgives_the_objects_and_their_one_pixel_rims_only():
    """An output wrong on an object, on the ring of pixels just around it (the drawn edge) and on one pixel two
    away: with perfect objects only that last pixel would stay wrong."""
    target, object_mask = flat_image(), square(10, 10, 8)
    target[object_mask] = 255
    ring = square(9, 9, 10) & ~object_mask
    output = target.copy()
    output[object_mask], output[ring] = GREY, 0
    output[7, 7] = 0                                       # two pixels diagonally off the object's corner
    comparison = metrics.TargetComparison()
    comparison.add_image(output, target, {0: object_mask}, {0: object_mask})
    scores = comparison.scores()
    assert scores["true_objects_target_psnr"] == pytest.approx(psnr_db((GREY / 255) ** 2 / (SIZE * SIZE)))
    assert scores["target_psnr"] < scores["true_objects_target_psnr"]
    assert metrics.off_objects_with_rims([object_mask], (SIZE, SIZE), rim=0).sum() == SIZE * SIZE - 64


def test_flat_background_floors_of_known_colours():
    dark, light = flat_image(40), flat_image(140)   # dataset mean 90: every pixel 50/255 away; own mean: exact
    everywhere = np.ones((SIZE, SIZE), dtype=bool)
    floors = metrics.flat_background_floors([dark, light], [everywhere, everywhere])
    assert floors["floor_dataset_colour"] == pytest.approx(psnr_db((50 / 255) ** 2))
    assert floors["floor_image_colour"] == math.inf


def make_labelled_dataset(root: Path) -> None:
    """Domains no classifier can confuse: A = dark noise with one disc mask, B = bright noise with one square."""
    rng = np.random.default_rng(0)
    for phase, count in (("train", 8), ("test", 3)):
        for letter in "AB":
            for index in range(count):
                low = 0 if letter == "A" else 190
                side = 8 + (3 * index) % 10
                top, left = (int(v) for v in rng.integers(0, SIZE - side, 2))
                mask = disc(top + side // 2, left + side // 2, side // 2) if letter == "A" else square(top, left, side)
                save_png(rng.integers(low, low + 66, (SIZE, SIZE, 3)).astype(np.uint8),
                         root / f"{phase}{letter}" / f"img{index}.png")
                save_png(mask, root / f"{phase}{letter}_seg" / f"img{index}_0.png")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    make_labelled_dataset(root)
    return root


@pytest.mark.parametrize("translated_from, expected", [("A", 0.0), ("B", 1.0)])
def test_domain_and_shape_scores_say_which_domain_the_results_look_like(labelled, tmp_path, translated_from,
                                                                        expected):
    """An unchanged input (still A) scores 0, results that are real B images and masks score 1."""
    page = make_results(labelled, tmp_path / "page", translated_from=translated_from)
    assert evaluate.main(["--results", str(page), "--dataroot", str(labelled), "--no_fid", "--classifier_size",
                          "32", "--classifier_steps", "40"]) == 0
    result = json.loads((page / "metrics.json").read_text())
    assert result["domain_classifier_val_accuracy"] == 1.0 and result["shape_classifier_val_accuracy"] == 1.0
    assert result["domain_score"] == expected, "share of translated images the image classifier calls B"
    assert result["shape_score"] == expected, "share of translated masks the mask classifier calls B"


def test_evaluate_results_api_with_stand_in_extractor(tmp_path):
    dataroot = tmp_path / "data"
    make_dataset(dataroot)
    scores = {}
    for translated_from in "AB":
        page = make_results(dataroot, tmp_path / f"page_{translated_from}", translated_from=translated_from)
        scores[translated_from] = evaluate.evaluate_results(
            page, dataroot, feature_extractor=ChannelStats(), domain_score=False, shape_score=False,
            kid_subset_size=2, log=lambda _: None)
    # FID compares the translated images with the real test B images: 0 for a perfect translation,
    # the FID of test A against test B for results that are the unchanged inputs
    assert scores["B"]["fid"] == pytest.approx(0.0, abs=1e-6)
    test_sets = [metrics.to_uint8_batch([metrics.read_rgb(path) for path in sorted((dataroot / f"test{d}").glob("*"))])
                 for d in "AB"]
    expected = metrics.fid_and_kid(*test_sets, ChannelStats(), kid_subset_size=2)["fid"]
    assert expected > 0.1 and scores["A"]["fid"] == pytest.approx(expected, rel=1e-9)
    identity = scores["A"]
    assert identity["mean_iou"] == 1.0 and identity["instance_count_kept"] == 1.0
    assert identity["background_l1"] == 0.0 and identity["domain_score"] is None


def test_wrong_ins_max_and_wrong_folder_are_clear_errors(tmp_path, capsys):
    dataroot, page = tmp_path / "data", tmp_path / "page"
    make_dataset(dataroot)
    make_results(dataroot, page)
    common = ["--dataroot", str(dataroot), "--no_fid", "--no_domain_score", "--no_shape_score"]
    assert evaluate.main(["--results", str(page), "--ins_max", "1", *common]) == 2
    assert "--ins_max" in capsys.readouterr().err
    assert evaluate.main(["--results", str(tmp_path), *common]) == 2
    assert "_fake_B_img.png" in capsys.readouterr().err


def test_evaluation_reads_files_as_training_does(tmp_path):
    """16-bit files are scaled, not clipped to white; a mask format training refuses is refused here too."""
    pixels = np.zeros((8, 8), dtype=np.uint16)
    pixels[2:5, 2:5] = 65535
    Image.fromarray(pixels).save(tmp_path / "mask16.png")
    assert metrics.read_mask(tmp_path / "mask16.png").sum() == 9
    Image.fromarray((pixels // 2).astype(np.uint16)).save(tmp_path / "image16.png")   # mid grey, not white
    assert metrics.read_rgb(tmp_path / "image16.png")[0, 0].tolist() == [0, 0, 0]
    assert metrics.read_rgb(tmp_path / "image16.png")[3, 3].tolist() == [127, 127, 127]   # 32767 of 65535
    Image.fromarray((pixels > 0).astype(np.uint8)).save(tmp_path / "mask01.png")     # 0/1: invisible instance
    with pytest.raises(DatasetError, match="mask01.png"):
        metrics.read_mask(tmp_path / "mask01.png")


def test_several_results_folders_print_mean_and_half_range(tmp_path, capsys):
    """One folder per seed: each gets its own metrics.json, and the table adds mean +- (max - min) / 2."""
    pages = []
    for seed, shift in ((0, 64), (1, 0)):   # seed 1's translation keeps img0's background exactly
        dataroot, page = make_hand_results(tmp_path / f"seed{seed}")
        if not shift:
            fake = np.asarray(Image.open(page / "images" / "img0_fake_B_img.png")).copy()
            fake[24:32, 0:8] = GREY
            save_png(fake, page / "images" / "img0_fake_B_img.png")
        pages.append(page)
    assert evaluate.main(["--results", *map(str, pages), "--dataroot", str(dataroot), "--no_fid",
                          "--no_domain_score", "--no_shape_score"]) == 0
    first, second = (json.loads((page / "metrics.json").read_text()) for page in pages)
    assert first["background_l1"] > 0 and second["background_l1"] == 0
    summary = evaluate.summarize_runs([first, second])
    assert summary["background_l1"]["mean"] == pytest.approx(first["background_l1"] / 2)
    assert summary["background_l1"]["spread"] == pytest.approx(first["background_l1"] / 2)
    assert summary["mean_iou"] == {"mean": first["mean_iou"], "spread": 0.0, "runs": 2}
    out = capsys.readouterr().out
    assert "mean +- spread (half the range) over 2 runs" in out
    assert f"{first['background_l1'] / 2:.4f} +- {first['background_l1'] / 2:.4f}" in out


def test_results_of_a_model_without_masks_need_only_the_results_folder(tmp_path):
    """CycleGAN's test run records ins_max as null; evaluate.py falls back to its default instead of failing."""
    from util.results_manifest import write_manifest

    dataroot, page = make_hand_results(tmp_path)
    for mask_file in (page / "images").glob("*_fake_B_seg_*.png"):
        mask_file.unlink()
    write_manifest(page, "cycle_gan", {"real_A_img": "image", "fake_B_img": "image"},
                   {"AtoB": {"input_image": "real_A_img", "output_image": "fake_B_img"}},
                   {"dataroot": str(dataroot), "phase": "test", "ins_max": None, "max_instances": 20})
    add_hand_targets(dataroot)
    assert evaluate.main(["--results", str(page), "--no_fid", "--no_domain_score", "--no_shape_score"]) == 0
    result = json.loads((page / "metrics.json").read_text())
    assert result["ins_max"] == evaluate.FALLBACK_OPTIONS["ins_max"]
    assert result["target_mask_iou"] is None and result["target_psnr"] > 0
