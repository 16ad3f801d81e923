"""The style-pair shapes dataset (--style): day (A) <-> night (B), objects kept, with ground truth."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.check import check_dataset
from datasets.make_shapes_dataset import ShapeObject, coverage, main, make_shapes_dataset
from datasets.shapes_style import (
    NIGHT_BACKGROUND_TINT,
    NIGHT_NOISE_STD,
    NIGHT_VALUE_SCALE,
    TARGET_STYLES,
    StyleOptions,
    hue_kept_colour,
    hue_kept_references,
    indexed_scene,
    make_style_shapes_dataset,
    night_colour,
    render,
    scene_rng,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = {"size": 32, "n_train": 6, "n_test": 3}
TINY_OPTIONS = StyleOptions(seed=2, **TINY)   # the fixture's
# folder -> (phase, domain, holds the targets)
FOLDERS = {"trainA": ("train", "A", False), "trainB": ("train", "B", False), "testA": ("test", "A", False),
           "testB": ("test", "B", False), "testA_target": ("test", "A", True), "testB_target": ("test", "B", True)}


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(float)


def erode(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood lies in the mask: the interior, away from the anti-aliased rim."""
    padded = np.pad(mask, 1)
    inner = np.ones_like(mask)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            inner &= padded[dy:dy + mask.shape[0], dx:dx + mask.shape[1]]
    return inner


def object_masks(root: Path, record: dict) -> list[np.ndarray]:
    return [read(root / obj["mask"]) == 255 for obj in record["objects"]]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("style") / "shapes_style"
    summary = make_style_shapes_dataset(root, seed=2, **TINY)
    return root, summary, json.loads((root / "shapes_meta.json").read_text())


def test_same_options_give_identical_files_for_any_worker_count(tmp_path, dataset):
    make_style_shapes_dataset(tmp_path / "serial", seed=2, **TINY)
    make_style_shapes_dataset(tmp_path / "parallel", seed=2, workers=2, **TINY)
    reference = all_files(dataset[0])
    assert all_files(tmp_path / "serial") == reference
    assert all_files(tmp_path / "parallel") == reference
    make_style_shapes_dataset(tmp_path / "other_seed", seed=3, **TINY)
    assert (tmp_path / "other_seed" / "trainB" / "00000.png").read_bytes() != reference["trainB/00000.png"]


def test_layout_is_the_unpaired_one_with_masks_named_after_their_images(dataset):
    root, _, meta = dataset
    for folder, (phase, domain, targets) in FOLDERS.items():
        images = sorted(p.stem for p in (root / folder).iterdir())
        assert images == [f"{i:05d}" for i in range(TINY[f"n_{phase}"])]
        records = meta["phases"][phase][domain]
        if targets:
            records = [r["target"] for r in records]
        expected = {obj["mask"] for r in records for obj in r["objects"]}
        assert expected == {f"{folder}_seg/{p.name}" for p in (root / f"{folder}_seg").iterdir()}
        for name, record in zip(images, records):
            assert record["image"] == f"{folder}/{name}.png"
            assert [obj["mask"] for obj in record["objects"]] == \
                [f"{folder}_seg/{name}_{k}.png" for k in range(len(record["objects"]))]
            for obj in record["objects"]:
                with Image.open(root / obj["mask"]) as mask:
                    assert mask.mode == "L" and set(np.unique(np.asarray(mask))) <= {0, 255}
    report = check_dataset(root, phases=("train", "test"))
    assert report.ok, report.findings  # what train.py checks before reading it


def test_both_kinds_occur_in_each_domain_and_the_meta_kind_is_the_drawn_one(dataset):
    root, summary, meta = dataset
    for domain in "AB":
        for kind in ("ellipse", "rectangle"):
            assert sum(summary["kinds"][phase][domain][kind] for phase in ("train", "test")) > 0, (domain, kind)
        for record in meta["phases"]["train"][domain]:
            for obj, mask in zip(record["objects"], object_masks(root, record)):
                drawn = {kind: coverage(ShapeObject(kind, tuple(obj["center"]), tuple(obj["size"]), obj["angle"]),
                                        TINY["size"]) >= 0.5 for kind in ("ellipse", "rectangle")}
                mismatch = {kind: (shape != mask).sum() for kind, shape in drawn.items()}
                assert mismatch[obj["kind"]] == min(mismatch.values()) and mismatch[obj["kind"]] <= 2, obj


