"""The shapes benchmark: InstaGAN against CycleGAN (ablations, options) with the same budget, judged against the
ground truth of the shapes test split.

    python -m scripts.shapes_benchmark --minutes 10                 # default rows, ~70 min on a 2-core CPU
    python -m scripts.shapes_benchmark --minutes 2 --rows instagan cyclegan --seeds 0 --out /tmp/quick.md
    python -m scripts.shapes_benchmark --task style --minutes 6      # OP-GAN vs CycleGAN, day <-> night shapes
    python -m scripts.shapes_benchmark --task style_skew --minutes 6 # the same, each domain mostly one kind

Each row trains with train.py for the same wall-clock budget (``--max_minutes``; ``--steps`` for equal steps),
translates both held-out test folders with test.py and scores A->B and B->A with evaluate.py against the
targets (``testA_target``: each test scene with its objects' kinds swapped). The main rows (``MAIN_ROWS``) run
once per ``--seeds`` and report mean +- spread (half the range), as do the rows named by ``--seeded_rows``; the
others run with the first seed. The tables, the commands and a figure of sample translations go to
``docs/shapes_benchmark.md``, the runs' records to its ``.json``: ``--reuse_report`` takes the runs an earlier
report recorded instead of training them again. Run it alone: a second torch process on the same cores slows
both several times.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from datasets.make_shapes_dataset import in_domain_references
from datasets.shapes_style import hue_kept_references
from evaluate import evaluate_results, summarize_runs
from util.checkpoint import STATE_FILE
from util.domain_classifier import ClassifierSettings
from util.machine import cpu_model_name

ROOT = Path(__file__).resolve().parents[1]
DIRECTIONS = ("AtoB", "BtoA")

# Settings measured to learn the most within a short CPU budget (see docs/shapes_benchmark.md). The main rows keep
# the paper's instance norm; the *_batch_norm rows show the alternative (tested with --eval).
NETS = "--ngf 32 --ndf 32 --n_blocks_G 3"
TRAIN = "--batch_size 4 --amp bf16 --niter 1000 --niter_decay 0 --display_id 0 --print_freq 400"
INSTAGAN = "--ins_max 4 --ins_per 2"
ONE_STEP = "--ins_max 4 --ins_per 4"   # InstaGAN translating all instance slots at once
OPGAN_GRID = "--ss_grid 2"
FINE_S = "--ss_layers 1"   # S's maps at half the patch's resolution (16x16 for a 32-pixel patch), not an eighth
CONTRASTIVE_FINE = f"--ss_registration contrastive {FINE_S}"   # kept S's loss alive on the skewed pair (op_gan.md)
NCE_FINE = f"--ss_registration nce {FINE_S}"   # S's registration by features (op_gan.md)
FULL_S = "--ss_stride 1"   # S's maps at the patch's full resolution (32x32 for a 32-pixel patch)


def opgan_row(flags: str = "", lambda_ss: float = 1) -> tuple[str, str, str]:
    """An OP-GAN row: CycleGAN's flags, L_s weighted ``lambda_ss`` on the default S's grid, then ``flags``."""
    return ("op_gan", "instance", f"--lambda_idt 1 --lambda_ss {lambda_ss:g} {OPGAN_GRID} {flags}".rstrip())


ROWS = {  # row -> (model, norm, extra training flags)
    "instagan": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 1"),
    "cyclegan": ("cycle_gan", "instance", "--lambda_idt 1"),
    "instagan_no_ctx": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 0"),
    "instagan_one_step": ("insta_gan", "instance", f"{ONE_STEP} --lambda_ctx 1"),
    "instagan_batch_norm": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 1"),
    "cyclegan_batch_norm": ("cycle_gan", "batch", "--lambda_idt 1"),
    "instagan_ctx5": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 5"),
    "instagan_step_idle": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 1 --step_idle_params"),
    "instagan_compose": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 1 --compose_output"),
    "instagan_batch_norm_compose": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 1 --compose_output"),
    "instagan_batch_norm_lr5e-4": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 1 --lr 0.0005"),
    "instagan_batch_norm_ctx3": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 3"),
    "instagan_batch_norm_ctx10": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 10"),
    "instagan_batch_norm_lr5e-4_ctx10": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 10 --lr 0.0005"),
    "instagan_batch_norm_pool0": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 1 --pool_size 0"),
    "instagan_batch_norm_vanilla": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 1 --gan_mode vanilla"),
    "instagan_batch_norm_ctx3_idt5": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 3 --lambda_idt 5"),
    "instagan_batch_norm_ctx3_idt10": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 3 --lambda_idt 10"),
    "instagan_batch_norm_ctx3_idt10_pool0": ("insta_gan", "batch",
                                             f"{INSTAGAN} --lambda_ctx 3 --lambda_idt 10 --pool_size 0"),
    "instagan_batch_norm_compose_ctx3_idt10": ("insta_gan", "batch",
                                               f"{INSTAGAN} --lambda_ctx 3 --lambda_idt 10 --compose_output"),
    "instagan_batch_norm_ctx3_idt10_idtmask0.1": ("insta_gan", "batch",
                                                  f"{INSTAGAN} --lambda_ctx 3 --lambda_idt 10 --idt_mask_weight 0.1"),
    "instagan_batch_norm_ctx3_idt10_idtmask0.1_one_step": (
        "insta_gan", "batch", f"{ONE_STEP} --lambda_ctx 3 --lambda_idt 10 --idt_mask_weight 0.1"),
    "instagan_batch_norm_ctx3_idt5_idtmask0.2_one_step": (
        "insta_gan", "batch", f"{ONE_STEP} --lambda_ctx 3 --lambda_idt 5 --idt_mask_weight 0.2"),
    "instagan_batch_norm_compose_ctx3_idt10_idtmask0.1_one_step": (
        "insta_gan", "batch",
        f"{ONE_STEP} --lambda_ctx 3 --lambda_idt 10 --idt_mask_weight 0.1 --compose_output"),
    "instagan_batch_norm_vanilla_ctx3_idt5_idtmask0.2_one_step": (
        "insta_gan", "batch", f"{ONE_STEP} --lambda_ctx 3 --lambda_idt 5 --idt_mask_weight 0.2 --gan_mode vanilla"),
    "instagan_num_D2": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 1 --num_D 2"),
    "instagan_num_D2_feat": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 1 --num_D 2 --lambda_feat 1"),
    # OP-GAN: CycleGAN's flags plus S; a 2x2 grid, since 3 does not divide 64 px (docs/op_gan.md)
    "opgan": opgan_row(),
    "opgan_registration": opgan_row("--ss_tasks registration"),
    "opgan_classification": opgan_row("--ss_tasks classification"),
    "opgan_contrastive": opgan_row("--ss_registration contrastive"),
    "opgan_contrastive_ss10": opgan_row("--ss_registration contrastive", lambda_ss=10),
    "opgan_contrastive_fine": opgan_row(CONTRASTIVE_FINE),
    "opgan_fine": opgan_row(FINE_S),
    "opgan_contrastive_fine_registration": opgan_row(f"{CONTRASTIVE_FINE} --ss_tasks registration"),
    "opgan_fine_classification": opgan_row(f"{FINE_S} --ss_tasks classification"),
    "opgan_contrastive_fine_ss3": opgan_row(CONTRASTIVE_FINE, lambda_ss=3),
    "opgan_contrastive_full": opgan_row(f"--ss_registration contrastive {FULL_S}"),
    "opgan_nce_fine": opgan_row(NCE_FINE),
    "opgan_nce_fine_registration": opgan_row(f"{NCE_FINE} --ss_tasks registration"),
    "opgan_nce_fine_ss2": opgan_row(NCE_FINE, lambda_ss=2),
    "opgan_nce_fine_ss4": opgan_row(NCE_FINE, lambda_ss=4),
    "opgan_nce_fine_ss2_registration": opgan_row(f"{NCE_FINE} --ss_tasks registration", lambda_ss=2),
    "opgan_fine_ss2_classification": opgan_row(f"{FINE_S} --ss_tasks classification", lambda_ss=2),
    "opgan_nce_fine_ss4_registration": opgan_row(f"{NCE_FINE} --ss_tasks registration", lambda_ss=4),
    "opgan_fine_ss4_classification": opgan_row(f"{FINE_S} --ss_tasks classification", lambda_ss=4),
}
MAIN_ROWS = ("instagan", "cyclegan", "opgan")   # these and --seeded_rows run once per --seeds; the others once
LABELS = {
    "instagan": "InstaGAN (sequential, ins_per 2)",
    "cyclegan": "CycleGAN",
    "instagan_no_ctx": "InstaGAN without context loss",
    "instagan_one_step": "InstaGAN one-step (ins_per = ins_max)",
    "instagan_batch_norm": "InstaGAN, batch norm",
    "cyclegan_batch_norm": "CycleGAN, batch norm",
    "instagan_ctx5": "InstaGAN, context weight x5 (lambda_ctx 5)",
    "instagan_step_idle": "InstaGAN, idle D stepped by momentum (--step_idle_params, as the authors' code)",
    "instagan_compose": "InstaGAN, output composed through the masks (--compose_output, not in the paper)",
    "instagan_batch_norm_compose": "InstaGAN, batch norm, output composed through the masks (--compose_output)",
    "instagan_batch_norm_lr5e-4": "InstaGAN, batch norm, learning rate 5e-4 (2.5x the paper's)",
    "instagan_batch_norm_ctx3": "InstaGAN, batch norm, context weight x3 (--lambda_ctx 3)",
    "instagan_batch_norm_ctx10": "InstaGAN, batch norm, context weight x10 (--lambda_ctx 10)",
    "instagan_batch_norm_lr5e-4_ctx10": "InstaGAN, batch norm, --lambda_ctx 10, learning rate 5e-4",
    "instagan_batch_norm_pool0": "InstaGAN, batch norm, no image pool (--pool_size 0)",
    "instagan_batch_norm_vanilla": "InstaGAN, batch norm, cross-entropy GAN loss (--gan_mode vanilla)",
    "instagan_batch_norm_ctx3_idt5": "InstaGAN, batch norm, --lambda_ctx 3, identity weight x5 (--lambda_idt 5)",
    "instagan_batch_norm_ctx3_idt10": "InstaGAN, batch norm, --lambda_ctx 3, identity weight x10 (--lambda_idt 10)",
    "instagan_batch_norm_ctx3_idt10_pool0": "InstaGAN, batch norm, --lambda_ctx 3 --lambda_idt 10, no image pool "
                                            "(--pool_size 0)",
    "instagan_batch_norm_compose_ctx3_idt10": "InstaGAN, batch norm, --lambda_ctx 3 --lambda_idt 10, output "
                                              "composed through the masks (--compose_output)",
    "instagan_batch_norm_ctx3_idt10_idtmask0.1": "InstaGAN, batch norm, --lambda_ctx 3 --lambda_idt 10, the masks' "
                                                 "identity at the paper's weight (--idt_mask_weight 0.1)",
    "instagan_batch_norm_ctx3_idt10_idtmask0.1_one_step": "InstaGAN, batch norm, --lambda_ctx 3 --lambda_idt 10 "
                                                          "--idt_mask_weight 0.1, one-step (ins_per = ins_max)",
    "instagan_batch_norm_ctx3_idt5_idtmask0.2_one_step": "InstaGAN, batch norm, --lambda_ctx 3 --lambda_idt 5 "
                                                         "--idt_mask_weight 0.2, one-step (ins_per = ins_max)",
    "instagan_batch_norm_compose_ctx3_idt10_idtmask0.1_one_step": "InstaGAN, batch norm, --lambda_ctx 3 "
                                                                  "--lambda_idt 10 --idt_mask_weight 0.1, one-step, "
                                                                  "output composed through the masks",
    "instagan_batch_norm_vanilla_ctx3_idt5_idtmask0.2_one_step": "InstaGAN, batch norm, --lambda_ctx 3 "
                                                                 "--lambda_idt 5 --idt_mask_weight 0.2, one-step, "
                                                                 "cross-entropy GAN loss (--gan_mode vanilla)",
    "instagan_num_D2": "InstaGAN, two-scale discriminators (--num_D 2, pix2pixHD's)",
    "instagan_num_D2_feat": "InstaGAN, --num_D 2 and mean-feature matching (--lambda_feat 1)",
    "opgan": "OP-GAN (CycleGAN + self-supervised S, both tasks)",
    "opgan_registration": "OP-GAN, content registration only",
    "opgan_classification": "OP-GAN, domain classification only",
    "opgan_contrastive": "OP-GAN, contrastive registration (--ss_registration contrastive, not in the paper)",
    "opgan_contrastive_ss10": "OP-GAN, contrastive registration, L_s weighted x10 (--lambda_ss 10)",
    "opgan_contrastive_fine": "OP-GAN, contrastive registration, S with one stride-2 layer (--ss_layers 1: "
                              "16x16 maps per 32-pixel patch)",
    "opgan_fine": "OP-GAN, S with one stride-2 layer (--ss_layers 1), the paper's registration",
    "opgan_contrastive_fine_registration": "OP-GAN, contrastive registration only, --ss_layers 1",
    "opgan_fine_classification": "OP-GAN, domain classification only, --ss_layers 1",
    "opgan_contrastive_fine_ss3": "OP-GAN, contrastive registration, --ss_layers 1, L_s weighted x3 (--lambda_ss 3)",
    "opgan_contrastive_full": "OP-GAN, contrastive registration, S at full resolution (--ss_stride 1: 32x32 maps per "
                              "32-pixel patch)",
    "opgan_nce_fine": "OP-GAN, registration by patch-wise InfoNCE of S's content features (--ss_registration nce), "
                      "--ss_layers 1",
    "opgan_nce_fine_registration": "OP-GAN, registration by patch-wise InfoNCE only (--ss_tasks registration), "
                                   "--ss_layers 1",
    "opgan_nce_fine_ss2": "OP-GAN, registration by patch-wise InfoNCE, --ss_layers 1, L_s weighted x2 "
                          "(--lambda_ss 2)",
    "opgan_nce_fine_ss4": "OP-GAN, registration by patch-wise InfoNCE, --ss_layers 1, L_s weighted x4 "
                          "(--lambda_ss 4)",
    "opgan_nce_fine_ss2_registration": "OP-GAN, registration by patch-wise InfoNCE only, --ss_layers 1, "
                                       "--lambda_ss 2",
    "opgan_fine_ss2_classification": "OP-GAN, domain classification only, --ss_layers 1, --lambda_ss 2",
    "opgan_nce_fine_ss4_registration": "OP-GAN, registration by patch-wise InfoNCE only, --ss_layers 1, "
                                       "--lambda_ss 4",
    "opgan_fine_ss4_classification": "OP-GAN, domain classification only, --ss_layers 1, --lambda_ss 4",
}


@dataclass(frozen=True)
class Task:
    """A shapes dataset and what its report says: the rows it runs by default and its texts."""

    dataroot: str
    make_flags: str          # python -m datasets.make_shapes_dataset flags that make it
    default_rows: tuple[str, ...]
    title: str
    data_text: str
    directions: tuple[str, str]
    figure_row: str          # the row whose test results give the figure's input column
    kinds_swapped: bool = False   # the targets swap each object's kind: the tables add the in-domain reference
    style_pair: bool = False      # day <-> night targets: the tables add the hue-kept reference


TASKS = {
    "shapes": Task("./datasets/shapes_64", "", ("instagan", "cyclegan", "instagan_no_ctx", "instagan_one_step"),
                   "Shapes benchmark: InstaGAN vs CycleGAN, judged against ground truth",
                   "ellipses <-> rectangles, 1-3 objects per image; the ground truth renders each test scene with "
                   "its objects' kinds swapped",
                   ("A -> B (ellipses to rectangles)", "B -> A (rectangles to ellipses)"), "instagan",
                   kinds_swapped=True),
    "style": Task("./datasets/shapes_style_64", "--style", ("opgan", "cyclegan", "opgan_registration",
                                                             "opgan_classification"),
                  "Style benchmark: OP-GAN vs CycleGAN, objects kept, judged against ground truth",
                  "day <-> night, ellipses and rectangles in both, 1-3 objects per image; the ground truth renders "
                  "each test scene in the other style with every object kept (kind, place, size)",
                  ("A -> B (day to night)", "B -> A (night to day)"), "opgan", style_pair=True),
    "style_skew": Task("./datasets/shapes_style_skew_64", "--style --kind_skew 0.9",
                       ("opgan", "cyclegan", "opgan_contrastive"),
                       "Skewed style benchmark: OP-GAN vs CycleGAN when each domain's training objects are mostly "
                       "one kind",
                       "day <-> night, training day objects 90% ellipses and night objects 90% rectangles, test "
                       "objects either kind at even odds, 1-3 objects per image; the ground truth renders each test "
                       "scene in the other style with every object kept (kind, place, size), so a translation "
                       "that turns objects into the target domain's common kind loses them",
                       ("A -> B (day to night)", "B -> A (night to day)"), "opgan", style_pair=True),
    "style_hue0": Task("./datasets/shapes_style_hue0_64", "--style --night_hue_shift 0", ("opgan", "cyclegan"),
                       "Style benchmark with a colour rule unpaired images show: OP-GAN vs CycleGAN",
                       "day <-> night, ellipses and rectangles in both, 1-3 objects per image, night objects the "
                       "day colours darkened with their hue kept (no hue turn, which unpaired images barely "
                       "show); the ground truth renders each test scene in the other style with every object "
                       "kept (kind, place, size)",
                       ("A -> B (day to night)", "B -> A (night to day)"), "opgan"),
}


def run(command: str, log: Path) -> None:
    """Run a recorded command (written with a plain ``python``, as the docs show it) with this interpreter."""
    print(f"$ {command}", flush=True)
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
    with log.open("w") as handle:
        subprocess.run(argv, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, check=True)


def run_name(row: str, seed: int) -> str:
    return f"shapes_{row}_seed{seed}"


def commands(row: str, seed: int, args: argparse.Namespace, name: str | None = None,
             budget: str | None = None) -> tuple[str, str]:
    """(train command, test command) of one row and seed, as the docs show them; ``name`` and ``budget``
    (train.py flags) default to the benchmark's run name and --steps / --minutes."""
    model, norm, extra = ROWS[row]
    name = name or run_name(row, seed)
    size = f"--load_size {args.size} --crop_size {args.size}"
    common = (f"--dataroot {args.dataroot} --name {name} --model {model} "
              f"--checkpoints_dir {args.workdir} {size} {args.nets} --norm {norm}")
    budget = budget or (f"--max_steps {args.steps}" if args.steps else f"--max_minutes {args.minutes}")
    train = f"python train.py {common} {extra} {TRAIN} --seed {seed} {budget} --num_threads 1"
    # Both test folders (A -> B and B -> A); the other options come from the run's train_opt.json.
    # --eval: batch norm uses the statistics gathered in training (instance norm has none, so it is a no-op).
    test = f"python test.py --name {name} --checkpoints_dir {args.workdir} --eval " \
           f"--results_dir {args.workdir}/results --num_test {args.num_test}"
    return train, test


