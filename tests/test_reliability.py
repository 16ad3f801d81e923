"""Crashes, NaN losses, unreadable images and bad checkpoints never lose work or end in a bare traceback."""

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

import test as test_script
import train
from datasets.make_shapes_dataset import make_shapes_dataset
from models import insta_gan_model

ROOT = Path(__file__).resolve().parents[1]
NETS = "--load_size 32 --crop_size 32 --ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1 --ins_max 2 --ins_per 1"
TINY = f"{NETS} --display_id 0 --num_threads 0 --print_freq 1 --batch_size 2"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(root, size=32, n_train=6, n_test=2, seed=2, min_objects=1, max_objects=2)
    return root


def args(shapes: Path, ck: Path, extra: str = "") -> list[str]:
    return f"--dataroot {shapes} --checkpoints_dir {ck} --name run {TINY} {extra}".split()


def nan_after(calls: int):
    """A context loss that turns NaN from its ``calls``-th call on."""
    real = insta_gan_model.context_preserving_loss
    count = {"n": 0}

    def loss(*tensors):
        count["n"] += 1
        value = real(*tensors)
        return value * float("nan") if count["n"] >= calls else value
    return loss


def test_nan_loss_stops_naming_the_loss_iteration_and_last_checkpoint(shapes, tmp_path, monkeypatch, capsys):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 3 --niter 1 --niter_decay 0")) == 0
    saved = torch.load(ck / "run" / "latest_state.pth", weights_only=True)
    monkeypatch.setattr(insta_gan_model, "context_preserving_loss", nan_after(3))
    assert train.main(args(shapes, ck, "--continue_train --niter 5 --niter_decay 0")) == 3
    err = capsys.readouterr().err
    assert re.search(r"loss ctx_[AB] is nan at epoch 2, iteration 1 \(step 4\)", err), err
    assert "Last good checkpoint" in err and "latest_state.pth" in err and "--nan_policy skip" in err
    after = torch.load(ck / "run" / "latest_state.pth", weights_only=True)
    assert after["total_steps"] == saved["total_steps"]   # nothing half-updated was saved