def test_night_images_are_darker_than_day_images(dataset):
    root, _, _ = dataset

    def luminance(folder: str) -> list[float]:
        return [float((read(p) @ [0.299, 0.587, 0.114]).mean()) for p in (root / folder).iterdir()]

    for phase in ("train", "test"):
        assert max(luminance(f"{phase}B")) < 0.5 * min(luminance(f"{phase}A"))
    assert max(luminance("testA_target")) < 0.5 * min(luminance("testB_target"))


def test_target_masks_equal_the_input_masks(dataset):
    root, _, _ = dataset
    for domain in "AB":
        inputs = all_files(root / f"test{domain}_seg")
        assert inputs and all_files(root / f"test{domain}_target_seg") == inputs


def test_objects_are_flat_in_their_recorded_colour_and_the_night_target_maps_it(dataset):
    root, _, meta = dataset
    checked = 0
    for domain in "AB":
        for record in meta["phases"]["test"][domain]:
            image, target = read(root / record["image"]), read(root / record["target"]["image"])
            for obj, tobj, mask in zip(record["objects"], record["target"]["objects"], object_masks(root, record)):
                inner = erode(mask)
                assert np.abs(image[inner] - obj["color"]).max() <= 0.5  # flat, noise-free, the meta colour
                assert np.abs(target[inner] - tobj["color"]).max() <= 0.5
                if domain == "A":  # the night colour of the recorded day colour
                    expected = night_colour(np.array(obj["color"]) / 255) * 255
                    assert np.abs(target[inner] - expected).max() <= 0.5 + 1e-6
                assert tobj["kind"] == obj["kind"] and tobj["center"] == obj["center"]
                checked += inner.any()
    assert checked >= 6


def test_night_background_is_the_tinted_day_background_plus_noise(dataset):
    root, _, meta = dataset
    residuals = []
    for domain in "AB":
        for record in meta["phases"]["test"][domain]:
            image, target = read(root / record["image"]) / 255, read(root / record["target"]["image"]) / 255
            day, night = (image, target) if domain == "A" else (target, image)
            off = ~erode(~np.any(object_masks(root, record), axis=0))  # the objects grown by their rim
            residuals.append((night - day * NIGHT_BACKGROUND_TINT)[~off])
    noise = np.concatenate(residuals)
    assert abs(noise.mean()) < 0.005 and abs(noise.std() - NIGHT_NOISE_STD) < 0.005


def test_command_line_writes_the_style_dataset(tmp_path):
    out = tmp_path / "d"
    result = subprocess.run([sys.executable, "-m", "datasets.make_shapes_dataset", "--style", "--out", str(out),
                             "--size", "32", "--n_train", "4", "--n_test", "2"],
                            check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "style-pair shapes dataset" in result.stdout
    assert (out / "trainB" / "00003.png").is_file() and (out / "testA_target" / "00001.png").is_file()
    assert "--style --out <this folder> --size 32 --n_train 4 --n_test 2" in (out / "README.md").read_text()


def test_bad_options_and_another_dataset_give_a_one_line_error(tmp_path, capsys):
    assert main(["--style", "--out", str(tmp_path / "d"), "--size", "8"]) == 2
    error = capsys.readouterr().err
    assert "--size" in error and error.count("\n") == 1
    assert not (tmp_path / "d").exists()
    unpaired = tmp_path / "unpaired"
    make_shapes_dataset(unpaired, size=32, n_train=1, n_test=1)
    before = all_files(unpaired)
    assert main(["--style", "--out", str(unpaired), "--size", "32", "--n_train", "1", "--n_test", "1"]) == 2
    assert "--force" in capsys.readouterr().err
    assert all_files(unpaired) == before


def test_kind_skew_makes_training_kinds_domain_typical_and_keeps_the_test_split_even(tmp_path):
    skewed = make_style_shapes_dataset(tmp_path / "skewed", seed=2, size=32, n_train=60, n_test=60, kind_skew=0.9)
    train, test = skewed["kinds"]["train"], skewed["kinds"]["test"]
    for domain, common in (("A", "ellipse"), ("B", "rectangle")):
        assert train[domain][common] / sum(train[domain].values()) > 0.8, (domain, train[domain])
        assert 0.3 < test[domain][common] / sum(test[domain].values()) < 0.7, (domain, test[domain])
    meta = json.loads((tmp_path / "skewed" / "shapes_meta.json").read_text())
    assert meta["options"]["kind_skew"] == 0.9
    assert "--kind_skew 0.9" in (tmp_path / "skewed" / "README.md").read_text()
    balanced = make_style_shapes_dataset(tmp_path / "balanced", seed=2, size=32, n_train=60, n_test=60)
    options = json.loads((tmp_path / "balanced" / "shapes_meta.json").read_text())["options"]
    assert "kind_skew" not in options and "night_hue_shift" not in options   # defaults: the meta of earlier versions
    assert balanced["kinds"]["test"] == test  # the test split does not depend on the skew


def test_kind_skew_outside_style_or_outside_0_1_is_a_one_line_error(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "plain"), "--kind_skew", "0.9"]) == 2
    assert "--kind_skew applies to --style only" in capsys.readouterr().err
    assert main(["--style", "--out", str(tmp_path / "d"), "--size", "32", "--kind_skew", "1.5"]) == 2
    error = capsys.readouterr().err
    assert "--kind_skew 1.5" in error and error.count("\n") == 1
    assert not (tmp_path / "plain").exists() and not (tmp_path / "d").exists()