def steps_done(workdir: Path, name: str) -> int:
    import torch

    state = torch.load(workdir / name / STATE_FILE, weights_only=True)
    return int(state["total_steps"])


def git_commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True,
                           text=True)
    return found.stdout.strip() or "unknown"


def benchmark_run(row: str, seed: int, args: argparse.Namespace) -> dict:
    """Train, test and score one row with one seed: {"row", "seed", "steps", ..., "AtoB": metrics, "BtoA": ...}."""
    train, test = commands(row, seed, args)
    name = run_name(row, seed)
    logs = Path(args.workdir) / "logs"
    saved = logs / f"{name}_metrics.json"
    results = Path(args.workdir) / "results" / name / "test_latest"
    if (args.reuse or args.rescore) and saved.is_file():
        print(f"reusing {saved}" + (", scoring its results again" if args.rescore else ""))
        record = json.loads(saved.read_text())
        if args.rescore:
            score_run(record, results, args)
            saved.write_text(json.dumps(record, indent=1, default=str))
        return record
    reported = reported_runs(args.reuse_report).get((row, seed))
    if reported is not None:
        return checked_report_run(reported, train)
    logs.mkdir(parents=True, exist_ok=True)
    origin = run_origin()   # before training: a commit made meanwhile did not train it
    started = time.time()
    run(train, logs / f"{name}_train.log")
    train_minutes = (time.time() - started) / 60
    run(test, logs / f"{name}_test.log")
    record = {"row": row, "seed": seed, "steps": steps_done(Path(args.workdir), name),
              "train_minutes": round(train_minutes, 1), "train_command": train, "test_command": test,
              **origin}
    score_run(record, results, args)
    saved.write_text(json.dumps(record, indent=1, default=str))
    return record


