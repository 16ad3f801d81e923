"""evaluate.py on paired (label map -> image) results: PSNR/SSIM, segmentation mIoU beside the oracle with the
cached segmenter (util/segmenter.py), the gradient on touching same-class boundaries and the style spread
(util/paired_metrics.py)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import evaluate
from util import paired_metrics as pm
from util import segmenter as sg
from util.results_manifest import write_manifest

SIZE = 32
ROOT = Path(__file__).resolve().parents[1]
BACKGROUND, ELLIPSE, RECTANGLE = (200, 200, 200), (220, 30, 30), (30, 30, 220)   # colours of labels 0, 1, 2
SEG_ARGS = ["--segmenter_size", "16", "--segmenter_steps", "60", "--no_fid"]


def save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def scene(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label ids, instance ids, image): a disc (label 1) and two rectangles (label 2) that touch when
    ``index`` is even (a boundary only the instance map shows), with a gap otherwise."""
    labels, inst = np.zeros((SIZE, SIZE), np.uint8), np.zeros((SIZE, SIZE), np.uint8)
    rows, cols = np.mgrid[:SIZE, :SIZE]
    shift = index % 3
    disc = (rows - 8 - shift) ** 2 + (cols - 8) ** 2 <= 25
    labels[disc], inst[disc] = 1, 1
    gap = 0 if index % 2 == 0 else 2
    labels[18:28, 4 + shift:12 + shift], inst[18:28, 4 + shift:12 + shift] = 2, 2
    labels[18:28, 12 + shift + gap:20 + shift + gap], inst[18:28, 12 + shift + gap:20 + shift + gap] = 2, 3
    image = np.empty((SIZE, SIZE, 3), np.uint8)
    for label, colour in enumerate((BACKGROUND, ELLIPSE, RECTANGLE)):
        image[labels == label] = colour
    return labels, inst, image


def make_dataroot(root: Path, n_train: int = 8, n_test: int = 4) -> Path:
    for phase, count in (("train", n_train), ("test", n_test)):
        for index in range(count):
            labels, inst, image = scene(index + (100 if phase == "train" else 0))
            save(labels, root / f"{phase}_label" / f"s{index}.png")
            save(inst, root / f"{phase}_inst" / f"s{index}.png")
            save(image, root / f"{phase}_img" / f"s{index}.png")
    return root


def make_page(page: Path, dataroot: Path, fake_of=None, styles: int = 1) -> Path:
    """A results folder as test.py writes it for pix2pixhd; ``fake_of(stem, real)`` gives the synthesised image
    (default: the real image itself); style k > 0 is ``fake_of`` of the stem with ``_style<k>``."""
    images = page / "images"
    for path in sorted((dataroot / "test_img").glob("*.png")):
        real = np.asarray(Image.open(path).convert("RGB"))
        labels = np.asarray(Image.open(dataroot / "test_label" / path.name))
        save(labels * 100, images / f"{path.stem}_real_A.png")
        save(real, images / f"{path.stem}_real_B.png")
        save(fake_of(path.stem, real) if fake_of else real, images / f"{path.stem}_fake_B.png")
        for k in range(1, styles):
            save(fake_of(f"{path.stem}_style{k}", real) if fake_of else real, images / f"{path.stem}_fake_B_style{k}.png")
    visuals = {"real_A": "image", "fake_B": "image", **{f"fake_B_style{k}": "image" for k in range(1, styles)},
               "real_B": "image"}
    write_manifest(page, "pix2pixhd", visuals,
                   {"AtoB": {"input_image": "real_A", "output_image": "fake_B", "target_image": "real_B"}},
                   {"dataroot": str(dataroot), "phase": "test", "ins_max": None, "max_instances": 20,
                    "directions": ["AtoB"]})
    return page


def run(page: Path, *extra: str) -> dict:
    assert evaluate.main(["--results", str(page), *extra]) == 0
    return json.loads((page / "metrics.json").read_text())


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory) -> Path:
    return make_dataroot(tmp_path_factory.mktemp("paired"))


