"""Mask prediction benchmark: how good predicted masks are, and what mask errors cost InstaGAN.

    python -m scripts.mask_benchmark                       # about 25 CPU-minutes; writes docs/mask_prediction.md
    python -m scripts.mask_benchmark --minutes 1 --out /tmp/masks.md --workdir /tmp/mask_benchmark   # a quick look

1. A mask predictor (``--model mask_predictor``) trains for ``--minutes`` on both folders of shapes_64 and
   predicts the masks of its 200 + 200 test images; scored against the true masks (instance IoU, count).
2. Touching objects: shapes_64 has none, so the paired shapes data (same-class pairs that touch in about 30% of
   the images) is written in the ``_seg`` layout, and a predictor trains on it with and without its touching
   boundary map (``--boundary_width 0``); scored on the touching instances too.
3. An InstaGAN run (``--instagan``; trained with the shapes benchmark's main-row command when missing) translates
   the shapes_64 test folders with the true masks, the predicted ones, and masks degraded on purpose (dilated,
   eroded, one instance dropped), scored by evaluate.py against the ground-truth targets; evaluation pairs each
   given mask with the true object it overlaps, so the figures always judge the true objects.

Steps whose results are in ``--workdir`` are reused with ``--reuse``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from evaluate import evaluate_results
from scripts import shapes_benchmark
from scripts.predict_masks import score_mask_folders
from util.domain_classifier import ClassifierSettings
from util.fileio import atomic_folder, write_text_atomic
from util.image_files import index_mask_files, list_image_files, mask_file_name
from util.instances import degrade_masks
from util.masks import save_mask
from util.metrics import read_mask

ROOT = Path(__file__).resolve().parents[1]
PREDICTOR = "--model mask_predictor --load_size 64 --crop_size 64 --ngf 16 --display_id 0 --print_freq 4000"
# condition -> (kind, pixels) for util.instances.degrade_masks; "true" and "predicted" are not degraded
DEGRADED = {"dilate_1": ("dilate", 1), "dilate_2": ("dilate", 2), "dilate_4": ("dilate", 4),
            "erode_1": ("erode", 1), "erode_2": ("erode", 2), "erode_4": ("erode", 4), "drop_one": ("drop", 0)}
CONDITION_LABELS = {"true": "true masks", "predicted": "predicted masks (this predictor)",
                    "dilate_1": "true, dilated 1 px", "dilate_2": "true, dilated 2 px", "dilate_4": "true, dilated 4 px",
                    "erode_1": "true, eroded 1 px", "erode_2": "true, eroded 2 px", "erode_4": "true, eroded 4 px",
                    "drop_one": "true, smallest instance dropped (images with 2+)"}
METRICS = (("target_psnr", "target PSNR (dB)", 2), ("target_background_psnr", "background PSNR (dB)", 2),
           ("shape_score", "shape score (classifier)", 3), ("shape_change_score", "shape change vs target", 3),
           ("target_mask_iou", "target-mask IoU", 3),
           ("object_colour_error", "colour error", 3))


def run(command: str, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    shapes_benchmark.run(command, log)


def cached(path: Path, reuse: bool, compute) -> dict:
    """``compute()``'s dict, saved as JSON at ``path``; read back instead with ``reuse`` when it is there."""
    if reuse and path.is_file():
        print(f"reusing {path}")
        return json.loads(path.read_text())
    result = compute()
    write_text_atomic(path, json.dumps(result, indent=1) + "\n")
    return result


def train_predictor(name: str, dataroot: Path, args: argparse.Namespace, extra: str = "") -> str:
    command = (f"python train.py --dataroot {dataroot} --name {name} --checkpoints_dir {args.workdir} {PREDICTOR} "
               f"--max_minutes {args.minutes} --seed {args.seed} --overwrite {extra}").strip()
    run(command, args.workdir / "logs" / f"{name}_train.log")
    return command


def predict_and_score(name: str, dataroot: Path, letters: str, out_root: Path, args: argparse.Namespace) -> dict:
    """Predict the test folders ``letters`` of ``dataroot`` into ``out_root``; the scores per folder."""
    scores = {}
    for letter in letters:
        folder = f"test{letter}"
        out = out_root / f"{folder}_seg"
        run(f"python -m scripts.predict_masks --name {name} --checkpoints_dir {args.workdir} --images "
            f"{dataroot / folder} --out {out} --overwrite", args.workdir / "logs" / f"{name}_predict_{letter}.log")
        scores[letter] = score_mask_folders(out, dataroot / f"{folder}_seg", dataroot / folder)
    return scores