def reported_runs(reports: Sequence[str]) -> dict[tuple[str, int], dict]:
    """The runs recorded in earlier reports' .json files, by (row, seed), each marked with the file it came from;
    the first report naming a run wins."""
    found: dict[tuple[str, int], dict] = {}
    for report in reports:
        file = Path(report).with_suffix(".json")
        if not file.is_file():
            raise SystemExit(f"--reuse_report {report}: {file} does not exist; give a report this benchmark wrote "
                             f"(its .md or .json, e.g. docs/style_hue0_benchmark_feature_registration.md)")
        for row in json.loads(file.read_text()):
            for record in row["runs"]:
                found.setdefault((record["row"], record["seed"]), {**record, "taken_from": repo_path(file)})
    return found


def training_words(train_command: str) -> list[str]:
    """A train command's words but its --checkpoints_dir: where a run was stored does not change how it trained."""
    words = shlex.split(train_command)
    at = words.index("--checkpoints_dir")
    return words[:at] + words[at + 2:]


def checked_report_run(record: dict, train_command: str) -> dict:
    """A run taken from an earlier report, if it trained as this benchmark would train it."""
    if training_words(record["train_command"]) != training_words(train_command):
        raise SystemExit(
            f"--reuse_report: {record['taken_from']} records {record['row']} seed {record['seed']} trained with\n"
            f"    {record['train_command']}\nbut this benchmark would train it with\n    {train_command}\n"
            f"Give the options that report used (--minutes or --steps, --size, --nets, --dataroot) or leave "
            f"the report out.")
    print(f"taking {run_name(record['row'], record['seed'])} as recorded in {record['taken_from']}")
    return record