def test_night_hue_shift_0_keeps_the_hue_so_the_hue_kept_reference_is_the_ground_truth(tmp_path, capsys):
    out = tmp_path / "hue0"
    assert main(["--style", "--night_hue_shift", "0", "--out", str(out), "--seed", "2", "--size", "32",
                 "--n_train", "6", "--n_test", "3"]) == 0
    meta = json.loads((out / "shapes_meta.json").read_text())
    assert meta["options"]["night_hue_shift"] == 0 and meta["rules"]["night_hue_shift_deg"] == 0
    assert "--night_hue_shift 0" in (out / "README.md").read_text()
    for record in meta["phases"]["test"]["A"]:    # night targets: the day colours darkened, hue kept
        for day, night in zip(record["objects"], record["target"]["objects"], strict=True):
            np.testing.assert_allclose(night["color"], np.round(NIGHT_VALUE_SCALE * np.array(day["color"])), atol=1)
    assert all(value == float("inf") for domain in "AB" for value in hue_kept_references(out, domain).values())
    capsys.readouterr()
    assert main(["--out", str(tmp_path / "plain"), "--night_hue_shift", "0"]) == 2
    assert "--night_hue_shift applies to --style only" in capsys.readouterr().err
    assert main(["--style", "--out", str(tmp_path / "bad"), "--size", "32", "--night_hue_shift", "360"]) == 2
    error = capsys.readouterr().err
    assert "--night_hue_shift 360" in error and "0 to below 360" in error and not (tmp_path / "bad").exists()


def test_hue_kept_reference_is_the_target_with_only_its_objects_recoloured(dataset, tmp_path):
    """The benchmark's reference for a translator that cannot know the hue turn: exact off the objects, and each
    object in its input's hue (night: the day colour darkened; day: the night colour brightened)."""
    root, _, meta = dataset
    for domain in "AB":
        record = meta["phases"]["test"][domain][0]
        index = int(record["name"])
        scene, _ = indexed_scene(TINY_OPTIONS, "test", domain, index)
        style = TARGET_STYLES[domain]
        target = read(root / record["target"]["image"])
        noise = [scene_rng(2, "test", domain, index, target=True) for _ in range(2)]   # one generator per drawing
        assert np.array_equal(render(scene, style, noise[0]), target)        # the re-rendered ground truth
        kept = render(scene, style, noise[1], hue_kept_colour).astype(float)
        on_objects = np.any([item.cover > 0 for item in scene.objects], axis=0)
        assert np.array_equal(kept[~on_objects], target[~on_objects])
        assert np.abs(kept - target)[on_objects].max() > 20                   # the hue turn is missing there
        for item in scene.objects:   # the input's hue: its own colour darkened, or brightened back by the value rule
            shown = item.day_colour if domain == "A" else night_colour(item.day_colour)
            scale = NIGHT_VALUE_SCALE if domain == "A" else 1 / NIGHT_VALUE_SCALE
            np.testing.assert_allclose(hue_kept_colour(item, style), scale * shown, atol=1e-9)
        references = hue_kept_references(root, domain)
        assert 0 < references["object_psnr"] < references["target_psnr"] < float("inf")
    make_shapes_dataset(tmp_path / "plain", seed=0, **TINY)
    assert hue_kept_references(tmp_path / "plain", "A") is None   # no style ground truth, no reference
