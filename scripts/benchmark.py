"""Training speed, peak memory and data-loading speed of InstaGAN over a grid of settings.

    python -m scripts.benchmark --quick                       # tiny CPU grid, under 2 minutes
    python -m scripts.benchmark --grid memory --json mem.json  # peak memory vs instances, sequential vs one-step
    python -m scripts.benchmark --grid cpu-precision           # 128x128, default nets, fp32 vs bf16
    python -m scripts.benchmark --grid gpu --device cuda --json gpu.json
    python -m scripts.benchmark --grid loading                 # DataLoader images/s beside training images/s

Every grid point trains in a fresh subprocess: the model is built through the real code (TrainOptions,
models.create_model, model.setup) and fed synthetic batches with exactly N disjoint instances per image;
after ``--warmup`` steps, ``--steps`` calls of optimize_parameters() are timed. Peak memory is CUDA's
max_memory_allocated on a GPU and the process's peak resident set size (ru_maxrss, reported as is, so it
includes PyTorch itself) on the CPU. Data loading is timed separately (also in a fresh process) by
iterating the real DataLoader over shapes data of the point's size and batch size, without a model.

Axis flags (--sizes, --instances, --ins_per, --batch_sizes, --precisions, --channels_last, --device and the
network sizes) replace the named grid's values. ``--json`` is rewritten after every point (``"complete": false``
until the last), so a run stopped early keeps the points it finished. Never run two benchmarks (or tests) at once: they share
the cores and slow each other down several times.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from util.fileio import write_text_atomic
from util.machine import cpu_model_name
from util.masks import EMPTY_SLOT

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODULE = "scripts.benchmark"  # workers run as ``python -m scripts.benchmark`` in PROJECT_ROOT
PRECISIONS = ("none", "bf16", "fp16")
DEFAULT_NETS = {"ngf": 64, "ndf": 64, "n_blocks_G": 9}
DEMO_CPU_NETS = {"ngf": 16, "ndf": 16, "n_blocks_G": 2}  # scripts/shapes_demo.sh on a CPU
SHAPES_NETS = {"ngf": 32, "ndf": 32, "n_blocks_G": 3}  # scripts/shapes_benchmark.py
TINY_NETS = {"ngf": 8, "ndf": 8, "n_blocks_G": 1}
MIN_SIZE = 32  # the discriminator (3 stride-2 layers, then two 4x4 convolutions) needs this many pixels
TOP_OPS = 15


class BenchmarkError(Exception):
    """A bad option combination or an unusable machine; the message names the option and the fix."""


# ---------------------------------------------------------------- grid points

@dataclass(frozen=True)
class Point:
    """One measured setting. ``ins_max`` is ``instances`` rounded up to a multiple of ``ins_per``."""

    size: int
    instances: int
    ins_per: int
    batch_size: int
    device: str = "cpu"
    precision: str = "none"
    channels_last: bool = False
    ngf: int = 64
    ndf: int = 64
    n_blocks_G: int = 9  # the project's option name
    model: str = "insta_gan"
    compile: bool = False

    @property
    def ins_max(self) -> int:
        return math.ceil(self.instances / self.ins_per) * self.ins_per

    @property
    def one_step(self) -> bool:
        return self.ins_per >= self.instances

    def label(self) -> str:
        return (f"{self.model} {self.size}px N={self.instances} ins_per={self.ins_per} batch={self.batch_size} "
                f"{self.device} {self.precision}{' channels_last' if self.channels_last else ''}"
                f"{' compile' if self.compile else ''}")


@dataclass(frozen=True)
class SubGrid:
    """A cartesian product of axis values; ``"max"`` in ``ins_per`` means ins_per = instances (one step)."""

    sizes: tuple[int, ...]
    instances: tuple[int, ...]
    ins_per: tuple[int | str, ...]
    batch_sizes: tuple[int, ...]
    precisions: tuple[str, ...] = ("none",)
    channels_last: tuple[bool, ...] = (False,)
    devices: tuple[str, ...] = ("cpu",)
    nets: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_NETS))
    models: tuple[str, ...] = ("insta_gan",)
    compile: tuple[bool, ...] = (False,)

    def points(self) -> list[Point]:
        found = []
        for model, size, count, per, batch, device, precision, last, compiled in itertools.product(
                self.models, self.sizes, self.instances, self.ins_per, self.batch_sizes, self.devices,
                self.precisions, self.channels_last, self.compile):
            ins_per = count if per == "max" else min(int(per), count)
            found.append(Point(size, count, ins_per, batch, device, precision, last, **self.nets, model=model,
                               compile=compiled))
        return found


@dataclass(frozen=True)
class Grid:
    subgrids: tuple[SubGrid, ...]
    steps: int
    warmup: int
    loading_images: int
    description: str


def named_grids() -> dict[str, Grid]:
    """The grids behind ``--grid`` (and ``--quick``)."""
    return {
        "quick": Grid((SubGrid((MIN_SIZE,), (2,), (2,), (1, 2), ("none", "bf16"), nets=dict(TINY_NETS)),),
                      steps=3, warmup=1, loading_images=16,
                      description="tiny CPU smoke grid (ngf 8, ndf 8, 1 block, 32 px)"),
        "memory": Grid((SubGrid((64,), (2, 4, 8, 16), (2, "max"), (1,)),), steps=1, warmup=1, loading_images=64,
                       description="peak memory vs instances: sequential (ins_per 2) vs one step (ins_per = ins_max)"),
        "cpu-precision": Grid((SubGrid((128,), (4,), (2,), (1,), ("none", "bf16")),), steps=2, warmup=1,
                              loading_images=64, description="128x128, 4 instances, default nets: fp32 vs bf16"),
        "gpu": Grid((SubGrid((200,), (4,), (2,), (1, 4, 8), ("none", "bf16"), devices=("cuda",),
                             compile=(False, True)),
                     SubGrid((200,), (4,), (2,), (8,), ("bf16",), (True,), ("cuda",), compile=(False, True))),
                    steps=10, warmup=3, loading_images=256,
                    description="GPU: 200 px, default nets, batch 1/4/8, fp32/bf16, compile off/on; batch 8 bf16 "
                                "with channels_last; TFLOP/s and MFU"),
        "speed": Grid((SubGrid((128,), (4,), (2,), (1,), ("none", "bf16")),
                       SubGrid((64,), (3,), (2,), (4,), ("none", "bf16"), nets=dict(DEMO_CPU_NETS)),
                       SubGrid((64,), (2,), (2,), (4,), ("bf16",), nets=dict(SHAPES_NETS),
                               models=("insta_gan", "cycle_gan"))),
                      steps=4, warmup=1, loading_images=64,
                      description="speed targets: 128 px default nets fp32/bf16 batch 1; the CPU demo's nets (64 px, "
                                  "batch 4); InstaGAN beside CycleGAN with the shapes benchmark's nets"),
        "loading": Grid((SubGrid((64, 128), (2,), (2,), (1, 4), nets=dict(DEMO_CPU_NETS)),), steps=3, warmup=1,
                        loading_images=256,
                        description="DataLoader images/s beside training with the CPU demo nets "
                                    "(ngf 16, ndf 16, 2 blocks)"),
    }


def override_grid(grid: Grid, args: argparse.Namespace) -> Grid:
    """Replace the grid's axes and settings by those given on the command line."""
    axes = {"sizes": args.sizes, "instances": args.instances, "ins_per": args.ins_per,
            "batch_sizes": args.batch_sizes, "precisions": args.precisions, "devices": args.device,
            "models": args.models}
    switches = {"off": (False,), "on": (True,), "both": (False, True)}
    if args.channels_last is not None:
        axes["channels_last"] = switches[args.channels_last]
    if args.compile is not None:
        axes["compile"] = switches[args.compile]
    changed = {name: tuple(value) for name, value in axes.items() if value is not None}
    nets = {name: getattr(args, name) for name in DEFAULT_NETS if getattr(args, name) is not None}
    subgrids = tuple(replace(sub, **changed, nets={**sub.nets, **nets}) for sub in grid.subgrids)
    return replace(grid, subgrids=subgrids,
                   steps=args.steps if args.steps is not None else grid.steps,
                   warmup=args.warmup if args.warmup is not None else grid.warmup,
                   loading_images=args.loading_images if args.loading_images is not None else grid.loading_images)