def repo_path(path: Path) -> str:
    """A path as the docs write it: relative to the repository root where it lies inside it."""
    resolved = path.resolve()
    return resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(path)


def score_run(record: dict, results: Path, args: argparse.Namespace) -> None:
    """Both directions' metrics of a run's test results, into ``record``."""
    classifier = ClassifierSettings(steps=args.classifier_steps)
    for direction in DIRECTIONS:
        metrics = evaluate_results(results, args.dataroot, direction=direction, ins_max=4, fid=False,
                                   classifier_settings=classifier, log=lambda _: None)
        metrics.pop("per_image", None)
        record[direction] = metrics


def benchmark_row(row: str, args: argparse.Namespace) -> dict:
    """All seeds of a row: {"row", "runs": [...], "AtoB": {metric: {"mean", "spread", "runs"}}, "BtoA": ...}."""
    seeds = args.seeds if row in MAIN_ROWS or row in args.seeded_rows else args.seeds[:1]
    runs = [benchmark_run(row, seed, args) for seed in seeds]
    return {"row": row, "runs": runs, **{d: summarize_runs([r[d] for r in runs]) for d in DIRECTIONS}}


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "inf" if value == float("inf") else f"{value:.{digits}f}"
    return str(value)


IN_DOMAIN_LABEL = "reference: every target object drawn at the nearest angle the target domain's training images use"
HUE_KEPT_LABEL = ("reference: the target with every object in its input's hue (right but for the hue turn, which "
                  "unpaired images barely show)")