# ---------------------------------------------------------------------------------------------- evaluate.py
def test_fake_equal_to_real_gives_perfect_scores_and_the_oracle_miou(dataroot, tmp_path, capsys):
    result = run(make_page(tmp_path / "page", dataroot), *SEG_ARGS, "--label_nc", "3")
    assert result["paired"] is True and result["num_images"] == 4
    assert result["psnr"] == math.inf and result["ssim"] == pytest.approx(1.0)
    assert result["oracle_miou"] > 0.8, "the segmenter must learn the three colours of this data"
    assert result["segmentation_miou"] == result["oracle_miou"] and result["miou_ratio"] == 1.0
    assert result["segmentation_pixel_accuracy"] == result["oracle_pixel_accuracy"]
    assert len(result["segmentation_class_iou"]) == 3 and result["label_nc_from"] == "--label_nc"
    out = capsys.readouterr().out
    assert "segmentation mIoU vs label maps, synthesised images" in out and "oracle: the real images" in out
    assert "background PSNR" not in out, "the unpaired rows are not printed for paired results"


def test_painting_the_wrong_class_lowers_the_miou(dataroot, tmp_path):
    def rectangles_as_ellipses(stem, real):
        fake = real.copy()
        fake[(real == RECTANGLE).all(-1)] = ELLIPSE
        return fake

    result = run(make_page(tmp_path / "page", dataroot, rectangles_as_ellipses), *SEG_ARGS, "--label_nc", "3")
    assert result["segmentation_miou"] < result["oracle_miou"] - 0.3
    assert result["miou_ratio"] < 0.7 and result["psnr"] < 20


def test_segmenter_is_cached_and_retrained_when_the_training_files_change(tmp_path):
    root = make_dataroot(tmp_path / "data", n_train=4, n_test=1)
    settings = sg.SegmenterSettings(size=16, steps=3, batch_size=4)
    first = sg.load_or_train(root, 3, settings, log=lambda _: None)[1]
    cache = root / ".cache" / sg.CACHE_NAME
    stamp = cache.stat().st_mtime_ns
    second = sg.load_or_train(root, 3, settings, log=lambda _: None)[1]
    assert first.trained and not second.trained and cache.stat().st_mtime_ns == stamp
    labels, _, image = scene(7)
    save(image, root / "train_img" / "s4.png")
    save(labels, root / "train_label" / "s4.png")
    third = sg.load_or_train(root, 3, settings, log=lambda _: None)[1]
    assert third.trained and third.train_images == 5
    assert sg.load_or_train(root, 3, sg.SegmenterSettings(size=16, steps=4, batch_size=4),
                            log=lambda _: None)[1].trained, "other settings retrain"


def test_evaluate_reports_whether_the_segmenter_was_trained_now(dataroot, tmp_path):
    page = make_page(tmp_path / "page", dataroot)
    run(page, *SEG_ARGS, "--label_nc", "3")
    assert run(page, *SEG_ARGS, "--label_nc", "3")["segmenter_trained_now"] is False
    assert run(page, *SEG_ARGS, "--label_nc", "3", "--retrain_segmenter")["segmenter_trained_now"] is True


def test_a_users_segmenter_file_is_used_as_it_is(dataroot, tmp_path):
    net = sg.SegmenterNet(3, width=4)
    torch.save(net.state_dict(), tmp_path / "mine.pt")
    result = run(make_page(tmp_path / "page", dataroot), "--segmenter", str(tmp_path / "mine.pt"), "--no_fid",
                 "--label_nc", "3")
    assert result["segmenter"] == str(tmp_path / "mine.pt") and result["segmenter_trained_now"] is False
    wrong = run(make_page(tmp_path / "page", dataroot), "--segmenter", str(tmp_path / "mine.pt"), "--no_fid",
                "--label_nc", "5")
    assert wrong["segmentation_miou"] is None and "predicts 3 classes" in wrong["skipped"]["segmentation"]