def predictor_step(args: argparse.Namespace) -> dict:
    command = train_predictor("shapes_64_masks", args.dataroot, args, "--mask_domains AB")
    scores = predict_and_score("shapes_64_masks", args.dataroot, "AB", args.workdir / "masks" / "predicted", args)
    return {"train_command": command, "scores": scores, "steps": steps_done(args.workdir / "shapes_64_masks")}


def steps_done(run_dir: Path) -> int:
    import torch

    return int(torch.load(run_dir / "latest_state.pth", weights_only=True)["total_steps"])


# ------------------------------------------------------------------------------------------- touching objects
def paired_as_seg_layout(paired: Path, out: Path) -> Path:
    """The paired shapes data (``<phase>_img``, ``<phase>_inst`` ids 1..n) as ``<phase>A`` + ``<phase>A_seg``."""
    if (out / "testA_seg").is_dir():
        return out
    with atomic_folder(out, replace=True) as temp:
        for phase in ("train", "test"):
            (temp / f"{phase}A").mkdir()
            (temp / f"{phase}A_seg").mkdir()
            for path in list_image_files(paired / f"{phase}_img"):
                (temp / f"{phase}A" / path.name).write_bytes(path.read_bytes())
                ids = np.asarray(Image.open(paired / f"{phase}_inst" / path.name))
                for k, instance in enumerate(value for value in np.unique(ids) if value):
                    save_mask(ids == instance, temp / f"{phase}A_seg" / mask_file_name(path.stem, k))
    return out


TOUCHING_ROWS = {"boundary": "", "no_boundary": "--boundary_width 0"}


def touching_step(row: str, args: argparse.Namespace) -> dict:
    data = paired_as_seg_layout(args.paired_dataroot, args.workdir / "touching_data")
    name = f"touching_masks_{row}"
    command = train_predictor(name, data, args, TOUCHING_ROWS[row])
    scores = predict_and_score(name, data, "A", args.workdir / "masks" / f"touching_{row}", args)
    return {"train_command": command, "scores": scores["A"], "steps": steps_done(args.workdir / name)}


# ------------------------------------------------------------------------------------ what mask errors cost
def degraded_folder(source: Path, out: Path, kind: str, pixels: int) -> None:
    with atomic_folder(out, replace=True) as temp:
        for stem, files in index_mask_files(source).items():
            for k, mask in enumerate(degrade_masks([read_mask(file) for file in files], kind, pixels)):
                save_mask(mask, temp / mask_file_name(stem, k))


def instagan_run(args: argparse.Namespace) -> tuple[str, Path]:
    """(run name, checkpoints folder) of the InstaGAN to test; trained with the shapes benchmark's command if
    missing."""
    run_dir = Path(args.instagan)
    if (run_dir / "latest_net_G_A.pth").is_file():
        return run_dir.name, run_dir.parent
    bench = shapes_benchmark.parse_args(["--workdir", str(run_dir.parent), "--dataroot",
                                                        str(args.dataroot)])
    train, _ = shapes_benchmark.commands("instagan", args.seed, bench, name=run_dir.name)
    run(train, args.workdir / "logs" / f"{run_dir.name}_train.log")
    return run_dir.name, run_dir.parent


def sensitivity_step(condition: str, args: argparse.Namespace) -> dict:
    name, checkpoints = instagan_run(args)
    seg_root = args.dataroot
    if condition == "predicted":
        seg_root = args.workdir / "masks" / "predicted"
    elif condition in DEGRADED:
        seg_root = args.workdir / "masks" / condition
        for letter in "AB":
            degraded_folder(args.dataroot / f"test{letter}_seg", seg_root / f"test{letter}_seg", *DEGRADED[condition])
    results = args.workdir / "results" / condition
    command = (f"python test.py --name {name} --checkpoints_dir {checkpoints} --eval --results_dir {results} "
               f"--num_test {args.num_test} --seg_root {seg_root}")
    if not (args.reuse and (results / name / "test_latest" / "index.html").is_file()):
        run(command, args.workdir / "logs" / f"instagan_{condition}_test.log")
    settings = ClassifierSettings(steps=args.classifier_steps)
    record = {"test_command": command}
    for direction in ("AtoB", "BtoA"):
        metrics = evaluate_results(results / name / "test_latest", args.dataroot, direction=direction, ins_max=4,
                                   fid=False, classifier_settings=settings, log=lambda _: None)
        record[direction] = {key: metrics.get(key) for key, _, _ in METRICS}
    return record


