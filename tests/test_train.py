"""train.py and test.py end to end on tiny shapes data: losses move, exact resume, Ctrl-C, results page."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import evaluate
import test as test_script
import train
from datasets.make_shapes_dataset import make_shapes_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--load_size 32 --crop_size 32 --ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1 "
        "--display_id 0 --ins_max 2 --ins_per 1")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(root, size=32, n_train=8, n_test=3, seed=0, min_objects=1, max_objects=2)
    return root


def train_args(shapes: Path, ck: Path, extra: str) -> list[str]:
    return (f"--dataroot {shapes} --checkpoints_dir {ck} --name run {TINY} --num_threads 0 "
            f"--print_freq 1 {extra}").split()


def weights(ck: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {p.name: torch.load(p, weights_only=True) for p in sorted((ck / "run").glob("latest_net_*.pth"))}


def assert_same_weights(left: dict, right: dict) -> None:
    assert left.keys() == right.keys() and left
    for name, state in left.items():
        for key, value in state.items():
            assert torch.equal(value, right[name][key]), f"{name}:{key} differs"


def test_train_moves_the_losses_and_test_writes_one_row_per_input(shapes, tmp_path):
    ck = tmp_path / "ck"
    assert train.main(train_args(shapes, ck, "--batch_size 3 --max_steps 6 --niter 1 --niter_decay 1")) == 0
    run = ck / "run"
    for name in ("G_A", "G_B", "D_A", "D_B"):
        assert (run / f"latest_net_{name}.pth").is_file()
    assert (run / "train_opt.txt").is_file() and (run / "loss_plot.png").is_file()
    logged = [line for line in (run / "loss_log.txt").read_text().splitlines() if line.startswith("(epoch")]
    assert len(logged) >= 2
    first, last = (dict(re.findall(r"(\w+): ([-\d.]+)", line)) for line in (logged[0], logged[-1]))
    assert first["cycle_A"] != last["cycle_A"] and first["G_A"] != last["G_A"]
    results = tmp_path / "results"
    assert test_script.main(f"--dataroot {shapes} --checkpoints_dir {ck} --name run --results_dir {results} "
                            f"{TINY} --ins_max 4 --ins_per 2 --num_test 2".split()) == 0
    page = (results / "run" / "test_latest" / "index.html").read_text()
    assert page.count("<tr") == 4   # both directions by default, as the authors' test
    images = results / "run" / "test_latest" / "images"
    assert any(images.glob("*_fake_B_seg_0.png")) and any(images.glob("*_real_A_seg_0.png"))
    manifest = json.loads((results / "run" / "test_latest" / "visuals.json").read_text())
    assert manifest["roles"]["AtoB"] == {"input_image": "real_A_img", "input_masks": "real_A_seg",
                                         "output_image": "fake_B_img", "output_masks": "fake_B_seg"}
    assert manifest["roles"]["BtoA"]["output_image"] == "fake_A_img"
    assert manifest["visuals"]["fake_B_seg"] == "masks" and manifest["visuals"]["fake_B_img"] == "image"
    assert manifest["options"]["ins_max"] == 4 and manifest["options"]["dataroot"] == str(shapes)
    # per-instance files are named after the input mask file they came from, not the area-sorted slot
    for saved in images.glob("*_real_?_seg_*.png"):
        stem, folder, k = re.match(r"(.+)_real_([AB])_seg_(\d+)\.png", saved.name).groups()
        source = np.asarray(Image.open(shapes / f"test{folder}_seg" / f"{stem}_{k}.png")) > 127
        assert (np.asarray(Image.open(saved)) > 127).tolist() == source.tolist(), saved.name
    # evaluate.py needs only the results folder, for either direction
    for direction in ("AtoB", "BtoA"):
        assert evaluate.main(["--results", str(results / "run" / "test_latest"), "--direction", direction,
                              "--no_fid", "--no_domain_score", "--no_shape_score"]) == 0
        metrics = json.loads((results / "run" / "test_latest" / "metrics.json").read_text())
        assert metrics["num_images"] == 2 and metrics["direction"] == direction


def test_test_py_uses_training_statistics_of_batch_norm_only_with_eval(shapes, tmp_path, capsys):
    ck, results = tmp_path / "ck", tmp_path / "results"
    assert train.main(train_args(shapes, ck, "--norm batch --batch_size 2 --max_steps 2")) == 0
    common = f"--dataroot {shapes} --checkpoints_dir {ck} --name run {TINY} --norm batch --num_test 1"
    capsys.readouterr()
    assert test_script.main(f"{common} --results_dir {results}/train_mode".split()) == 0
    assert "add --eval" in capsys.readouterr().err
    assert test_script.main(f"{common} --results_dir {results}/eval_mode --eval".split()) == 0
    assert "add --eval" not in capsys.readouterr().err
    translated = [np.asarray(Image.open(next((results / mode).rglob("*_fake_B_img.png"))), dtype=float)
                  for mode in ("train_mode", "eval_mode")]
    assert np.abs(translated[0] - translated[1]).mean() > 0.5  # running statistics, not the test image's own


@pytest.mark.parametrize(("workers", "amp", "split"),
                         [(0, "none", 3), (2, "none", 3), (0, "fp16", 3), (0, "none", 2), (0, "bf16", 4)])
def test_resume_continues_exactly(shapes, tmp_path, workers, amp, split):
    # 4 images, batch 2: 2 steps per epoch; stopping after 3 steps interrupts the second epoch mid-way, after
    # 2 or 4 steps the save is at an epoch boundary (the next epoch's data order must still match)
    common = f"--max_dataset_size 4 --batch_size 2 --niter 2 --niter_decay 2 --seed 3 --set_order random " \
             f"--pool_size 2 --num_threads {workers} --amp {amp}"
    once, halves = tmp_path / "once", tmp_path / "halves"
    assert train.main(train_args(shapes, once, f"{common} --max_steps 6")) == 0
    assert train.main(train_args(shapes, halves, f"{common} --max_steps {split}")) == 0
    assert train.main(train_args(shapes, halves, f"{common} --max_steps 6 --continue_train")) == 0
    assert_same_weights(weights(once), weights(halves))
    state = torch.load(halves / "run" / "latest_state.pth", weights_only=True)
    assert (state["epoch"], state["epoch_iter"], state["total_steps"]) == (4, 0, 6)
    scalers = state["model"]["grad_scalers"]
    assert len(scalers) == 2 and all(bool(s) == (amp == "fp16") for s in scalers)   # fp16: the loss scale resumes


def test_continue_train_without_checkpoint_fails_before_any_work(shapes, tmp_path, capsys):
    assert train.main(train_args(shapes, tmp_path / "none", "--continue_train")) == 2
    err = capsys.readouterr().err
    assert "no training state" in err and "--continue_train" in err
    assert not (tmp_path / "none").exists()


def test_ctrl_c_saves_latest_and_exits_cleanly(shapes, tmp_path):
    ck = tmp_path / "ck"
    command = [sys.executable, "-u", "train.py", *train_args(shapes, ck, "--niter 50 --niter_decay 0")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("(epoch: 2"):
            process.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + process.communicate(timeout=60)[0]
    assert process.returncode == 130, output
    assert "Traceback" not in output
    assert "saved 'latest'" in output and "--continue_train" in output
    state = torch.load(ck / "run" / "latest_state.pth", weights_only=True)
    assert state["epoch"] >= 2
    assert train.main(train_args(shapes, ck, f"--niter 50 --niter_decay 0 --continue_train "
                                             f"--max_steps {state['total_steps'] + 1}")) == 0


def test_train_stops_before_any_work_on_a_broken_dataset(shapes, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(shapes, broken)
    victim = min((broken / "trainA").iterdir())
    victim.write_bytes(b"")
    assert train.main(train_args(broken, tmp_path / "ck", "--max_steps 1")) == 2
    err = capsys.readouterr().err
    assert victim.name in err and "python -m data.check" in err
    assert not (tmp_path / "ck" / "run" / "latest_net_G_A.pth").exists()


def test_cycle_gan_trains_and_tests_on_a_folder_without_masks(tmp_path):
    """A plain unpaired folder (no _seg): each model picks the dataset its data needs, at train and test time."""
    rng = np.random.default_rng(0)
    for folder in ("trainA", "trainB", "testA", "testB"):
        (tmp_path / "plain" / folder).mkdir(parents=True)
        for index in range(3):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "plain" / folder / f"{folder}_{index}.jpg")
    ck, results = tmp_path / "ck", tmp_path / "results"
    tiny = "--load_size 32 --crop_size 32 --ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1 --display_id 0"
    assert train.main(f"--dataroot {tmp_path / 'plain'} --checkpoints_dir {ck} --name plain --model cycle_gan "
                      f"{tiny} --max_steps 2 --num_threads 0".split()) == 0
    # only the name: the model, its sizes and the folder come from train_opt.json
    assert test_script.main(f"--checkpoints_dir {ck} --name plain --results_dir {results}".split()) == 0
    images = results / "plain" / "test_latest" / "images"
    assert len(list(images.glob("*_fake_B_img.png"))) == 3 and len(list(images.glob("*_fake_A_img.png"))) == 3
    assert (images / "testB_0_fake_A_img.png").is_file()   # B rows are named after folder B's own files