def grid_points(grid: Grid) -> list[Point]:
    """All points of the grid in order, each once (e.g. N=2 with ins_per 2 and ins_per max coincide)."""
    return list(dict.fromkeys(point for sub in grid.subgrids for point in sub.points()))


def check_points(points: list[Point]) -> None:
    for point in points:
        if point.size < MIN_SIZE or point.size % 4:
            raise BenchmarkError(f"--sizes {point.size}: use a multiple of 4 of at least {MIN_SIZE} "
                                 f"(the generator downsamples twice; the discriminator needs {MIN_SIZE} px)")
        if point.instances < 1 or point.ins_per < 1 or point.batch_size < 1:
            raise BenchmarkError("--instances, --ins_per and --batch_sizes must be at least 1")
        if point.precision not in PRECISIONS:
            raise BenchmarkError(f"--precisions {point.precision}: choose from {', '.join(PRECISIONS)}")
    if any(point.device == "cuda" for point in points) and not torch.cuda.is_available():
        raise BenchmarkError(f"--device cuda: CUDA is not available here (torch {torch.__version__}, built for "
                             f"CUDA {torch.version.cuda}); run the GPU grid on a machine with an NVIDIA GPU, or "
                             f"use --device cpu")


# ---------------------------------------------------------------- synthetic input