# ------------------------------------------------------------------------------------------------- report
def fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def predictor_table(predictor: dict, touching: dict) -> list[str]:
    lines = [("| data | predictor | steps | images | true / predicted instances | mean instance IoU | count right | "
             "touching instances | their IoU |"), "|---|---|---|---|---|---|---|---|---|"]
    rows = [(f"shapes_64 test{letter}", "touching boundary", predictor["steps"], predictor["scores"][letter])
            for letter in "AB"]
    rows += [("paired shapes test (touching pairs)", "touching boundary" if row == "boundary" else
              "foreground only (--boundary_width 0)", touching[row]["steps"], touching[row]["scores"])
             for row in ("boundary", "no_boundary")]
    for data, kind, steps, s in rows:
        lines.append(f"| {data} | {kind} | {steps} | {s['images']} | {s['true_instances']} / "
                     f"{s['predicted_instances']} | {fmt(s['mean_iou'], 3)} | {fmt(s['count_right'] * 100, 1)}% | "
                     f"{s['touching_instances']} | {fmt(s['touching_iou'], 3)} |")
    return lines


def cost_table(conditions: dict, direction: str) -> list[str]:
    lines = ["| masks given to InstaGAN | " + " | ".join(title for _, title, _ in METRICS) + " |",
             "|---|" + "---|" * len(METRICS)]
    for condition, record in conditions.items():
        cells = [fmt(record[direction][key], digits) for key, _, digits in METRICS]
        lines.append(f"| {CONDITION_LABELS[condition]} | " + " | ".join(cells) + " |")
    return lines


def coloured(mask_files: list[Path], size: int) -> Image.Image:
    """Instance masks painted one colour each on black."""
    canvas = np.zeros((size, size, 3), np.uint8)
    colours = ((230, 60, 60), (60, 200, 60), (70, 110, 240), (240, 200, 40), (200, 60, 200), (40, 200, 200))
    for index, mask in enumerate(read_mask(file) for file in mask_files):
        canvas[mask] = colours[index % len(colours)]
    return Image.fromarray(canvas)


