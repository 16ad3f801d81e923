"""The shapes benchmark: InstaGAN against CycleGAN (and two ablations) with the same budget, evaluated alike.

    python -m scripts.shapes_benchmark --minutes 10                 # all rows, ~45 min on a 2-core CPU
    python -m scripts.shapes_benchmark --minutes 2 --rows instagan cyclegan --out /tmp/quick.md

Each row trains with train.py for the same wall-clock budget (``--max_minutes``), translates the held-out
test split with test.py and scores it with evaluate.py; the table, the commands and a figure of sample
translations (input, CycleGAN, InstaGAN, masks) go to ``docs/shapes_benchmark.md``. Run it alone: a second
torch process on the same cores slows both several times.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from evaluate import evaluate_results
from util.checkpoint import STATE_FILE
from util.domain_classifier import ClassifierSettings
from util.machine import cpu_model_name

ROOT = Path(__file__).resolve().parents[1]

# Settings measured to learn the most within a short CPU budget (see docs/shapes_benchmark.md). The main rows keep
# the paper's instance norm; the *_batch_norm rows show the alternative (tested with --eval).
NETS = "--ngf 32 --ndf 32 --n_blocks_G 3"
TRAIN = "--batch_size 4 --amp bf16 --niter 1000 --niter_decay 0 --display_id 0 --print_freq 400"
INSTAGAN = "--ins_max 4 --ins_per 2"
ROWS = {  # row -> (model, norm, extra training flags)
    "instagan": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 1"),
    "cyclegan": ("cycle_gan", "instance", "--lambda_idt 1"),
    "instagan_no_ctx": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 0"),
    "instagan_one_step": ("insta_gan", "instance", "--ins_max 4 --ins_per 4 --lambda_ctx 1"),
    "instagan_batch_norm": ("insta_gan", "batch", f"{INSTAGAN} --lambda_ctx 1"),
    "cyclegan_batch_norm": ("cycle_gan", "batch", "--lambda_idt 1"),
    "instagan_ctx5": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 5"),
    "instagan_step_idle": ("insta_gan", "instance", f"{INSTAGAN} --lambda_ctx 1 --step_idle_params"),
}
DEFAULT_ROWS = list(ROWS)[:4]
LABELS = {
    "instagan": "InstaGAN (sequential, ins_per 2)",
    "cyclegan": "CycleGAN",
    "instagan_no_ctx": "InstaGAN without context loss",
    "instagan_one_step": "InstaGAN one-step (ins_per = ins_max)",
    "instagan_batch_norm": "InstaGAN, batch norm",
    "cyclegan_batch_norm": "CycleGAN, batch norm",
    "instagan_ctx5": "InstaGAN, context weight x5 (lambda_ctx 5)",
    "instagan_step_idle": "InstaGAN, idle D stepped by momentum (--step_idle_params, as the authors' code)",
}


def run(command: str, log: Path) -> None:
    """Run a recorded command (written with a plain ``python``, as the docs show it) with this interpreter."""
    print(f"$ {command}", flush=True)
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
    with log.open("w") as handle:
        subprocess.run(argv, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, check=True)


def commands(row: str, args: argparse.Namespace) -> tuple[str, str]:
    model, norm, extra = ROWS[row]
    size = f"--load_size {args.size} --crop_size {args.size}"
    common = (f"--dataroot {args.dataroot} --name shapes_{row} --model {model} --checkpoints_dir {args.workdir} "
              f"{size} {args.nets} --norm {norm}")
    ins = f" {INSTAGAN}" if model == "insta_gan" else ""
    budget = f"--max_steps {args.steps}" if args.steps else f"--max_minutes {args.minutes}"
    train = f"python train.py {common} {extra} {TRAIN} --seed {args.seed} {budget} --num_threads 1"
    # --eval: batch norm uses the statistics gathered in training (instance norm has none, so it is a no-op).
    test = (f"python test.py {common}{ins} --eval --direction AtoB --results_dir {args.workdir}/results "
            f"--num_test {args.num_test}")
    return train, test


def steps_done(workdir: Path, row: str) -> int:
    import torch

    state = torch.load(workdir / f"shapes_{row}" / STATE_FILE, weights_only=True)
    return int(state["total_steps"])


def benchmark_row(row: str, args: argparse.Namespace) -> dict:
    train, test = commands(row, args)
    logs = Path(args.workdir) / "logs"
    saved = logs / f"{row}_metrics.json"
    if args.reuse and saved.is_file():
        print(f"reusing {saved}")
        return json.loads(saved.read_text())
    logs.mkdir(parents=True, exist_ok=True)
    started = time.time()
    run(train, logs / f"{row}_train.log")
    train_minutes = (time.time() - started) / 60
    run(test, logs / f"{row}_test.log")
    results = Path(args.workdir) / "results" / f"shapes_{row}" / "test_latest"
    classifier = ClassifierSettings(steps=args.classifier_steps)
    metrics = evaluate_results(results, args.dataroot, ins_max=4, fid=False, classifier_settings=classifier,
                               log=lambda _: None)
    metrics.pop("per_image", None)
    metrics.update(row=row, steps=steps_done(Path(args.workdir), row), train_minutes=round(train_minutes, 1),
                   train_command=train, test_command=test)
    (logs / f"{row}_metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
    return metrics


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "inf" if value == float("inf") else f"{value:.{digits}f}"
    return str(value)


def table(results: list[dict]) -> str:
    head = ("| model | steps (min) | domain score | shape score | mean IoU | count kept | empty masks | "
            "bg PSNR dB | bg L1 |")
    lines = [head, "|" + "---|" * 9]
    for r in results:
        masks = ROWS[r["row"]][0] == "insta_gan"
        lines.append(
            f"| {LABELS[r['row']]} | {r['steps']} ({r['train_minutes']}) | {fmt(r['domain_score'])} | "
            f"{fmt(r['shape_score']) if masks else 'n/a'} | {fmt(r['mean_iou']) if masks else 'n/a'} | "
            f"{fmt(r['instance_count_kept']) if masks else 'n/a'} | "
            f"{fmt(r['empty_translated_masks']) if masks else 'n/a'} | {fmt(r['background_psnr'], 2)} | "
            f"{fmt(r['background_l1'], 4)} |")
    return "\n".join(lines)


def sample_figure(args: argparse.Namespace, path: Path, count: int = 6, scale: int = 2) -> None:
    """Rows of: input, input masks, CycleGAN, InstaGAN image, InstaGAN masks (from the saved result PNGs)."""
    results = Path(args.workdir) / "results"
    columns = [("shapes_instagan", "real_A_img", "input"), ("shapes_instagan", "real_A_seg", "input masks"),
               ("shapes_cyclegan", "fake_B_img", "CycleGAN"), ("shapes_instagan", "fake_B_img", "InstaGAN"),
               ("shapes_instagan", "fake_B_seg", "InstaGAN masks")]
    image_dir = results / "shapes_instagan" / "test_latest" / "images"
    stems = sorted(p.name[: -len("_real_A_img.png")] for p in image_dir.glob("*_real_A_img.png"))[:count]
    cell = args.size * scale
    canvas = Image.new("RGB", (cell * len(columns), 16 + cell * len(stems)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, (run_name, visual, title) in enumerate(columns):
        draw.text((col * cell + 4, 2), title, fill="black")
        for row, stem in enumerate(stems):
            file = results / run_name / "test_latest" / "images" / f"{stem}_{visual}.png"
            if file.is_file():
                with Image.open(file) as image:
                    canvas.paste(image.convert("RGB").resize((cell, cell), Image.NEAREST), (col * cell, 16 + row * cell))
    canvas.save(path)


def write_report(results: list[dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = out.with_suffix(".png")
    if {"instagan", "cyclegan"} <= {r["row"] for r in results}:
        sample_figure(args, figure)
    lines = [
        "# Shapes benchmark: InstaGAN vs CycleGAN",
        "",
        (f"Built-in shapes data ({args.size}x{args.size}, ellipses -> rectangles, 1-3 objects per image), "
         f"every model trained for the same budget ({budget_text(args)}) on this machine, then "
         f"evaluated on {args.num_test} held-out test images with `evaluate.py` (FID/KID skipped: no Inception "
         f"weights offline). Metrics: domain score = fraction of translated images a classifier trained on real "
         f"A vs B calls B; shape score = the same for each translated mask; mean IoU between each input instance "
         f"and its translated mask; count kept = images whose number of instances is unchanged; background "
         f"PSNR/L1 on pixels outside the input and translated masks (CycleGAN has no masks: outside the input "
         f"masks only)."),
        "",
        table(results),
        "",
        f"Machine: {machine()}. Recorded {time.strftime('%Y-%m-%d')}.",
        "",
        "## Commands",
        "",
        "Reproduce everything with:",
        "",
        f"    python -m datasets.make_shapes_dataset --out {args.dataroot} --size {args.size}",
        f"    python -m scripts.shapes_benchmark --minutes {args.minutes} --dataroot {args.dataroot}"
        + (f" --steps {args.steps}" if args.steps else "") + (f" --seed {args.seed}" if args.seed else "")
        + ("" if args.nets == NETS else f" --nets '{args.nets}'")
        + ("" if args.rows == DEFAULT_ROWS else f" --rows {' '.join(args.rows)}"),
        "",
        "which runs, per row:",
        "",
    ]
    for r in results:
        lines += [f"- {LABELS[r['row']]}:", "", f"      {r['train_command']}", f"      {r['test_command']}", ""]
    if figure.is_file():
        lines += ["## Sample translations", "", f"![samples]({figure.name})", ""]
    out.write_text("\n".join(lines) + "\n" + kept_notes(out))
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {out}")


NOTES_MARKER = "<!-- written by hand below: kept when the benchmark rewrites this file -->"


def kept_notes(out: Path) -> str:
    """The hand-written reading of the numbers at the end of an existing report, so a rerun keeps it."""
    if not out.is_file() or NOTES_MARKER not in out.read_text():
        return ""
    return "\n" + NOTES_MARKER + out.read_text().split(NOTES_MARKER, 1)[1]


def budget_text(args: argparse.Namespace) -> str:
    return f"{args.steps} steps" if args.steps else f"{args.minutes} minutes of wall-clock time"


def machine() -> str:
    import os

    import torch

    return f"{cpu_model_name()}, {os.cpu_count()} cores, torch {torch.__version__}, CPU only"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="training budget per model")
    parser.add_argument("--steps", type=int, default=0,
                        help="train every row for this many steps instead of --minutes (quality at equal steps, "
                             "unaffected by machine load)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every row")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=DEFAULT_ROWS,
                        help="rows to run (default: InstaGAN, CycleGAN and the paper's two ablations)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dataroot", default="./datasets/shapes_64")
    parser.add_argument("--workdir", default="./checkpoints/shapes_benchmark")
    parser.add_argument("--num_test", type=int, default=200)
    parser.add_argument("--nets", default=NETS, help="network size flags given to every row")
    parser.add_argument("--classifier_steps", type=int, default=ClassifierSettings.steps,
                        help="training steps of evaluate.py's domain classifiers (cached per dataset)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "shapes_benchmark.md"))
    parser.add_argument("--reuse", action="store_true",
                        help="take rows already measured in --workdir from their metrics json instead of retraining")
    args = parser.parse_args(argv)
    if not Path(args.dataroot, "trainA").is_dir():
        run(f"{sys.executable} -m datasets.make_shapes_dataset --out {args.dataroot} --size {args.size}",
            Path("/dev/null"))
    results = [benchmark_row(row, args) for row in args.rows]
    write_report(results, args)
    print(table(results))
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