def test_nan_policy_skip_drops_the_update_and_goes_on(shapes, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(insta_gan_model, "context_preserving_loss", nan_after(5))
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--nan_policy skip --niter 2 --niter_decay 0")) == 0
    out = capsys.readouterr().out
    assert "update skipped" in out
    for path in (ck / "run").glob("latest_net_*.pth"):
        assert all(torch.isfinite(v).all() for v in torch.load(path, weights_only=True).values())


def truncated_png(path: Path) -> None:
    """A PNG whose header reads fine but whose pixel data is cut: only a full decode fails."""
    buffer = io.BytesIO()
    Image.effect_noise((32, 32), 60).convert("RGB").save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


@pytest.fixture()
def shapes_with_truncated_image(shapes, tmp_path) -> tuple[Path, str]:
    root = tmp_path / "data"
    shutil.copytree(shapes, root)
    victim = min((root / "trainA").iterdir())
    truncated_png(victim)
    return root, victim.name


def test_unreadable_image_met_in_training_is_skipped_and_counted(shapes_with_truncated_image, tmp_path, capsys):
    root, victim = shapes_with_truncated_image
    assert train.main(args(root, tmp_path / "ck", "--niter 1 --niter_decay 0 --serial_batches")) == 0
    out = capsys.readouterr().out
    assert "skipped an unreadable sample (1 of at most 10)" in out and victim in out


def test_unreadable_images_beyond_the_limit_stop_with_the_file_named(shapes_with_truncated_image, tmp_path, capsys):
    root, victim = shapes_with_truncated_image
    assert train.main(args(root, tmp_path / "ck", "--niter 1 --niter_decay 0 --max_bad_images 0")) == 2
    err = capsys.readouterr().err
    assert victim in err and "Traceback" not in err


def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint(shapes, tmp_path):
    """Saving after every step and killing at varied moments: resume always works and at most the epoch in
    progress is lost."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for attempt, delay in enumerate((0.3, 0.9, 1.6, 2.4)):
        ck = tmp_path / f"ck{attempt}"
        command = [sys.executable, "-u", "train.py", *args(shapes, ck, "--niter 50 --niter_decay 0 "
                                                                        "--save_latest_freq 1 --save_epoch_freq 1")]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("end of epoch 1 "):
                break
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        lines += process.communicate(timeout=30)[0].splitlines(keepends=True)
        finished = [int(m.group(1)) for m in re.finditer(r"^end of epoch (\d+) ", "".join(lines), re.MULTILINE)]
        state = torch.load(ck / "run" / "latest_state.pth", weights_only=True)
        assert state["epoch"] > max(finished), (state["epoch"], finished)
        resumed = args(shapes, ck, f"--niter 50 --niter_decay 0 --continue_train "
                                   f"--max_steps {state['total_steps'] + 1}")
        assert train.main(resumed) == 0


def test_truncated_or_mismatching_checkpoint_gives_a_message_naming_file_and_option(shapes, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 1")) == 0
    test_args = f"--dataroot {shapes} --checkpoints_dir {ck} --name run --results_dir {tmp_path / 'r'} {NETS}"
    assert test_script.main(test_args.replace("--ngf 4", "--ngf 8").split()) == 2
    err = capsys.readouterr().err
    assert "latest_net_G_A.pth" in err and "--ngf" in err
    path = ck / "run" / "latest_net_G_A.pth"
    path.write_bytes(path.read_bytes()[:100])
    assert test_script.main(test_args.split()) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "truncated or corrupt" in err


class NotWeights:
    pass


def test_checkpoint_that_needs_code_to_load_is_refused(shapes, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 1")) == 0
    path = ck / "run" / "latest_net_G_A.pth"
    torch.save({"payload": NotWeights()}, path)
    test_args = f"--dataroot {shapes} --checkpoints_dir {ck} --name run --results_dir {tmp_path / 'r'} {NETS}"
    assert test_script.main(test_args.split()) == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "arbitrary" in err and str(path) in err


# ---------------------------------------------------------------------------------------------- bad options
BAD_OPTIONS = {  # extra flags -> what the error must say (exit status 2, nothing written)
    "--lr nan": "--lr must be a positive number",
    "--lr -1": "--lr must be a positive number",
    "--beta1 2": "--beta1 must be in [0, 1)",
    "--init_gain nan": "--init_gain must be a positive number",
    "--suffix {nope}": "'nope' is not an option name",
    "--n_layers_D 6": "--n_layers_D 6 is too deep for 32-pixel inputs",
    "--input_nc 1": "pass --lambda_idt 0",
    "--epoch_count 500": "past the last epoch",
    "--name ../..": "must be a plain folder name",
    "--lambda_A nan": "--lambda_A must be a non-negative number",
    "--lambda_ctx -1": "--lambda_ctx must be a non-negative number",
    "--max_loss nan": "--max_loss must be a non-negative number",
    "--max_nan_skips -1": "--max_nan_skips must not be negative",
    "--output_nc 1": "pass --lambda_idt 0",
}


@pytest.mark.parametrize("extra", list(BAD_OPTIONS))
def test_bad_options_stop_with_the_option_and_exit_2(shapes, tmp_path, capsys, extra):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, f"--max_steps 1 {extra}")) == 2
    err = capsys.readouterr().err
    assert BAD_OPTIONS[extra] in err and "Traceback" not in err, err
    assert not ck.exists() and not (tmp_path.parent / "run").exists(), "a refused run wrote files"


def test_a_new_run_never_overwrites_a_saved_one(shapes, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 2")) == 0
    state = ck / "run" / "latest_state.pth"
    before = state.read_bytes()
    assert train.main(args(shapes, ck, "--max_steps 1")) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--continue_train" in err and "--overwrite" in err
    assert state.read_bytes() == before
    assert train.main(args(shapes, ck, "--max_steps 1 --overwrite")) == 0
    assert torch.load(state, weights_only=True)["total_steps"] == 1


def test_a_failed_resume_leaves_the_option_files_alone(shapes, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 1")) == 0
    options = (ck / "run" / "train_opt.txt").read_text(), (ck / "run" / "train_opt.json").read_text()
    assert train.main(args(shapes, ck, "--max_steps 2 --continue_train --ngf 8")) == 2
    assert "does not fit the network" in capsys.readouterr().err
    assert ((ck / "run" / "train_opt.txt").read_text(), (ck / "run" / "train_opt.json").read_text()) == options


def test_test_py_with_a_mistyped_name_creates_nothing(shapes, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 1")) == 0
    assert test_script.main(f"--checkpoints_dir {ck} --name rnu --results_dir {tmp_path / 'r'}".split()) == 2
    err = capsys.readouterr().err
    assert "no trained run" in err and "runs there: run" in err
    assert not (ck / "rnu").exists() and not (tmp_path / "r").exists()


def test_skipping_every_update_stops_instead_of_reporting_success(shapes, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(insta_gan_model, "context_preserving_loss", nan_after(1))
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 10 --nan_policy skip --max_nan_skips 3")) == 3
    err = capsys.readouterr().err
    assert "after 3 skipped updates in a row (--max_nan_skips)" in err, err


def test_a_diverging_run_stops_like_a_nan(shapes, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 30 --lr 1e9 --max_loss 1e4")) == 3
    err = capsys.readouterr().err
    assert "above --max_loss 10000: training diverged" in err and "Lower --lr" in err, err


def test_resuming_another_models_state_names_the_model(shapes, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert train.main(args(shapes, ck, "--max_steps 1")) == 0
    cyclegan = f"--dataroot {shapes} --checkpoints_dir {ck} --name run --model cycle_gan {TINY.replace(NETS, '')} "
    cyclegan += "--load_size 32 --crop_size 32 --ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1"
    assert train.main(f"{cyclegan} --max_steps 2 --continue_train".split()) == 2
    err = capsys.readouterr().err
    assert "training state of another model" in err or "does not fit the network" in err, err
    assert "Traceback" not in err