def sample_figure(args: argparse.Namespace, path: Path, count: int = 6, scale: int = 2) -> None:
    """Rows of A -> B test images: input, true masks, predicted masks, InstaGAN on each, the target."""
    name = Path(args.instagan).name
    images = {condition: args.workdir / "results" / condition / name / "test_latest" / "images"
              for condition in ("true", "predicted")}
    stems = sorted(p.stem for p in list_image_files(args.dataroot / "testA"))[:count]
    true, predicted = index_mask_files(args.dataroot / "testA_seg"), index_mask_files(
        args.workdir / "masks" / "predicted" / "testA_seg")
    side = 64 * scale
    columns = ["input", "true masks", "predicted masks", "InstaGAN, true", "InstaGAN, predicted", "target"]
    canvas = Image.new("RGB", (side * len(columns), 16 + side * len(stems)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, title in enumerate(columns):
        draw.text((col * side + 4, 2), title, fill="black")
    for row, stem in enumerate(stems):
        cells = [Image.open(args.dataroot / "testA" / f"{stem}.png"), coloured(true.get(stem, []), 64),
                 coloured(predicted.get(stem, []), 64), Image.open(images["true"] / f"{stem}_fake_B_img.png"),
                 Image.open(images["predicted"] / f"{stem}_fake_B_img.png"),
                 Image.open(args.dataroot / "testA_target" / f"{stem}.png")]
        for col, cell in enumerate(cells):
            canvas.paste(cell.convert("RGB").resize((side, side), Image.NEAREST), (col * side, 16 + row * side))
    canvas.save(path)


def write_report(predictor: dict, touching: dict, conditions: dict, args: argparse.Namespace) -> None:
    true = conditions["true"]
    predicted = conditions["predicted"]
    gaps = {d: true[d]["target_psnr"] - predicted[d]["target_psnr"] for d in ("AtoB", "BtoA")}
    command = (f"python -m scripts.mask_benchmark --minutes {args.minutes} --seed {args.seed} --instagan "
               f"{args.instagan} --num_test {args.num_test} --out {args.out}")
    text = "\n".join([
        "# Mask prediction: figures", "",
        (f"Written by `{command}` (commit {shapes_benchmark.git_commit()}; {shapes_benchmark.machine()}). The method, "
        "the design and how to use it are in [mask_prediction.md](mask_prediction.md)."), "",
        "## Predicted masks against the true ones", "",
        (f"Each predictor trained for {args.minutes} CPU-minutes (`{PREDICTOR}`, seed {args.seed}). Mean instance "
        "IoU: each true instance's IoU with the predicted instance matched to it (Hungarian matching on IoU; 0 when "
        "none), averaged over the true instances; count right: images with exactly as many predicted instances as "
        "true ones."), "",
        *predictor_table(predictor, touching), "",
        f"Predictor training: `{predictor['train_command']}`.", "",
        "## What mask errors cost InstaGAN", "",
        (f"InstaGAN run `{args.instagan}` (the shapes benchmark's main InstaGAN row), {args.num_test} test images per "
        "folder, scored by `evaluate.py` against the ground-truth targets. Evaluation pairs each mask InstaGAN was "
        "given with the true object it overlaps most, so shape score, IoU and background are always measured on the "
        "true objects (the background: pixels off every true object and its target)."), "",
        "### A -> B (ellipses to rectangles)", "", *cost_table(conditions, "AtoB"), "",
        "### B -> A (rectangles to ellipses)", "", *cost_table(conditions, "BtoA"), "",
        (f"Target PSNR on predicted masks is {gaps['AtoB']:+.2f} dB (A -> B) and {gaps['BtoA']:+.2f} dB (B -> A) "
        "below that on true masks (positive: worse)."), "",
        (f"Test command (per condition): `{true['test_command']}` with `--seg_root` naming the folder of that "
        "condition's masks."), ""])
    figure = args.out.with_suffix(".png")
    sample_figure(args, figure)
    text += f"\n![input, masks and InstaGAN's translations on true and predicted masks]({figure.name})\n"
    write_text_atomic(args.out, text)
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(
        {"command": command, "predictor": predictor, "touching": touching, "conditions": conditions}, indent=1) + "\n")
    print(f"wrote {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5, help="training budget of each mask predictor")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataroot", type=Path, default=Path("datasets/shapes_64"))
    parser.add_argument("--paired_dataroot", type=Path, default=Path("datasets/shapes_paired_64"))
    parser.add_argument("--instagan", default="checkpoints/shapes_benchmark/shapes_instagan_seed0",
                        help="InstaGAN run folder to test (trained with the shapes benchmark's command if missing)")
    parser.add_argument("--workdir", type=Path, default=Path("checkpoints/mask_benchmark"))
    parser.add_argument("--num_test", type=int, default=200)
    parser.add_argument("--classifier_steps", type=int, default=ClassifierSettings.steps,
                        help="training steps of evaluate.py's classifiers (the shapes benchmark's default)")
    parser.add_argument("--conditions", nargs="+", default=["true", "predicted", *DEGRADED],
                        choices=["true", "predicted", *DEGRADED])
    parser.add_argument("--out", type=Path, default=Path("docs/mask_prediction_benchmark.md"))
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the steps saved in --workdir (and test results there, scoring them again when "
                             "their scores are not saved)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for data, how in ((args.dataroot, "--size 64"), (args.paired_dataroot, "--paired --size 64")):
        if not data.is_dir():
            print(f"error: no dataset {data}; make it with python -m datasets.make_shapes_dataset {how} --out {data}",
                  file=sys.stderr)
            return 2
    started = time.time()
    saved = args.workdir / "saved"
    predictor = cached(saved / "predictor.json", args.reuse, lambda: predictor_step(args))
    touching = {row: cached(saved / f"touching_{row}.json", args.reuse, lambda row=row: touching_step(row, args))
                for row in TOUCHING_ROWS}
    conditions = {condition: cached(saved / f"instagan_{condition}.json", args.reuse,
                                    lambda condition=condition: sensitivity_step(condition, args))
                  for condition in ["true", "predicted", *[c for c in args.conditions if c in DEGRADED]]}
    write_report(predictor, touching, conditions, args)
    print(f"done in {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