def test_a_drawn_edge_on_the_touching_boundary_raises_its_gradient(dataroot, tmp_path):
    def with_edge(stem, real):
        labels = np.asarray(Image.open(dataroot / "test_label" / f"{stem}.png"))
        inst = np.asarray(Image.open(dataroot / "test_inst" / f"{stem}.png")).astype(np.int64)
        fake = real.copy()
        fake[pm.touching_boundary(labels, inst)] = 0
        return fake

    plain = run(make_page(tmp_path / "plain", dataroot), "--no_segmentation", "--no_fid")
    edged = run(make_page(tmp_path / "edged", dataroot, with_edge), "--no_segmentation", "--no_fid")
    # scenes 0 and 2 touch: one 10-pixel column on each side of the shared edge, 20 pixels per image
    assert plain["touching_boundary_images"] == 2 and plain["touching_boundary_pixels"] == 40
    assert [image["touching_boundary_pixels"] for image in edged["per_image"]] == [20, 0, 20, 0]
    assert plain["touching_boundary_gradient"] == plain["touching_boundary_gradient_real"]   # fake = real
    assert plain["touching_boundary_gradient"] < 0.1, "one colour across the boundary (the ends see the background)"
    assert edged["touching_boundary_gradient"] > plain["touching_boundary_gradient"] + 0.2
    assert edged["touching_boundary_gradient_real"] == plain["touching_boundary_gradient_real"]


def test_touching_boundary_pixels_and_gradient_scale():
    labels, inst = np.zeros((8, 8), np.int64), np.zeros((8, 8), np.int64)
    labels[2:6, 1:7] = 2
    inst[2:6, 1:4], inst[2:6, 4:7] = 5, 6
    boundary = pm.touching_boundary(labels, inst)
    assert boundary.sum() == 8 and boundary[2:6, 3:5].all()
    labels[2:6, 4:7] = 1                                      # other classes touching: not counted
    assert not pm.touching_boundary(labels, inst).any()
    step = np.zeros((8, 8, 3), np.uint8)
    step[:, 4:] = 255
    assert pm.gradient_magnitude(step)[4, 3:5] == pytest.approx([1.0, 1.0])   # a sharp unit step reads 1 on both sides


def test_three_coloured_styles_count_three_and_identical_styles_one(dataroot, tmp_path):
    palette = {"": (220, 30, 30), "_style1": (30, 220, 30), "_style2": (30, 30, 220)}

    def recolour(stem, real):
        style = stem.partition("_")[2]
        fake = real.copy()
        fake[(real != BACKGROUND).any(-1)] = palette[f"_{style}" if style else ""]
        return fake

    coloured = run(make_page(tmp_path / "coloured", dataroot, recolour, styles=3), "--no_segmentation", "--no_fid")
    assert coloured["style_count"] == 3 and coloured["style_inputs"] == 4
    assert coloured["style_distinct_mean"] == 3 and coloured["style_distinct_min"] == 3
    assert coloured["style_colour_distance"] == pytest.approx(2 * 190 / 255 / 3)   # two channels differ by 190
    same = run(make_page(tmp_path / "same", dataroot, styles=3), "--no_segmentation", "--no_fid")
    assert same["style_distinct_mean"] == 1 and same["style_colour_distance"] == 0.0
    assert "styles" not in same["skipped"]


def test_distinct_styles_threshold_is_greedy():
    distances = np.array([[0, 0.05, 0.3], [0.05, 0, 0.3], [0.3, 0.3, 0]])
    assert pm.distinct_styles(distances) == 2 and pm.distinct_styles(distances, threshold=0.01) == 3