COLUMNS = (  # (metric of evaluate.py, column title, digits, only models with masks)
    ("target_psnr", "target PSNR dB", 2, False),
    ("true_objects_target_psnr", "target PSNR with true objects dB", 2, False),
    ("target_ssim", "target SSIM", 3, False),
    ("object_colour_error", "object colour error", 3, False),
    ("object_psnr", "object PSNR dB", 2, False),
    ("shape_change_score", "shape change", 3, False),
    ("target_background_psnr", "background PSNR dB", 2, False),
    ("shape_score", "shape score", 3, True),
    ("target_mask_iou", "target-mask IoU", 3, True),
    ("object_kind_score", "object kind", 3, False),
    ("object_position_iou", "object position IoU", 3, False),
    ("domain_score", "domain score", 3, False),
)


def cell(summary: dict, key: str, digits: int) -> str:
    """mean, or mean +- spread over seeds."""
    if key not in summary:
        return "n/a"
    entry = summary[key]
    if entry["runs"] < 2 or entry["mean"] == float("inf"):
        return fmt(entry["mean"], digits)
    return f"{fmt(entry['mean'], digits)} ± {fmt(entry['spread'], digits)}"


def task_references(task: Task, dataroot: str, direction: str) -> list[tuple[str, dict]]:
    """The reference rows a task's ground truth allows: (label, {metric: value}) for the input folder of
    ``direction``."""
    domain, references = direction[0], []
    if task.kinds_swapped and (values := in_domain_references(Path(dataroot), domain)) is not None:
        references.append((IN_DOMAIN_LABEL, values))
    if task.style_pair and (values := hue_kept_references(Path(dataroot), domain)) is not None:
        references.append((HUE_KEPT_LABEL, values))
    return references


