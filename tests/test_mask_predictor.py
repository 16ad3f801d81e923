"""The mask predictor: its training targets, how maps become instances, what it learns on tiny data, the
predict_masks tool and test.py --predict_masks, with the errors a user can act on."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train
from datasets.make_shapes_dataset import make_shapes_dataset
from evaluate import as_true_objects
from models.mask_predictor_model import touching_boundary, weighted_bce
from scripts.predict_masks import score_mask_folders
from util.fileio import atomic_folder
from util.instances import InstanceScores, degrade_masks, split_instances, touching_pairs

ROOT = Path(__file__).resolve().parents[1]
PREDICTOR = "--model mask_predictor --ngf 8 --load_size 32 --crop_size 32 --gpu_ids -1 --display_id 0 --num_threads 0"


def box(top: int, left: int, height: int, width: int, size: int = 32) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top:top + height, left:left + width] = True
    return mask


# ------------------------------------------------------------------------ targets and splitting
def test_touching_boundary_marks_only_pixels_next_to_another_instance():
    left, right, alone = box(4, 4, 8, 6), box(4, 10, 8, 6), box(20, 20, 6, 6)   # left and right touch
    masks = torch.from_numpy(np.stack([left, right, alone]))[None]
    boundary = touching_boundary(masks, width=1)[0, 0].numpy()
    assert set(np.unique(np.nonzero(boundary)[1])) == {9, 10}         # the two columns along the contact
    assert not boundary[alone].any()
    wider = touching_boundary(masks, width=2)[0, 0].numpy()
    assert set(np.unique(np.nonzero(wider)[1])) == {8, 9, 10, 11}


def test_the_training_targets_give_back_touching_instances_exactly():
    """Foreground + touching boundary, split as at test time, recover two touching objects and a lone one."""
    left, right, alone = box(4, 4, 8, 6), box(4, 10, 8, 6), box(20, 20, 6, 6)
    masks = torch.from_numpy(np.stack([left, right, alone]))[None]
    boundary = touching_boundary(masks, width=1)[0, 0].numpy()
    found = split_instances(left | right | alone, boundary)
    assert len(found) == 3
    assert all(any(np.array_equal(f, t) for f in found) for t in (left, right, alone))
    assert len(split_instances(left | right | alone, np.zeros_like(boundary))) == 2   # no boundary: merged


def test_split_drops_specks_and_orders_by_area():
    big, small, speck = box(2, 2, 10, 10), box(20, 2, 4, 4), box(28, 28, 2, 2)
    found = split_instances(big | small | speck, np.zeros((32, 32), bool), min_area=8)
    assert [int(m.sum()) for m in found] == [100, 16]


def test_weighted_bce_is_the_cross_entropy_of_probabilities_in_minus_one_one():
    prediction = torch.tensor([0.0, 0.6, -0.6])
    target = torch.tensor([1.0, 1.0, 0.0])
    p = (prediction + 1) / 2
    expected = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    assert torch.allclose(weighted_bce(prediction, target), expected)
    assert weighted_bce(prediction, target, 5.0) > weighted_bce(prediction, target)


# ---------------------------------------------------------------------------------- scores
def test_instance_scores_count_misses_extras_and_touching_objects():
    a, b, c = box(4, 4, 8, 6), box(4, 10, 8, 6), box(20, 20, 6, 6)
    scores = InstanceScores()
    scores.add_image([a, b, c], [a, b, c])          # perfect
    scores.add_image([a | b, c], [a, b, c])         # the touching pair merged: one of them missed
    summary = scores.summary()
    assert summary["count_right"] == 0.5
    assert summary["touching_instances"] == 4
    assert summary["touching_iou"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert summary["mean_iou"] == pytest.approx((3 + 0.5 + 0 + 1) / 6)
    assert touching_pairs([a, b, c]) == {0, 1}


def test_degraded_masks():
    mask = box(10, 10, 6, 6)
    assert degrade_masks([mask], "dilate", 1)[0].sum() == 36 + 4 * 6
    assert degrade_masks([mask], "erode", 1)[0].sum() == 16
    assert degrade_masks([mask], "erode", 4) == []                     # vanished: dropped
    kept = degrade_masks([mask, box(0, 0, 2, 2)], "drop")
    assert len(kept) == 1 and np.array_equal(kept[0], mask)
    assert len(degrade_masks([mask], "drop")) == 1                     # a lone instance stays


def test_evaluation_judges_the_true_objects_whatever_masks_the_model_was_given():
    a, b, c = box(2, 2, 8, 8), box(14, 14, 6, 6), box(24, 2, 4, 4)
    true = {0: a, 1: b, 2: c}
    outputs = {5: box(2, 2, 8, 9), 7: box(14, 14, 6, 7)}
    # given masks numbered otherwise (a predictor's), one slightly off: renumbered as the true objects
    kept, renumbered = as_true_objects({5: a, 7: b | box(13, 14, 1, 6)}, outputs, true, ins_max=2)
    assert list(kept) == [0, 1] and np.array_equal(kept[1], b)
    assert set(renumbered) == {0, 1} and np.array_equal(renumbered[0], outputs[5])
    # a true object whose mask was dropped is still one the model should have translated, without output
    kept, renumbered = as_true_objects({5: a}, {5: outputs[5]}, true, ins_max=2)
    assert list(kept) == [0, 1] and list(renumbered) == [0]


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "masks"
    with pytest.raises(RuntimeError), atomic_folder(out) as temp:
        (temp / "a.png").write_bytes(b"x")
        raise RuntimeError("interrupted")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic_folder(out) as temp:
        (temp / "a.png").write_bytes(b"x")
    with pytest.raises(FileExistsError), atomic_folder(out):
        pass
    with atomic_folder(out, replace=True) as temp:
        (temp / "b.png").write_bytes(b"y")
    assert [p.name for p in tmp_path.iterdir()] == ["masks"]
    assert [p.name for p in out.iterdir()] == ["b.png"]


# ------------------------------------------------------------------------------- end to end
def write_square_scenes(root: Path, folder: str, count: int, seed: int) -> None:
    """Dark noisy background with one or two bright squares that never touch; masks in ``<folder>_seg``."""
    rng = np.random.default_rng(seed)
    (root / folder).mkdir(parents=True)
    (root / f"{folder}_seg").mkdir()
    for index in range(count):
        image = rng.integers(20, 60, (32, 32, 3)).astype(np.uint8)
        squares = [box(3, 3, 9, 9), box(18, 17, 10, 10)][: 1 + index % 2]
        for k, mask in enumerate(squares):
            image[mask] = (220, 200, 40)
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / f"{folder}_seg" / f"{index}_{k}.png")
        Image.fromarray(image).save(root / folder / f"{index}.png")


@pytest.fixture(scope="module")
def trained_predictor(tmp_path_factory):
    root = tmp_path_factory.mktemp("squares")
    write_square_scenes(root, "trainA", 32, seed=0)
    write_square_scenes(root, "testA", 6, seed=1)
    checkpoints = root / "checkpoints"
    argv = (f"--dataroot {root} --checkpoints_dir {checkpoints} --name squares {PREDICTOR} --max_steps 150 --seed 0 "
            f"--lr 0.001 --save_epoch_freq 1000 --print_freq 10000")
    assert train.main(argv.split()) == 0
    return root, checkpoints


def predict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.predict_masks", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


def test_predictor_learns_the_instances_and_predict_masks_writes_them(trained_predictor, tmp_path):
    root, checkpoints = trained_predictor
    out = tmp_path / "testA_seg"
    done = predict("--name", "squares", "--checkpoints_dir", str(checkpoints), "--images", str(root / "testA"),
                   "--out", str(out), "--truth", str(root / "testA_seg"), "--json", str(tmp_path / "s.json"))
    assert done.returncode == 0, done.stderr
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["count_right"] == 1.0 and scores["mean_iou"] > 0.9
    assert sorted(p.name for p in out.iterdir())[:3] == ["0_0.png", "1_0.png", "1_1.png"]
    with Image.open(out / "1_0.png") as mask:
        assert set(np.unique(np.asarray(mask))) == {0, 255} and np.asarray(mask).sum() // 255 > 90  # largest first


def test_predict_masks_resizes_other_sizes_and_says_so(trained_predictor, tmp_path):
    root, checkpoints = trained_predictor
    images = tmp_path / "big"
    images.mkdir()
    with Image.open(root / "testA" / "1.png") as image:
        image.resize((64, 64), Image.NEAREST).save(images / "1.png")
    done = predict("--name", "squares", "--checkpoints_dir", str(checkpoints), "--images", str(images),
                   "--out", str(tmp_path / "big_seg"))
    assert done.returncode == 0, done.stderr
    assert "resized" in done.stdout and "32x32" in done.stdout
    with Image.open(tmp_path / "big_seg" / "1_0.png") as mask:
        assert mask.size == (64, 64)


def test_predict_masks_errors_name_the_problem_and_write_nothing(trained_predictor, tmp_path):
    root, checkpoints = trained_predictor
    empty = tmp_path / "empty"
    empty.mkdir()
    common = ["--checkpoints_dir", str(checkpoints), "--out", str(tmp_path / "out")]
    done = predict("--name", "squares", "--images", str(empty), *common)
    assert done.returncode == 2 and str(empty) in done.stderr and "images" in done.stderr
    other = checkpoints / "not_a_predictor"
    other.mkdir()
    (other / "train_opt.json").write_text(json.dumps({"model": "cycle_gan"}))
    done = predict("--name", "not_a_predictor", "--images", str(root / "testA"), *common)
    assert done.returncode == 2 and "cycle_gan run, not a mask predictor" in done.stderr
    done = predict("--name", "missing", "--images", str(root / "testA"), *common)
    assert done.returncode == 2 and "--model mask_predictor" in done.stderr
    (tmp_path / "out").mkdir()
    done = predict("--name", "squares", "--images", str(root / "testA"), *common)
    assert done.returncode == 2 and "--overwrite" in done.stderr
    assert not any((tmp_path / "out").iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary left


def test_scores_of_a_folder_against_itself_are_perfect(trained_predictor):
    root, _ = trained_predictor
    scores = score_mask_folders(root / "testA_seg", root / "testA_seg", root / "testA")
    assert scores["mean_iou"] == 1.0 and scores["count_right"] == 1.0 and scores["images"] == 6


def test_instagan_translates_folders_without_masks_through_the_predictor(tmp_path):
    data = tmp_path / "shapes"
    make_shapes_dataset(data, size=32, n_train=4, n_test=2, seed=0, min_objects=1, max_objects=2)
    checkpoints = tmp_path / "checkpoints"
    tiny = "--ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1 --load_size 32 --crop_size 32"
    common = f"--dataroot {data} --checkpoints_dir {checkpoints} --display_id 0 --num_threads 0 --max_steps 1"
    assert train.main(f"{common} --name insta --model insta_gan {tiny} --ins_max 2 --ins_per 1".split()) == 0
    assert train.main(f"{common} --name masks {PREDICTOR} --mask_domains AB".split()) == 0
    shutil.rmtree(data / "testA_seg")                # folder A has no masks; folder B keeps its own
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "test.py", "--name", "insta", "--checkpoints_dir", str(checkpoints),
                           "--results_dir", str(results), "--predict_masks", "masks", "--num_threads", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "testB_seg has masks" in done.stdout
    run = results / "insta" / "test_latest"
    manifest = json.loads((run / "visuals.json").read_text())
    assert list(manifest["options"]["predicted_masks"]) == ["AtoB"]
    assert (run / "predicted_masks" / "testA_seg").is_dir()
    assert len(list((run / "images").glob("*_fake_B_img.png"))) == 2
    assert not (data / "testA_seg").exists()         # nothing written into the dataset


def test_masks_dataset_reads_both_folders_with_masks_from_seg_root(tmp_path):
    from data import create_dataset
    from options.train_options import TrainOptions

    write_square_scenes(tmp_path / "data", "trainA", 3, seed=0)
    write_square_scenes(tmp_path / "data", "trainB", 2, seed=1)
    segs = tmp_path / "elsewhere"
    segs.mkdir()
    for letter in "AB":                              # the masks live outside --dataroot
        shutil.move(tmp_path / "data" / f"train{letter}_seg", segs / f"train{letter}_seg")
    opt = TrainOptions().parse(f"--dataroot {tmp_path / 'data'} --checkpoints_dir {tmp_path} --name m {PREDICTOR} "
                               f"--mask_domains AB --seg_root {segs} --serial_batches --no_flip".split(),
                               save=False, show=False)
    dataset = create_dataset(opt).dataset
    assert len(dataset) == 5
    assert [dataset[i]["domain"] for i in range(5)] == ["A", "A", "A", "B", "B"]
    assert [dataset[i]["A_num_instances"] for i in (0, 1, 3)] == [1, 2, 1]
    assert (dataset[1]["A_seg"][:2] > 0).flatten(1).any(1).all()


def test_benchmark_writes_touching_shapes_in_the_seg_layout_and_degrades_masks(tmp_path):
    from datasets.shapes_paired import make_paired_shapes_dataset
    from scripts.mask_benchmark import degraded_folder, paired_as_seg_layout

    paired = tmp_path / "paired"
    make_paired_shapes_dataset(paired, size=32, n_train=3, n_test=2, seed=0, min_objects=1, max_objects=2)
    data = paired_as_seg_layout(paired, tmp_path / "seg_layout")
    for phase in ("train", "test"):
        for image in (paired / f"{phase}_inst").iterdir():
            ids = np.asarray(Image.open(image))
            masks = sorted((data / f"{phase}A_seg").glob(f"{image.stem}_*.png"))
            assert len(masks) == len(set(np.unique(ids)) - {0})
            assert (data / f"{phase}A" / image.name).read_bytes() == (paired / f"{phase}_img" / image.name).read_bytes()
    degraded_folder(data / "testA_seg", tmp_path / "dilated", "dilate", 1)
    for mask in (data / "testA_seg").iterdir():
        before, after = np.asarray(Image.open(mask)) > 0, np.asarray(Image.open(tmp_path / "dilated" / mask.name)) > 0
        assert after.sum() > before.sum() and (after | before).sum() == after.sum()


def test_predictor_resumes_exactly_under_amp(tmp_path):
    write_square_scenes(tmp_path / "data", "trainA", 8, seed=0)

    def run(checkpoints: Path, steps: int, extra: str = "") -> None:
        argv = (f"--dataroot {tmp_path / 'data'} --checkpoints_dir {checkpoints} --name r {PREDICTOR} --batch_size 4 "
                f"--amp bf16 --seed 2 --max_steps {steps} {extra}")
        assert train.main(argv.split()) == 0

    run(tmp_path / "once", 4)
    run(tmp_path / "halves", 2)
    run(tmp_path / "halves", 4, "--continue_train")
    left = torch.load(tmp_path / "once" / "r" / "latest_net_G.pth", weights_only=True)
    right = torch.load(tmp_path / "halves" / "r" / "latest_net_G.pth", weights_only=True)
    assert left.keys() == right.keys() and all(torch.equal(v, right[k]) for k, v in left.items())
