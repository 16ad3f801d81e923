"""Learning curves on the shapes data: each row trained in stages and judged against the ground truth after each.

    python -m scripts.shapes_curves --rows instagan cyclegan --steps 100 200 400 800 --num_test 50

For every row of the shapes benchmark (``scripts/shapes_benchmark.py``; same flags, first seed) this trains to
the first step count, translates ``--num_test`` images of both test folders and scores them with evaluate.py,
then resumes the same run (``--continue_train``, exact) to the next step count, and so on. The training minutes
of each stage are summed, so the curves read against steps and against CPU time. Writes a table per row to
``--out`` (markdown), the points as JSON beside it and a plot of target PSNR and object colour error against
steps and minutes (``<out>.png``), with the do-nothing reference (the input unchanged) as a dashed line.
Run it alone: a second torch process on the same cores slows both several times.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from evaluate import evaluate_results
from scripts.shapes_benchmark import (
    DIRECTIONS,
    LABELS,
    NETS,
    ROOT,
    ROWS,
    commands,
    fmt,
    git_commit,
    machine,
    run,
    steps_done,
)
from util.domain_classifier import ClassifierSettings

CURVE_METRICS = {  # metric -> its column title in the report
    "target_psnr": "target PSNR dB", "object_colour_error": "object colour error", "shape_change_score": "shape change",
    "object_kind_score": "object kind", "target_background_psnr": "background PSNR dB", "shape_score": "shape score",
    "target_mask_iou": "target-mask IoU"}


def curve_name(row: str, seed: int) -> str:
    return f"curve_{row}_seed{seed}"


def no_nan(value: float | None) -> float | None:
    """A metric that had nothing to score (NaN, e.g. CycleGAN's shape score) becomes None (null in JSON)."""
    return None if isinstance(value, float) and math.isnan(value) else value


def curve_row(row: str, args: argparse.Namespace) -> dict:
    """Train ``row`` stage by stage to each of --steps; the scores after each stage."""
    seed, name = args.seed, curve_name(row, args.seed)
    logs = Path(args.workdir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    points, minutes, commands_run = [], 0.0, []
    for index, steps in enumerate(sorted(args.steps)):
        train, test = commands(row, seed, args, name=name, budget=f"--max_steps {steps}")
        train += " --continue_train" if index else " --overwrite"
        started = time.time()
        run(train, logs / f"{name}_{steps}_train.log")
        minutes += (time.time() - started) / 60
        run(test, logs / f"{name}_{steps}_test.log")
        commands_run += [train, test]
        results = Path(args.workdir) / "results" / name / "test_latest"
        point = {"steps": steps_done(Path(args.workdir), name), "train_minutes": round(minutes, 2)}
        for direction in DIRECTIONS:
            scores = evaluate_results(results, args.dataroot, direction=direction, ins_max=4, fid=False,
                                      domain_score=False, log=lambda _: None,
                                      classifier_settings=ClassifierSettings(steps=args.classifier_steps))
            point[direction] = {key: no_nan(scores.get(key)) for key in (*CURVE_METRICS, "identity_target_psnr")}
        points.append(point)
        print(f"{row} {point['steps']} steps ({minutes:.1f} min): target PSNR "
              f"{point['AtoB']['target_psnr']:.2f} / {point['BtoA']['target_psnr']:.2f} dB", flush=True)
    return {"row": row, "seed": seed, "points": points, "commands": commands_run}


def report(curves: list[dict], args: argparse.Namespace) -> str:
    lines = ["# Learning curves on the shapes data", "",
             (f"Each row trained in stages (seed {args.seed}), both test folders' first {args.num_test} "
             f"images scored against the ground truth after each stage. Minutes: training time summed over the "
             f"stages (process start included). A->B / B->A."), ""]
    for curve in curves:
        lines += [f"## {LABELS[curve['row']]}", "",
                  "| steps | minutes | " + " | ".join(CURVE_METRICS.values()) + " |",
                  "|" + "---|" * (2 + len(CURVE_METRICS))]
        for point in curve["points"]:
            cells = [" / ".join(fmt(point[d][key], 2 if "psnr" in key else 3) for d in DIRECTIONS)
                     for key in CURVE_METRICS]
            lines.append(f"| {point['steps']} | {point['train_minutes']:.1f} | " + " | ".join(cells) + " |")
        lines += [""]
    reference = curves[0]["points"][0]
    lines += [(f"Reference, the input unchanged: target PSNR {fmt(reference['AtoB']['identity_target_psnr'], 2)} / "
              f"{fmt(reference['BtoA']['identity_target_psnr'], 2)} dB."), "",
              f"Machine: {machine()}. Recorded {time.strftime('%Y-%m-%d')} at commit {git_commit()}.", "",
              "Reproduce:", "", f"    python -m scripts.shapes_curves --rows {' '.join(args.rows)} --steps "
              f"{' '.join(map(str, sorted(args.steps)))} --num_test {args.num_test}"
              + ("" if args.nets == NETS else f" --nets '{args.nets}'"), ""]
    return "\n".join(lines)


def plot(curves: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 7))
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2)
    for curve in curves:
        steps = [p["steps"] for p in curve["points"]]
        minutes = [p["train_minutes"] for p in curve["points"]]
        psnr = [p["AtoB"]["target_psnr"] for p in curve["points"]]
        colour = [p["AtoB"]["object_colour_error"] for p in curve["points"]]
        for column, x in enumerate((steps, minutes)):
            axes[0, column].plot(x, psnr, marker="o", label=curve["row"])
            axes[1, column].plot(x, colour, marker="o", label=curve["row"])
    identity = curves[0]["points"][0]["AtoB"]["identity_target_psnr"]
    for column, x_label in enumerate(("steps", "training minutes")):
        axes[0, column].axhline(identity, linestyle="--", color="grey", label="input unchanged")
        axes[0, column].set_ylabel("target PSNR dB (A->B)")
        axes[1, column].set_ylabel("object colour error (A->B)")
        for row in (0, 1):
            axes[row, column].set_xlabel(x_label)
            axes[row, column].grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=["instagan", "cyclegan"])
    parser.add_argument("--steps", type=int, nargs="+", required=True, help="step counts to evaluate at")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dataroot", default="./datasets/shapes_64")
    parser.add_argument("--workdir", default="./checkpoints/shapes_curves")
    parser.add_argument("--num_test", type=int, default=50)
    parser.add_argument("--nets", default=NETS, help="network size flags given to every row")
    parser.add_argument("--classifier_steps", type=int, default=ClassifierSettings.steps)
    parser.add_argument("--out", default=str(ROOT / "docs" / "shapes_curves.md"))
    args = parser.parse_args(argv)
    if not Path(args.dataroot, "testA_target").is_dir():
        print(f"error: {args.dataroot} has no ground truth (testA_target): generate it with python -m "
              f"datasets.make_shapes_dataset --out {args.dataroot} --size {args.size}", file=sys.stderr)
        return 2
    curves = [curve_row(row, args) for row in args.rows]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(curves, args))
    out.with_suffix(".json").write_text(json.dumps(curves, indent=1, default=str))
    plot(curves, out.with_suffix(".png"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