def table(results: list[dict], direction: str, extra_references: Sequence[tuple[str, dict]] = ()) -> str:
    head = "| model | seeds | steps (min) | " + " | ".join(title for _, title, _, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS))]
    for r in results:
        masks = ROWS[r["row"]][0] == "insta_gan"
        runs = r["runs"]
        steps = " / ".join(f"{run['steps']} ({run['train_minutes']})" for run in runs)
        cells = [cell(r[direction], key, digits) if masks or not needs_masks else "n/a"
                 for key, _, digits, needs_masks in COLUMNS]
        lines.append(f"| {LABELS[r['row']]} | {' '.join(str(run['seed']) for run in runs)} | {steps} | "
                     + " | ".join(cells) + " |")
    lines += reference_rows(results[0]["runs"][0][direction], extra_references) if results else []
    return "\n".join(lines)


def reference_rows(metrics: dict, extra_references: Sequence[tuple[str, dict]] = ()) -> list[str]:
    """What doing nothing scores (the input as output), the flat-colour background floors, the target's own
    background, then the task's own references (``extra_references``: (label, {metric: value}))."""
    identity = {key: metrics.get(f"identity_{key}") for key, _, _, _ in COLUMNS}
    identity["target_background_psnr"] = float("inf")
    rows = [("reference: the input unchanged", identity),
            ("reference: backgrounds painted in the dataset's mean colour",
             {"target_background_psnr": metrics.get("background_floor_dataset_colour")}),
            ("reference: backgrounds painted in each image's mean colour",
             {"target_background_psnr": metrics.get("background_floor_image_colour")}),
            ("reference: the target itself", {"target_background_psnr": metrics.get("background_target_itself")})]
    rows += list(extra_references)
    return [f"| *{label}* | | | " + " | ".join(fmt(values.get(key), digits) for key, _, digits, _ in COLUMNS) + " |"
            for label, values in rows]


FIGURE_COLUMNS = {"cyclegan": "CycleGAN", "instagan": "InstaGAN", "instagan_batch_norm": "InstaGAN BN",
                  "instagan_batch_norm_ctx3_idt10": "IG BN ctx3 idt10",
                  "instagan_batch_norm_compose_ctx3_idt10": "IG BN c3 i10 comp.",
                  "instagan_compose": "InstaGAN comp.", "instagan_batch_norm_compose": "IG BN + comp.",
                  "opgan": "OP-GAN", "opgan_registration": "OP-GAN reg.", "opgan_classification": "OP-GAN cls.",
                  "opgan_contrastive": "OP-GAN contr."}


