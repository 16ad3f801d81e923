"""train.py's command line under signals and --compile: exit codes, saved files and printed messages.

Each test runs ``python train.py`` as a subprocess on a tiny shapes dataset (32 px, 8 images per domain) and
sends its signals only once training has printed its first step.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

import pytest
import torch

from datasets.make_shapes_dataset import make_shapes_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--load_size 32 --crop_size 32 --ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1 --display_id 0 "
        "--ins_max 2 --ins_per 1 --num_threads 0 --print_freq 1 --no_html --seed 0")
NETWORKS = ("G_A", "G_B", "D_A", "D_B")
IMAGES_PER_EPOCH = 8
STEP_LINE = r"^\(epoch: (\d+), iters: (\d+)"
START_TIMEOUT = 180.0   # python + torch import + dataset check + first step on a slow, busy 2-core machine
EXIT_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(root, size=32, n_train=IMAGES_PER_EPOCH, n_test=2, seed=0, min_objects=1, max_objects=2)
    return root


def train_args(shapes: Path, ck: Path, extra: str = "") -> list[str]:
    return f"--dataroot {shapes} --checkpoints_dir {ck} --name run {TINY} {extra}".split()


class TrainRun:
    """``python -u train.py ARGS`` with its merged output collected line by line in the background."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None):
        env = dict(os.environ if env is None else env, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen([sys.executable, "-u", "train.py", *args], cwd=ROOT, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT, after: int = 0) -> int:
        """Index of the first line from ``after`` on that matches ``pattern``; fails if train.py ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in range(after, len(self.lines)):
                if re.search(pattern, self.lines[index]):
                    return index
            if self.process.poll() is not None and not self.reader.is_alive():
                pytest.fail(f"train.py exited ({self.process.returncode}) before printing {pattern!r}:\n"
                            f"{self.output}")
            time.sleep(0.02)
        pytest.fail(f"train.py printed no {pattern!r} within {timeout:.0f} s:\n{self.output}")

    def send(self, sig: signal.Signals) -> None:
        assert self.process.poll() is None, f"train.py already exited ({self.process.returncode}):\n{self.output}"
        self.process.send_signal(sig)

    def finish(self, timeout: float = EXIT_TIMEOUT) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"train.py still running {timeout:.0f} s later:\n{self.output}")
        self.reader.join(10)
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:   # a failed assertion left it running: end it (we started it)
            self.process.kill()
            self.process.wait(30)


def steps_printed(lines: list[str]) -> list[tuple[int, int]]:
    """(epoch, images into the epoch) of each printed training step."""
    return [(int(m[1]), int(m[2])) for m in (re.search(STEP_LINE, line) for line in lines) if m]


def assert_latest_saved(ck: Path) -> None:
    run = ck / "run"
    missing = [name for name in ("latest_state.pth", *(f"latest_net_{net}.pth" for net in NETWORKS))
               if not (run / name).is_file()]
    assert not missing, f"'latest' incomplete in {run}: missing {missing}"


def stop_by_signal(shapes: Path, ck: Path, sig: signal.Signals) -> tuple[int, str, tuple[int, int]]:
    """Start a long training run, send ``sig`` once the first step is printed; (exit code, output, (epoch,
    iteration) that the stop message says were saved)."""
    with TrainRun(train_args(shapes, ck, "--niter 50 --niter_decay 0")) as run:
        run.wait_for(STEP_LINE)
        run.send(sig)
        code = run.finish()
    saved = re.search(rf"stopped by {sig.name}: saved 'latest' at epoch (\d+), iteration (\d+)", run.output)
    assert saved, f"no 'stopped by {sig.name}: saved 'latest'' message:\n{run.output}"
    return code, run.output, (int(saved[1]), int(saved[2]))


# ---------------------------------------------------------------------------------------------- SIGTERM
def test_sigterm_saves_latest_exits_143_and_continue_train_resumes(shapes, tmp_path):
    ck = tmp_path / "ck"
    code, output, (epoch, iteration) = stop_by_signal(shapes, ck, signal.SIGTERM)
    assert code == 143, output
    assert "SIGTERM received: finishing the current step" in output
    assert "Traceback" not in output and "--continue_train" in output
    assert_latest_saved(ck)
    steps_done = (epoch - 1) * IMAGES_PER_EPOCH + iteration   # batch 1: one step per image
    assert steps_printed(output.splitlines())[-1] == (epoch, iteration), "the saved step is the last trained one"

    resumed = subprocess.run([sys.executable, "-u", "train.py", *train_args(
        shapes, ck, f"--niter 50 --niter_decay 0 --continue_train --max_steps {steps_done + 2}")],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
        timeout=START_TIMEOUT + EXIT_TIMEOUT, check=False)
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out
    assert f"resuming at epoch {epoch}, iteration {iteration} of the epoch ({steps_done} steps done)" in out
    following = (epoch, iteration + 1) if iteration < IMAGES_PER_EPOCH else (epoch + 1, 1)
    assert steps_printed(out.splitlines())[0] == following, f"did not go on from the saved step:\n{out}"
    assert f"after {steps_done + 2} steps" in out, f"the step count did not go on from {steps_done}:\n{out}"
    logged = steps_printed((ck / "run" / "loss_log.txt").read_text().splitlines())
    assert logged[-3:] == [(epoch, iteration), *steps_printed(out.splitlines())], "loss_log.txt has a gap"


# ---------------------------------------------------------------------------------------------- SIGINT
def test_one_sigint_saves_latest_and_exits_130(shapes, tmp_path):
    ck = tmp_path / "ck"
    code, output, _ = stop_by_signal(shapes, ck, signal.SIGINT)
    assert code == 130, output
    assert "SIGINT received: finishing the current step" in output and "Ctrl-C again to stop at once" in output
    assert "Traceback" not in output and "--continue_train" in output
    assert_latest_saved(ck)


def test_second_sigint_stops_at_once(shapes, tmp_path):
    # batch 4: a step long enough that the second Ctrl-C lands while the first one is still being honoured
    with TrainRun(train_args(shapes, tmp_path / "ck", "--niter 50 --niter_decay 0 --batch_size 4")) as run:
        run.wait_for(STEP_LINE)
        run.send(signal.SIGINT)
        first_notice = run.wait_for("SIGINT received", timeout=EXIT_TIMEOUT)
        run.send(signal.SIGINT)
        code = run.finish()
    output = run.output
    assert code == 1, f"a second Ctrl-C must not look like a clean stop (0, 130, 143) ({code}):\n{output}"
    assert "stopped at once by a second Ctrl-C" in output and "not saved" in output, output
    assert "Traceback" not in output, output
    assert len(steps_printed(run.lines[first_notice:])) <= 1, f"went on training after Ctrl-C twice:\n{output}"


# ---------------------------------------------------------------------------------------------- --compile
# CycleGAN without normalisation: the same wrapper as InstaGAN's networks at a third of the compile time
# (cold: about 1 minute on 2 cores instead of 3), and no bias feeding a normalisation, whose gradient is pure
# rounding noise that Adam would blow up to a full step (compiled and eager rounding differ).
COMPILE_ARGS = ("--load_size 32 --crop_size 32 --ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 1 --gpu_ids -1 "
                "--display_id 0 --num_threads 0 --print_freq 1 --no_html --model cycle_gan --norm none "
                "--seed 1 --max_steps 2")
COMPILE_TIMEOUT = 600


def run_two_steps(shapes: Path, ck: Path, extra: str = "") -> str:
    command = [sys.executable, "-u", "train.py", "--dataroot", str(shapes), "--checkpoints_dir", str(ck),
               "--name", "run", *COMPILE_ARGS.split(), *extra.split()]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TORCH_LOGS="dynamo")  # dynamo says what it compiles
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMPILE_TIMEOUT,
                            check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"train.py {extra} failed:\n{output[-6000:]}"
    assert len(steps_printed(result.stdout.splitlines())) == 2, output[-6000:]
    return output


def weights(ck: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {net: torch.load(ck / "run" / f"latest_net_{net}.pth", weights_only=True) for net in NETWORKS}


def test_compile_trains_to_the_same_weights_as_eager(shapes, tmp_path):
    eager_out = run_two_steps(shapes, tmp_path / "eager")
    compiled_out = run_two_steps(shapes, tmp_path / "compiled", "--compile")
    assert "calling compiler function" not in eager_out
    if "--compile failed" in compiled_out:   # e.g. no C++ compiler: each network runs eagerly, said once
        assert "running it without compiling" in compiled_out, compiled_out[-6000:]
    else:
        assert "calling compiler function inductor" in compiled_out, "--compile compiled nothing"
    eager, compiled = weights(tmp_path / "eager"), weights(tmp_path / "compiled")
    for net in NETWORKS:
        for key, value in eager[net].items():
            torch.testing.assert_close(compiled[net][key], value, rtol=0, atol=1e-6,
                                       msg=lambda text, net=net, key=key: f"net{net}.{key}: {text}")


def test_compiled_instagan_does_not_recompile_when_instance_counts_change(shapes, tmp_path):
    """The networks are compiled for dynamic shapes: the instance batch, the active samples and the masks per
    image change from step to step, and recompiling for each new shape cost minutes on a CPU (38 recompilations
    in 60 steps of the demo's settings, measured)."""
    command = [sys.executable, "-u", "train.py", "--dataroot", str(shapes), "--checkpoints_dir", str(tmp_path),
               "--name", "run", *COMPILE_ARGS.replace("--model cycle_gan --norm none", "--model insta_gan").split(),
               "--ins_max", "2", "--ins_per", "1", "--batch_size", "2", "--max_steps", "3", "--compile"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TORCH_LOGS="recompiles")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=COMPILE_TIMEOUT,
                            check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "--compile failed" in output or "Recompiling" not in output, output[-6000:]


# ---------------------------------------------------------------------------------------------- exact resume
@pytest.mark.parametrize(("sig", "amp"), [(signal.SIGTERM, "none"), (signal.SIGKILL, "bf16"), (signal.SIGTERM, "fp16")])
def test_resume_after_a_signal_gives_the_weights_of_an_uninterrupted_run(shapes, tmp_path, sig, amp):
    """Stopped by SIGTERM (saves at once) or killed by SIGKILL (the last periodic 'latest' survives), then resumed
    past an epoch boundary: the weights equal those of one uninterrupted run, bit for bit."""
    total = IMAGES_PER_EPOCH + 6   # batch 1: one step per image; the resumed part crosses into epoch 2
    common = f"--niter 50 --niter_decay 0 --amp {amp} --save_latest_freq 2"
    with TrainRun(train_args(shapes, tmp_path / "stopped", common)) as run:
        run.wait_for(STEP_LINE, after=run.wait_for(STEP_LINE, after=run.wait_for(STEP_LINE) + 1) + 1)
        run.send(sig)
        run.finish()
    state = torch.load(tmp_path / "stopped" / "run" / "latest_state.pth", weights_only=True)
    assert 0 < state["total_steps"] < total, f"stopped after {state['total_steps']} steps:\n{run.output}"
    for ck, extra in ((tmp_path / "stopped", "--continue_train"), (tmp_path / "once", "")):
        done = subprocess.run([sys.executable, "-u", "train.py", *train_args(
            shapes, ck, f"{common} --max_steps {total} {extra}")], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True, text=True, timeout=START_TIMEOUT + EXIT_TIMEOUT, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for net in NETWORKS:
        resumed = torch.load(tmp_path / "stopped" / "run" / f"latest_net_{net}.pth", weights_only=True)
        once = torch.load(tmp_path / "once" / "run" / f"latest_net_{net}.pth", weights_only=True)
        assert all(torch.equal(value, once[key]) for key, value in resumed.items()), f"net {net} differs"
