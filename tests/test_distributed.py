"""torchrun with 2 CPU processes (gloo): identical weights on both ranks, rank 0 alone writes, resume works, and two
nodes (two launches) train exactly as one launch of two processes."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from datasets.make_shapes_dataset import make_shapes_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--load_size 32 --crop_size 32 --ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1 --display_id 0 "
        "--ins_max 2 --ins_per 1 --num_threads 0 --print_freq 1 --batch_size 2 --niter 2 --niter_decay 1 --seed 5")


def torchrun_env(**extra_env: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **extra_env)


def torchrun(script: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", script, *args]
    return subprocess.run(command, cwd=ROOT, env=torchrun_env(**extra_env), capture_output=True, text=True,
                          timeout=300, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    # uneven instance counts: in some steps one rank has an empty group while the other has not
    make_shapes_dataset(root, size=32, n_train=6, n_test=2, seed=1, min_objects=0, max_objects=3)
    return root


def load_ranks(out: Path) -> list[dict]:
    return [torch.load(out / f"weights_rank{rank}.pt", weights_only=True) for rank in (0, 1)]


def assert_identical(left: dict, right: dict) -> None:
    for net, state in left.items():
        for key, value in state.items():
            assert torch.equal(value, right[net][key]), f"{net}.{key} differs between ranks"


def test_two_ranks_train_in_lock_step_and_only_rank_0_writes(shapes, tmp_path):
    ck, out = tmp_path / "ck", tmp_path / "out"
    out.mkdir()
    args = f"--dataroot {shapes} --checkpoints_dir {ck} --name ddp {TINY} --max_steps 3".split()
    done = torchrun("tests/ddp_worker.py", str(out), *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rank0, rank1 = load_ranks(out)
    assert_identical(rank0, rank1)
    run = ck / "ddp"
    assert sorted(p.name for p in run.glob("*.pth")) == sorted(
        [f"latest_net_{n}.pth" for n in ("G_A", "G_B", "D_A", "D_B")] + ["latest_state.pth"])
    assert (run / "loss_log.txt").read_text().count("(epoch") >= 3
    assert done.stdout.count("----------------- Options") == 1
    # resume under torchrun continues from the saved state on both ranks, again in lock step
    shutil.rmtree(out)
    out.mkdir()
    resumed = torchrun("tests/ddp_worker.py", str(out), *args[:-1], "5", "--continue_train")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming at epoch" in resumed.stdout
    rank0, rank1 = load_ranks(out)
    assert_identical(rank0, rank1)
    state = torch.load(run / "latest_state.pth", weights_only=True)
    assert state["total_steps"] == 5


def test_train_py_runs_under_torchrun(shapes, tmp_path):
    done = torchrun("train.py", *f"--dataroot {shapes} --checkpoints_dir {tmp_path} --name plain {TINY} "
                                 f"--max_steps 2".split())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "plain" / "latest_net_G_A.pth").is_file()


def test_nan_skip_is_agreed_by_every_rank(shapes, tmp_path):
    """A NaN loss on rank 1 alone: both ranks skip that update together, stay identical and go on."""
    ck, out = tmp_path / "ck", tmp_path / "out"
    out.mkdir()
    args = f"--dataroot {shapes} --checkpoints_dir {ck} --name nan {TINY} --max_steps 3 --nan_policy skip".split()
    done = torchrun("tests/ddp_worker.py", str(out), *args, NAN_ON_RANK1_AT_BATCH="2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("update skipped") == 1, done.stdout[-3000:]
    assert "(on another rank)" in done.stdout   # rank 0 logs; the NaN was rank 1's
    rank0, rank1 = load_ranks(out)
    assert_identical(rank0, rank1)
    assert all(torch.isfinite(v).all() for state in rank0.values() for v in state.values() if v.is_floating_point())
    state = torch.load(ck / "nan" / "latest_state.pth", weights_only=True)
    assert state["total_steps"] == 3   # the skipped batch is not counted; training went on to 3 steps


def test_two_nodes_train_exactly_as_one_node_with_two_processes(shapes, tmp_path):
    """The README's multi-node launch, on localhost: two torchrun launches (--nnodes 2, --node_rank 0 and 1, one
    process each) end with the same weights as one launch of 2 processes."""
    single_out, nodes_out = tmp_path / "single", tmp_path / "nodes"
    single_out.mkdir()
    nodes_out.mkdir()
    args = f"--dataroot {shapes} {TINY} --max_steps 3".split()
    single = torchrun("tests/ddp_worker.py", str(single_out), *args, "--checkpoints_dir", str(tmp_path / "ck1"),
                      "--name", "one_node")
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    port = free_port()
    launches = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={node}", "--nproc_per_node=1",
         "--master_addr=127.0.0.1", f"--master_port={port}", "tests/ddp_worker.py", str(nodes_out), *args,
         "--checkpoints_dir", str(tmp_path / "ck2"), "--name", "two_nodes"],
        cwd=ROOT, env=torchrun_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for node in (0, 1)]
    try:
        for launch in launches:
            output, _ = launch.communicate(timeout=300)
            assert launch.returncode == 0, output[-3000:]
    finally:   # a failed node leaves the other waiting for it
        for launch in launches:
            if launch.poll() is None:
                launch.kill()
    assert_identical(load_ranks(nodes_out)[0], load_ranks(single_out)[0])
    assert_identical(load_ranks(nodes_out)[1], load_ranks(nodes_out)[0])
    assert (tmp_path / "ck2" / "two_nodes" / "latest_state.pth").is_file()