def sample_figure(args: argparse.Namespace, path: Path, rows: list[str], count: int = 6, scale: int = 2) -> None:
    """Rows of: input, target, each model's translation (first seed), InstaGAN's masks; A -> B test images."""
    results = Path(args.workdir) / "results"
    seed = args.seeds[0]
    first = TASKS[args.task].figure_row
    shown = [row for row in FIGURE_COLUMNS if row in rows]
    columns = [(first, "real_A_img", "input"), (None, "target", "target")]
    columns += [(row, "fake_B_img", FIGURE_COLUMNS[row]) for row in shown]
    if first == "instagan":
        columns += [("instagan", "fake_B_seg", "InstaGAN masks")]
    image_dir = results / run_name(first, seed) / "test_latest" / "images"
    stems = sorted(p.name[: -len("_real_A_img.png")] for p in image_dir.glob("*_real_A_img.png"))[:count]
    if not stems:  # --reuse where the test results are gone: keep the figure drawn when they were there
        return
    cell_side = args.size * scale
    canvas = Image.new("RGB", (cell_side * len(columns), 16 + cell_side * len(stems)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, (row, visual, title) in enumerate(columns):
        draw.text((col * cell_side + 4, 2), title, fill="black")
        for index, stem in enumerate(stems):
            file = (Path(args.dataroot) / "testA_target" / f"{stem}.png" if row is None else
                    results / run_name(row, seed) / "test_latest" / "images" / f"{stem}_{visual}.png")
            if file.is_file():
                with Image.open(file) as image:
                    canvas.paste(image.convert("RGB").resize((cell_side, cell_side), Image.NEAREST),
                                 (col * cell_side, 16 + index * cell_side))
    canvas.save(path)


def run_origin() -> dict[str, str]:
    """Where, when and at which commit a run trains, for its record (a report may be written later, elsewhere);
    read before training starts."""
    return {"commit": git_commit(), "machine": machine(), "trained": time.strftime("%Y-%m-%d")}


def spoken_list(items: list) -> str:
    """Items as a sentence names them: "0", "0 and 1", "0, 1, 2 and 3"."""
    words = [str(item) for item in items]
    return " and ".join(filter(None, [", ".join(words[:-1]), words[-1]]))


def provenance(runs: list[dict]) -> str:
    """The machines, days and commits the runs trained on, as their records say: runs reused with --reuse or
    --rescore may come from another machine or day than the report."""
    machines = sorted({run.get("machine", machine()) for run in runs})
    commits = sorted({run.get("commit", git_commit()) for run in runs})
    days = sorted({run["trained"] for run in runs if "trained" in run})
    if len(days) == 0 or any("trained" not in run for run in runs):
        days.append("an unrecorded day")
    return (f"Machine: {'; '.join(machines)}. Trained {', '.join(days)} at commit {', '.join(commits)}; report "
            f"written {time.strftime('%Y-%m-%d')}.")


def write_report(results: list[dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = out.with_suffix(".png")
    rows = [r["row"] for r in results]
    task = TASKS[args.task]
    if task.figure_row in rows:
        sample_figure(args, figure, rows)
    lines = [
        f"# {task.title}",
        "",
        (f"Built-in shapes data ({args.size}x{args.size}, {task.data_text}), every "
         f"model trained for the same budget ({budget_text(args)}) on this machine, then both held-out test "
         f"folders ({args.num_test} images each) translated and scored with `evaluate.py` against the ground "
         f"truth (`testA_target/`, `testB_target/`). "
         f"Rows with several seeds (the seeds column): mean ± spread (half the range) over seeds "
         f"{spoken_list(args.seeds)}; other rows one seed. Metrics: target PSNR (pooled over all "
         f"pixels) and SSIM of the whole image against the target; target PSNR with true objects = the same "
         f"output with the target's pixels within one pixel of its object masks pasted in (the most that "
         f"getting the objects right could add); object colour "
         f"error = mean over objects of the difference between the target's and the "
         f"output's mean colour inside the object's target mask (0..1); object PSNR inside the target masks; "
         f"shape change = share of the pixels inside exactly one of an object's input and target masks that the "
         f"output shows as object or background as the target does (judged by the output's own colours; the "
         f"input scores about 0, the target 1); "
         f"background PSNR against the input outside the input and target masks (the pixels that should not "
         f"change; the same pixels for every model); shape score = fraction of translated masks a classifier "
         f"calls the target kind; target-mask IoU = translated mask vs target mask; object kind = share of "
         f"objects that, read out of the output image (what stands out from the surroundings near the object), "
         f"a mask classifier calls the target's kind; object position IoU = that region vs the target mask; "
         f"domain score = fraction of "
         f"translated images an edge-based classifier calls the target domain (FID/KID skipped: no Inception "
         f"weights offline). The reference rows score the input itself as the output, flat backgrounds, the "
         f"target itself and, where the targets swap kinds, every target object drawn at the nearest angle the "
         f"target domain's training images use; in the style pair, the target with every object in its input's "
         f"hue (the day hues are drawn uniformly but for a dip where colours would not stand out, so unpaired "
         f"images show the rule's hue turn only as that dip, turned)."),
        "",
    ]
    for direction, title in zip(DIRECTIONS, task.directions, strict=True):
        lines += [f"### {title}", "", table(results, direction, task_references(task, args.dataroot, direction)), ""]
    lines += [
        provenance([run for r in results for run in r["runs"]]),
        *taken_from_text(results),
        "",
        "## Commands",
        "",
        ("Reproduce this report with the runs it takes from earlier reports (leave out --reuse_report to train "
         "them too):" if args.reuse_report else "Reproduce everything with:"),
        "",
        "    " + " ".join(["python -m datasets.make_shapes_dataset", *task.make_flags.split(), "--out", args.dataroot,
                           "--size", str(args.size)]),
        f"    {reproduce_command(args)}",
        "",
        "which runs, per row and seed:",
        "",
    ]
    for r in results:
        lines += command_lines(LABELS[r["row"]], r["runs"])
    if figure.is_file():
        lines += ["## Sample translations (A -> B, first seed)", "", f"![samples]({figure.name})", ""]
    out.write_text("\n".join(lines) + "\n" + kept_notes(out))
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {out}")


def taken_from_text(results: list[dict]) -> list[str]:
    """Report lines naming the runs taken from earlier reports (--reuse_report); none when every run trained here."""
    taken: dict[str, list[str]] = {}
    for r in results:
        for file in sorted({run.get("taken_from") for run in r["runs"]} - {None}):
            seeds = [run["seed"] for run in r["runs"] if run.get("taken_from") == file]
            taken.setdefault(file, []).append(f"{LABELS[r['row']]}, seed{'s' * (len(seeds) > 1)} {spoken_list(seeds)}")
    return [line for file, runs in taken.items() for line in ("", f"Taken as recorded in `{file}`: {'; '.join(runs)}.")]


def command_lines(label: str, runs: list[dict]) -> list[str]:
    """A report's bullet of one row: its label, then each run's train and test commands as a code block."""
    lines = [f"- {label}:", ""]
    for record in runs:
        lines += [f"      {record['train_command']}", f"      {record['test_command']}"]
    return lines + [""]


NOTES_MARKER = "<!-- written by hand below: kept when the benchmark rewrites this file -->"


def kept_notes(out: Path) -> str:
    """The hand-written reading of the numbers at the end of an existing report, so a rerun keeps it."""
    if not out.is_file() or NOTES_MARKER not in out.read_text():
        return ""
    return "\n" + NOTES_MARKER + out.read_text().split(NOTES_MARKER, 1)[1]


def budget_text(args: argparse.Namespace) -> str:
    return f"{args.steps} steps" if args.steps else f"{args.minutes} minutes of wall-clock time"


def machine() -> str:
    """Where the rows train: train.py takes the first GPU when there is one (``--gpu_ids auto``)."""
    import os

    import torch

    host = f"{cpu_model_name()}, {os.cpu_count()} cores, torch {torch.__version__}"
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}); host {host}"
    return f"{host}, CPU only"


# the options that shape a report, in the order its command shows them
REPRODUCED = ("task", "minutes", "steps", "seeds", "rows", "seeded_rows", "size", "dataroot", "workdir", "num_test",
              "nets", "classifier_steps", "out", "reuse_report")


def reproduce_command(args: argparse.Namespace) -> str:
    """The benchmark command of this report: --minutes and --dataroot always, the others where not default."""
    defaults = vars(parse_args(["--task", args.task]))
    words = ["python -m scripts.shapes_benchmark"]
    for name in REPRODUCED:
        value = getattr(args, name)
        default = "shapes" if name == "task" else defaults[name]   # the other defaults follow the task
        if name not in ("minutes", "dataroot") and value == default:
            continue
        if name == "out":
            value = repo_path(Path(value))
        text = " ".join(map(str, value)) if isinstance(value, list) else shlex.quote(str(value))
        words.append(f"--{name} {text}")
    return " ".join(words)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="shapes", choices=list(TASKS),
                        help="shapes: InstaGAN vs CycleGAN, ellipses <-> rectangles; style: OP-GAN vs CycleGAN, "
                             "day <-> night with objects kept; style_skew: the same with each domain's training "
                             "objects mostly one kind (each task has its own --dataroot, --workdir, --out and rows)")
    parser.add_argument("--minutes", type=float, default=10, help="training budget per model")
    parser.add_argument("--steps", type=int, default=0,
                        help="train every row for this many steps instead of --minutes (quality at equal steps, "
                             "unaffected by machine load)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="training seeds of the main rows (instagan, cyclegan, opgan) and --seeded_rows; other "
                             "rows use the first")
    parser.add_argument("--seed", type=int, default=None, help="one seed for every row (same as --seeds N)")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=None,
                        help="rows to run (default: the task's model, CycleGAN and the paper's two ablations)")
    parser.add_argument("--seeded_rows", nargs="+", choices=list(ROWS), default=[],
                        help="other rows that also run once per --seeds, like the main rows (a variant compared "
                             "with the baseline over seeds)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dataroot", default=None, help="default: the task's, ./datasets/shapes_64, "
                                                         "./datasets/shapes_style_64 or "
                                                         "./datasets/shapes_style_skew_64")
    parser.add_argument("--workdir", default=None, help="default: ./checkpoints/<task>_benchmark")
    parser.add_argument("--num_test", type=int, default=200)
    parser.add_argument("--nets", default=NETS, help="network size flags given to every row")
    parser.add_argument("--classifier_steps", type=int, default=ClassifierSettings.steps,
                        help="training steps of evaluate.py's domain classifiers (cached per dataset)")
    parser.add_argument("--out", default=None, help="default: docs/<task>_benchmark.md")
    parser.add_argument("--reuse", action="store_true",
                        help="take rows already measured in --workdir from their metrics json instead of retraining")
    parser.add_argument("--rescore", action="store_true",
                        help="like --reuse, but score the saved test results again (after evaluate.py changed)")
    parser.add_argument("--reuse_report", nargs="+", default=[], metavar="REPORT",
                        help="take the runs that earlier reports (e.g. docs/style_hue0_benchmark.md; their .json "
                             "holds the runs) recorded for a row and seed, as recorded, instead of training them; "
                             "each must have trained with the options given here, --workdir aside. The report "
                             "names the files and the machines and days the runs trained on")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, with the task's defaults filled in."""
    args = build_parser().parse_args(argv)
    task = TASKS[args.task]
    args.rows = args.rows or list(task.default_rows)
    args.dataroot = args.dataroot or task.dataroot
    args.workdir = args.workdir or f"./checkpoints/{args.task}_benchmark"
    args.out = args.out or str(ROOT / "docs" / f"{args.task}_benchmark.md")
    if args.seed is not None:
        args.seeds = [args.seed]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.dataroot, "trainA").is_dir():
        run(f"{sys.executable} -m datasets.make_shapes_dataset {TASKS[args.task].make_flags} --out {args.dataroot} "
            f"--size {args.size}", Path("/dev/null"))
    results = [benchmark_row(row, args) for row in args.rows]
    write_report(results, args)
    for direction in DIRECTIONS:
        print(f"{direction}:\n{table(results, direction)}")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