def test_missing_pieces_are_skipped_saying_why(dataroot, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))   # no Inception weights: FID is skipped
    result = run(make_page(tmp_path / "page", dataroot), "--no_segmentation")
    assert "no <stem>_fake_B_style<k>.png" in result["skipped"]["styles"] and result["style_count"] is None
    assert "--no_segmentation" in result["skipped"]["segmentation"]
    assert "fid" in result["skipped"] and result["fid"] is None
    bare = tmp_path / "bare"
    (bare / "test_img").mkdir(parents=True)
    for path in (dataroot / "test_img").glob("*.png"):
        (bare / "test_img" / path.name).write_bytes(path.read_bytes())
    page = make_page(tmp_path / "bare_page", dataroot, styles=2)
    result = run(page, "--dataroot", str(bare), "--no_fid")
    assert "test_label" in result["skipped"]["segmentation"] and result["segmentation_miou"] is None
    assert "test_label" in result["skipped"]["touching_boundary"] and result["touching_boundary_gradient"] is None
    assert "test_inst" in result["skipped"]["styles"] and result["psnr"] == math.inf
    err = capsys.readouterr().err
    assert "segmentation skipped" in err and "style metrics skipped" in err


def test_several_paired_folders_print_mean_and_spread(dataroot, tmp_path, capsys):
    def darker(stem, real):
        return (real * 0.9).astype(np.uint8)

    pages = [make_page(tmp_path / "exact", dataroot), make_page(tmp_path / "darker", dataroot, darker)]
    assert evaluate.main(["--results", *map(str, pages), "--no_segmentation", "--no_fid"]) == 0
    runs = [json.loads((page / "metrics.json").read_text()) for page in pages]
    summary = evaluate.summarize_runs(runs)
    assert summary["ssim"]["mean"] == pytest.approx((1 + runs[1]["ssim"]) / 2)
    assert summary["ssim"]["spread"] == pytest.approx((1 - runs[1]["ssim"]) / 2)
    assert "touching_boundary_gradient" in summary and "background_l1" not in summary
    out = capsys.readouterr().out
    assert "mean +- spread (half the range) over 2 runs" in out and "SSIM vs the real image" in out


def test_unpaired_tables_are_unchanged():
    assert evaluate.table_rows([{}]) == evaluate.TABLE_ROWS
    assert evaluate.table_rows([{"paired": True}]) == evaluate.PAIRED_TABLE_ROWS


# ---------------------------------------------------------------------------------------------- end to end
def test_train_test_evaluate_pix2pixhd_end_to_end(tmp_path):
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home"), "OMP_NUM_THREADS": "1"}

    def python(*args: str) -> None:
        done = subprocess.run([sys.executable, *args], check=False, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    data, checkpoints, results = tmp_path / "data", tmp_path / "checkpoints", tmp_path / "results"
    python("-m", "datasets.make_shapes_dataset", "--paired", "--out", str(data), "--size", "32", "--n_train", "6",
           "--n_test", "4")
    python("train.py", "--model", "pix2pixhd", "--dataroot", str(data), "--label_nc", "3", "--name", "hd",
           "--checkpoints_dir", str(checkpoints), "--load_size", "32", "--crop_size", "32", "--ngf", "4", "--ndf", "4",
           "--n_layers_D", "2", "--n_downsample_global", "2", "--n_blocks_global", "1", "--max_steps", "3",
           "--batch_size", "2", "--display_id", "0", "--num_threads", "0", "--gpu_ids", "-1")
    python("test.py", "--name", "hd", "--checkpoints_dir", str(checkpoints), "--results_dir", str(results),
           "--gpu_ids", "-1")
    page = results / "hd" / "test_latest"
    python("evaluate.py", "--results", str(page), "--checkpoints_dir", str(checkpoints), "--segmenter_size", "16",
           "--segmenter_steps", "5")
    result = json.loads((page / "metrics.json").read_text())
    assert result["paired"] is True and result["num_images"] == 4
    assert result["label_nc"] == 3 and result["label_nc_from"].endswith("train_opt.json")
    assert 0 < result["psnr"] < math.inf and -1 <= result["ssim"] <= 1
    assert 0 <= result["segmentation_miou"] <= 1 and 0 <= result["oracle_miou"] <= 1
    assert (data / ".cache" / sg.CACHE_NAME).is_file() and result["segmenter_trained_now"] is True
    assert result["touching_boundary_gradient"] is not None or "touching" in result["skipped"]["touching_boundary"]
    assert "no <stem>_fake_B_style<k>.png" in result["skipped"]["styles"] and "fid" in result["skipped"]