def disjoint_instance_masks(batch_size: int, count: int, size: int, slots: int,
                            generator: torch.Generator) -> torch.Tensor:
    """(batch, slots, size, size) masks in [-1, 1]: exactly ``count`` disjoint random rectangles per image
    (one per cell of a grid over the image, so they never overlap), then empty slots (-1 everywhere)."""
    if slots < count:
        raise BenchmarkError(f"{count} instances do not fit in {slots} mask slots")
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    cell_h, cell_w = size // rows, size // cols
    if min(cell_h, cell_w) < 2:
        raise BenchmarkError(f"{count} instances do not fit in {size}x{size} px; raise --sizes or lower --instances")
    masks = torch.full((batch_size, slots, size, size), EMPTY_SLOT)
    for sample, slot in itertools.product(range(batch_size), range(count)):
        top, left = (slot // cols) * cell_h, (slot % cols) * cell_w
        height = int(torch.randint(cell_h // 2, cell_h + 1, (), generator=generator))
        width = int(torch.randint(cell_w // 2, cell_w + 1, (), generator=generator))
        dy = int(torch.randint(0, cell_h - height + 1, (), generator=generator))
        dx = int(torch.randint(0, cell_w - width + 1, (), generator=generator))
        masks[sample, slot, top + dy:top + dy + height, left + dx:left + dx + width] = 1.0
    return masks


def synthetic_batch(point: Point, slots: int, generator: torch.Generator) -> dict[str, Any]:
    """A batch with the dataset's keys: random images and ``point.instances`` masks per image."""
    shape = (point.batch_size, 3, point.size, point.size)
    batch: dict[str, Any] = {}
    for domain in "AB":
        batch[domain] = torch.rand(shape, generator=generator) * 2 - 1
        batch[f"{domain}_seg"] = disjoint_instance_masks(point.batch_size, point.instances, point.size, slots,
                                                         generator)
        batch[f"{domain}_paths"] = [f"synthetic_{domain}_{i}.png" for i in range(point.batch_size)]
    return batch


# ---------------------------------------------------------------- measurements (run in a fresh process)

def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def train_argv(point: Point, checkpoints_dir: str) -> list[str]:
    argv = ["--model", point.model, "--name", "benchmark", "--checkpoints_dir", checkpoints_dir,
            "--gpu_ids", "0" if point.device == "cuda" else "-1", "--display_id", "0", "--num_threads", "0",
            "--load_size", str(point.size), "--crop_size", str(point.size), "--batch_size", str(point.batch_size),
            "--max_instances", str(max(20, point.ins_max)), "--amp", point.precision,
            "--ngf", str(point.ngf), "--ndf", str(point.ndf), "--n_blocks_G", str(point.n_blocks_G)]
    if point.model == "insta_gan":
        argv += ["--ins_max", str(point.ins_max), "--ins_per", str(point.ins_per)]
    return argv + ["--channels_last"] * point.channels_last + ["--compile"] * point.compile


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


STAGES = ("update: finite check", "update: backward", "update: gradient average", "update: optimiser step")


def label_network_calls(model: Any) -> None:
    """Run every network call under a profiler label ``net<name> forward`` (stage breakdown of a profile)."""
    from torch.profiler import record_function

    for name, net in model.networks().items():
        def labelled(*args, _forward=net.forward, _label=f"net{name} forward"):
            with record_function(_label):
                return _forward(*args)
        net.forward = labelled


def stage_breakdown(events: Any, step_ms: float) -> list[dict[str, Any]]:
    """Wall time per stage of one step from the profiler's labels (base_model and label_network_calls):
    generator and discriminator forward passes, the rest of the forward (losses, slicing, the pool), backward,
    optimiser, finite check, gradient average, and what is left of the step (set_input, bookkeeping)."""
    totals: dict[str, float] = {}
    for event in events:
        totals[event.key] = totals.get(event.key, 0.0) + event.cpu_time_total / 1e3
    generator = sum(ms for key, ms in totals.items() if key.startswith("netG") and key.endswith(" forward"))
    discriminator = sum(ms for key, ms in totals.items() if key.startswith("netD") and key.endswith(" forward"))
    forward = totals.get("model: forward and losses", 0.0)
    stages = {"forward: generators": generator, "forward: discriminators": discriminator,
              "forward: losses and the rest": forward - generator - discriminator}
    stages.update({stage: totals.get(stage, 0.0) for stage in STAGES})
    stages["set_input and bookkeeping"] = step_ms - forward - sum(totals.get(stage, 0.0) for stage in STAGES)
    return [{"stage": stage, "ms": ms, "percent": 100.0 * ms / step_ms} for stage, ms in stages.items()]


def profile_step(model: Any, batch: dict[str, Any], device: str) -> dict[str, Any]:
    """One optimize_parameters() call under torch.profiler: the stage breakdown and the ops taking the most
    self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    label_network_calls(model)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        model.set_input(batch)
        model.optimize_parameters()
        synchronize(device)
        step_ms = (time.perf_counter() - start) * 1e3
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ops = [{"op": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3, "calls": e.count,
            "percent": 100.0 * e.self_cpu_time_total / total} for e in events[:TOP_OPS]]
    return {"top_ops": ops, "stages": stage_breakdown(events, step_ms), "profiled_step_ms": step_ms}


def measure_training(point: Point, steps: int, warmup: int, profile: bool,
                     peak_tflops: float | None = None) -> dict[str, Any]:
    """Build the model through the real code and time ``steps`` optimize_parameters() calls; count the model
    FLOPs of one more (for the achieved TFLOP/s and, given the device's peak, the model FLOPs utilisation)."""
    import models
    from options.train_options import TrainOptions

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as checkpoints_dir:
        opt = TrainOptions().parse(train_argv(point, checkpoints_dir), save=False, show=False)
        with contextlib.redirect_stdout(sys.stderr):  # parameter counts; stdout stays clean
            model = models.create_model(opt)
            model.setup(opt)
    batch = synthetic_batch(point, opt.max_instances, torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for _ in range(warmup):
        model.set_input(batch)
        model.optimize_parameters()
    synchronize(point.device)
    warmup_seconds = time.perf_counter() - start   # includes compiling with --compile
    start = time.perf_counter()
    for _ in range(steps):
        model.set_input(batch)
        model.optimize_parameters()
    synchronize(point.device)
    seconds = time.perf_counter() - start
    result = {"seconds_per_step": seconds / steps, "steps_per_s": steps / seconds,
              "images_per_s": steps * point.batch_size / seconds, "warmup_seconds": warmup_seconds}
    if point.device == "cuda":
        result["peak_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["memory_kind"] = "cuda_max_memory_allocated"
    else:
        result["peak_memory_mib"] = peak_rss_mib()
        result["memory_kind"] = "peak_rss"
    flops = step_flops(model, batch)
    result.update(flops_per_step=flops, achieved_tflops=flops / result["seconds_per_step"] / 1e12)
    if peak_tflops:
        result.update(peak_tflops=peak_tflops, mfu=result["achieved_tflops"] / peak_tflops)
    if profile:
        result.update(profile_step(model, batch, point.device))
    return result


def step_flops(model: Any, batch: dict[str, Any]) -> float:
    """Model FLOPs of one training step (forward and backward of every network call, counted by
    torch.utils.flop_counter on the uncompiled networks; the optimiser and element-wise ops are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    from models.base_model import unwrap

    networks = model.networks()
    for name, net in networks.items():
        setattr(model, f"net{name}", unwrap(net))
    try:
        with FlopCounterMode(display=False) as counter:
            model.set_input(batch)
            model.optimize_parameters()
    finally:
        for name, net in networks.items():
            setattr(model, f"net{name}", net)
    return float(counter.get_total_flops())


# bf16 dense tensor-core peaks (vendor data sheets, SXM parts) for the model FLOPs utilisation
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "4090": 165.0}


def bf16_peak_tflops(device: str, given: float | None) -> float | None:
    """``--peak_tflops`` if given, else the data-sheet bf16 dense peak of a known GPU, else None (no MFU)."""
    if given:
        return given
    if device != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


def measure_loading(dataroot: str, size: int, batch_size: int, num_threads: int, images: int) -> dict[str, Any]:
    """Iterate the real training DataLoader (no model) for about ``images`` samples after the first batch."""
    from data import create_dataset
    from options.train_options import TrainOptions

    with tempfile.TemporaryDirectory() as checkpoints_dir:
        opt = TrainOptions().parse(
            ["--dataroot", dataroot, "--model", "insta_gan", "--name", "benchmark", "--checkpoints_dir",
             checkpoints_dir, "--gpu_ids", "-1", "--display_id", "0", "--load_size", str(size), "--crop_size",
             str(size), "--batch_size", str(batch_size), "--num_threads", str(num_threads), "--skip_data_check"],
            save=False, show=False)
    with contextlib.redirect_stdout(sys.stderr):
        loader = create_dataset(opt)
    stream = endless(loader)
    start = time.perf_counter()
    next(stream)  # worker start-up is not throughput: time from the second batch on
    first_batch_s = time.perf_counter() - start
    loaded, start = 0, time.perf_counter()
    while loaded < images:
        loaded += len(next(stream)["A"])
    seconds = time.perf_counter() - start
    return {"load_images_per_s": loaded / seconds, "load_first_batch_s": first_batch_s, "load_images": loaded}


def endless(loader: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Batches of epoch after epoch."""
    while True:
        yield from loader


def run_worker(spec: dict[str, Any], result_path: str) -> int:
    """Entry point of a measurement subprocess: one measurement, written to ``result_path`` as JSON."""
    torch.set_num_threads(spec["threads"])
    if spec["kind"] == "train":
        point = Point(**spec["point"])
        result = measure_training(point, spec["steps"], spec["warmup"], spec["profile"],
                                  bf16_peak_tflops(point.device, spec.get("peak_tflops")))
    else:
        result = measure_loading(spec["dataroot"], spec["size"], spec["batch_size"], spec["num_threads"],
                                 spec["images"])
    Path(result_path).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------- orchestration (parent process)

def run_in_fresh_process(spec: dict[str, Any], threads: int) -> dict[str, Any]:
    """Run one measurement in a new Python process; on failure return {'error': last line of its stderr}."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as work:
        result_path = Path(work) / "result.json"
        command = [sys.executable, "-m", MODULE, "--worker", json.dumps(spec), "--worker_result", str(result_path)]
        done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
        if done.returncode == 0 and result_path.is_file():
            return json.loads(result_path.read_text())
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return {"error": lines[-1] if lines else f"worker exited with status {done.returncode}"}


def loading_dataroot(args: argparse.Namespace, size: int, images: int) -> str:
    """``--dataroot`` if given, else shapes data of this size generated once into ``--data_cache``."""
    if args.dataroot:
        return args.dataroot
    from datasets.make_shapes_dataset import make_shapes_dataset

    out = Path(args.data_cache) / f"shapes_{size}_n{images}"
    make_shapes_dataset(out, size=size, n_train=images, n_test=0, workers=max(1, args.threads))
    return str(out)


def run_grid(grid: Grid, points: list[Point], args: argparse.Namespace,
             on_row: Callable[[list[dict[str, Any]]], None] = lambda rows: None) -> list[dict[str, Any]]:
    """One row per point; ``on_row`` sees the rows so far after each point (a killed run keeps them)."""
    rows: list[dict[str, Any]] = []
    loading: dict[tuple[int, int], dict[str, Any]] = {}
    for index, point in enumerate(points, 1):
        print(f"[{index}/{len(points)}] {point.label()} ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        spec = {"kind": "train", "point": asdict(point), "steps": grid.steps, "warmup": grid.warmup,
                "profile": args.profile, "threads": args.threads, "peak_tflops": args.peak_tflops}
        row = {**asdict(point), "ins_max": point.ins_max, "one_step": point.one_step, "steps": grid.steps,
               "warmup": grid.warmup, "threads": args.threads, "load_average_1min": load_before}
        row.update(run_in_fresh_process(spec, args.threads))
        row["load_average_1min_after"] = os.getloadavg()[0]
        if not args.no_loading:
            key = (point.size, point.batch_size)
            if key not in loading:
                dataroot = loading_dataroot(args, point.size, grid.loading_images)
                loading[key] = run_in_fresh_process(
                    {"kind": "load", "dataroot": dataroot, "size": point.size, "batch_size": point.batch_size,
                     "num_threads": args.num_threads, "images": grid.loading_images, "threads": args.threads},
                    args.threads)
            row.update({f"load_{k}" if k == "error" else k: v for k, v in loading[key].items()})
            row["load_workers"] = args.num_threads
            if "images_per_s" in row and "load_images_per_s" in row:
                row["load_to_train_ratio"] = row["load_images_per_s"] / row["images_per_s"]
        rows.append(row)
        on_row(rows)
    return rows


def machine_info(threads: int) -> dict[str, Any]:
    info = {"cpu": cpu_model_name(), "logical_cpus": os.cpu_count(), "threads": threads,
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


# ---------------------------------------------------------------- reporting

COLUMNS = (("model", "model", "{}"), ("size", "size", "{}"), ("N", "instances", "{}"), ("ins_max", "ins_max", "{}"),
           ("ins_per", "ins_per", "{}"), ("batch", "batch_size", "{}"), ("device", "device", "{}"),
           ("amp", "precision", "{}"), ("ch_last", "channels_last", "{}"), ("compile", "compile", "{}"),
           ("ngf/ndf/blk", "nets", "{}"),
           ("s/step", "seconds_per_step", "{:.3f}"), ("steps/s", "steps_per_s", "{:.3f}"),
           ("img/s", "images_per_s", "{:.2f}"), ("TFLOP/s", "achieved_tflops", "{:.3f}"), ("MFU", "mfu", "{:.1%}"),
           ("peak MiB", "peak_memory_mib", "{:.0f}"),
           ("load img/s", "load_images_per_s", "{:.1f}"), ("load/train", "load_to_train_ratio", "{:.1f}"),
           ("load avg before/after", "load", "{:.1f}"))


def cell(row: dict[str, Any], key: str, fmt: str) -> str:
    if key == "nets":
        return f"{row['ngf']}/{row['ndf']}/{row['n_blocks_G']}"
    if key == "load":  # 1-minute load average of the machine: other processes slow the measurement down
        after = row.get("load_average_1min_after")
        return fmt.format(row["load_average_1min"]) + ("" if after is None else "/" + fmt.format(after))
    if key in ("channels_last", "compile"):
        return "on" if row.get(key) else "off"
    if key == "model":   # reports written before the model axis measured InstaGAN only
        return row.get(key, "insta_gan")
    value = row.get(key)
    return "-" if value is None else fmt.format(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, one row per point; failed measurements are listed below it."""
    header = [name for name, _, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(row, key, fmt) for _, key, fmt in COLUMNS) + " |" for row in rows]
    for row in rows:
        for key in ("error", "load_error"):
            if key in row:
                lines.append(f"{key.replace('_', ' ')} at {Point(**point_fields(row)).label()}: {row[key]}")
    return "\n".join(lines)


def point_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in Point.__dataclass_fields__ if name in row}


def format_top_ops(rows: list[dict[str, Any]]) -> str:
    blocks = []
    for row in rows:
        if "top_ops" not in row:
            continue
        label = Point(**point_fields(row)).label()
        if "stages" in row:
            lines = [f"stages of one profiled step ({row['profiled_step_ms']:.0f} ms) at {label}:"]
            lines += [f"  {stage['percent']:5.1f}%  {stage['ms']:9.1f} ms  {stage['stage']}" for stage in row["stages"]]
            blocks.append("\n".join(lines))
        lines = [f"top ops by self CPU time, one step at {label}:"]
        lines += [f"  {op['percent']:5.1f}%  {op['self_cpu_ms']:9.1f} ms  {op['calls']:6d} calls  {op['op']}"
                  for op in row["top_ops"]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def plot_memory(rows: list[dict[str, Any]], path: str) -> None:
    """Peak memory vs instances per image: sequential (ins_per 2) against one step (ins_per = ins_max)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    good = [row for row in rows if "peak_memory_mib" in row]
    series = {"sequential (ins_per 2, ins_max = N)": [r for r in good if r["ins_per"] == 2],
              "one step (ins_per = ins_max = N)": [r for r in good if r["ins_per"] == r["instances"]]}
    if not any(len(points) > 1 for points in series.values()):
        raise BenchmarkError("--plot needs points that differ only in --instances (e.g. --grid memory)")
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, points in series.items():
        points = sorted(points, key=lambda r: r["instances"])
        axes.plot([r["instances"] for r in points], [r["peak_memory_mib"] for r in points], marker="o", label=label)
    first = good[0]
    kind = "CUDA max allocated" if first["memory_kind"] == "cuda_max_memory_allocated" else "peak RSS"
    axes.set_xlabel("instances per image (N)")
    axes.set_ylabel(f"{kind} (MiB)")
    axes.set_xscale("log", base=2)
    axes.set_xticks(sorted({r["instances"] for r in good}), labels=[str(n) for n in sorted({r["instances"]
                                                                                             for r in good})])
    axes.set_ylim(bottom=0)
    axes.set_title(f"InstaGAN training step, {first['size']}x{first['size']} px, batch {first['batch_size']}, "
                   f"ngf {first['ngf']} / {first['n_blocks_G']} blocks, {first['device']}", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_json(path: str, report: dict[str, Any]) -> None:
    """Atomically: a run killed while writing leaves the previous point's report, never half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, json.dumps(report, indent=1) + "\n")


# ---------------------------------------------------------------- command line

def ins_per_value(text: str) -> int | str:
    if text == "max":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an integer nor 'max'") from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    grids = named_grids()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="grids:\n" + "\n".join(f"  {name}: {grid.description}"
                                                                   for name, grid in grids.items()))
    parser.add_argument("--grid", choices=sorted(grids), default=None, help="named grid to run")
    parser.add_argument("--quick", action="store_true", help="same as --grid quick")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this file")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch CPU threads of each measurement process (default: all cores)")
    parser.add_argument("--num_threads", type=int, default=2,
                        help="DataLoader worker processes for the loading measurement (default: %(default)s)")
    axes = parser.add_argument_group("axes (replace the named grid's values)")
    axes.add_argument("--sizes", type=int, nargs="+", help="image sides in pixels (multiples of 4, >= 32)")
    axes.add_argument("--instances", type=int, nargs="+", help="instances per image")
    axes.add_argument("--ins_per", type=ins_per_value, nargs="+",
                      help="instances per sequential step; 'max' = all at once (the one-step variant)")
    axes.add_argument("--batch_sizes", type=int, nargs="+", help="images per batch")
    axes.add_argument("--precisions", nargs="+", choices=PRECISIONS, help="--amp values")
    axes.add_argument("--channels_last", choices=["off", "on", "both"], default=None, help="memory format")
    axes.add_argument("--compile", choices=["off", "on", "both"], default=None, help="torch.compile the networks")
    axes.add_argument("--models", nargs="+", choices=["insta_gan", "cycle_gan"],
                      help="models to train (cycle_gan ignores the masks: the baseline's step rate beside InstaGAN's)")
    axes.add_argument("--device", nargs="+", choices=["cpu", "cuda"], help="devices (default: the grid's)")
    axes.add_argument("--ngf", type=int, help="generator width (default: the grid's; mostly the project's 64)")
    axes.add_argument("--ndf", type=int, help="discriminator width (default: the grid's)")
    axes.add_argument("--n_blocks_G", type=int, help="ResNet blocks per generator encoder (default: the grid's)")
    runs = parser.add_argument_group("measurement")
    runs.add_argument("--steps", type=int, help="timed optimize_parameters() calls per point")
    runs.add_argument("--warmup", type=int, help="untimed calls before timing")
    parser.add_argument("--plot", default=None,
                        help="also plot peak memory vs instances (sequential vs one step) to this PNG")
    parser.add_argument("--from_json", default=None,
                        help="measure nothing: print the table (and --plot) of a JSON file written by --json")
    runs.add_argument("--profile", action="store_true",
                      help="profile one extra step per point: time per stage and the top ops by self CPU time")
    runs.add_argument("--no_loading", action="store_true", help="skip the data-loading measurement")
    runs.add_argument("--peak_tflops", type=float, default=None,
                      help="the device's bf16 dense peak for the MFU column (default: known GPUs' data sheets)")
    runs.add_argument("--loading_images", type=int, help="images to load per loading measurement")
    runs.add_argument("--dataroot", default=None,
                      help="dataset for the loading measurement (default: generate shapes data per size)")
    runs.add_argument("--data_cache", default=str(Path(tempfile.gettempdir()) / "instagan_benchmark_data"),
                      help="where generated shapes data is kept between runs (default: %(default)s)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker_result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and args.grid not in (None, "quick"):
        parser.error(f"--quick and --grid {args.grid} contradict each other; give one")
    args.grid = "quick" if args.quick else args.grid
    if args.grid is None and args.worker is None and args.from_json is None:
        parser.error("choose a grid: --quick or --grid " + "|".join(sorted(grids)))
    for name in ("threads", "steps", "loading_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1 (got {value})")
    if args.warmup is not None and args.warmup < 0 or args.num_threads < 0:
        parser.error("--warmup and --num_threads must not be negative")
    return args


def report_from_json(path: str, plot: str | None) -> int:
    """Print the tables of a ``--json`` report, or of a file collecting several as ``{"runs": {name: report}}``;
    ``plot`` draws the memory plot from the (first) report of the memory grid."""
    try:
        data = json.loads(Path(path).read_text())
        reports = list(data["runs"].values()) if "runs" in data else [data]
        tables = [(report["command"], format_table(report["rows"])) for report in reports]
    except OSError as err:
        print(f"error: --from_json {path}: cannot read it ({err.strerror or err})", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        print(f"error: --from_json {path}: not a report written by --json ({err!r})", file=sys.stderr)
        return 2
    print("\n\n".join(f"{command}\n\n{table}" for command, table in tables))
    if plot:
        memory = [report for report in reports if report.get("grid") == "memory"] or reports
        try:
            plot_memory(memory[0]["rows"], plot)
        except BenchmarkError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return run_worker(json.loads(args.worker), args.worker_result)
    if args.from_json is not None:
        return report_from_json(args.from_json, args.plot)
    grid = override_grid(named_grids()[args.grid], args)
    points = grid_points(grid)
    try:
        check_points(points)
    except BenchmarkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    started = time.time()

    def save(rows: list[dict[str, Any]]) -> None:
        if args.json:
            write_json(args.json, {"grid": args.grid, "description": named_grids()[args.grid].description,
                                   "command": " ".join(["python", "-m", MODULE, *(argv or sys.argv[1:])]),
                                   "machine": machine_info(args.threads), "steps": grid.steps,
                                   "warmup": grid.warmup, "points": len(points), "complete": len(rows) == len(points),
                                   "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
                                   "wall_seconds": time.time() - started, "rows": rows})

    rows = run_grid(grid, points, args, on_row=save)
    table = format_table(rows)
    print(table)
    ops = format_top_ops(rows)
    if ops:
        print("\n" + ops)
    if args.plot:
        try:
            plot_memory(rows, args.plot)
        except BenchmarkError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    failed = sum(1 for row in rows if "error" in row or "load_error" in row)
    if failed:
        print(f"{failed} of {len(rows)} points failed; see the messages under the table", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
