"""The paired benchmark: pix2pix against pix2pixHD (and its ablation and styles) on the built-in paired shapes.

    python -m datasets.make_shapes_dataset --paired --out ./datasets/shapes_paired_64 --size 64
    python -m scripts.paired_benchmark --minutes 10                  # four rows, about 45 min on a 2-core CPU
    python -m scripts.paired_benchmark --minutes 1 --rows pix2pix --out /tmp/quick.md
    python -m scripts.paired_benchmark --size 256 --out docs/paired_benchmark_gpu.md   # on a CUDA machine

Each row trains with train.py for the same wall-clock budget, draws the test label maps with test.py and is
scored by evaluate.py against the real test images: PSNR/SSIM, the segmentation score of the pix2pixHD paper
(a U-Net trained on real images segments the synthesised ones; mean IoU against the input label map, beside
the same net on the real images, the oracle), the image gradient along the boundaries between touching objects
of one class, and for the encoder row the colour distance between styles (``--n_styles``). The tables, the
commands and a figure go to ``docs/paired_benchmark.md``; notes below its marker line are kept. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

from scripts.shapes_benchmark import NOTES_MARKER, provenance, run, run_origin

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ("--dataset_mode aligned --label_nc 3 --batch_size 4 --amp bf16 --niter 1000 --niter_decay 0 --display_id 0 "
         "--print_freq 400 --num_threads 1")
PIX2PIX = "--model pix2pix --ngf 32 --ndf 32"
HD = "--model pix2pixhd --netG global --ngf 32 --ndf 32 --n_downsample_global 3 --n_blocks_global 4 --num_D 2"
ROWS = {  # row -> (label, train flags, styles drawn at test time)
    "pix2pix": ("pix2pix (U-Net, PatchGAN, L1)", PIX2PIX, 0),
    "pix2pixhd": ("pix2pixHD (global G, 2 scales, feature matching, boundary map)", HD, 0),
    "pix2pixhd_no_instance": ("pix2pixHD without the boundary map (--no_instance)", f"{HD} --no_instance", 0),
    "pix2pixhd_features": ("pix2pixHD with the instance feature encoder (--instance_feat), style 0",
                           f"{HD} --instance_feat", 3),
}
COLUMNS = (  # (metrics.json key of evaluate.py, title, digits)
    ("psnr", "PSNR dB", 2),
    ("ssim", "SSIM", 3),
    ("segmentation_miou", "seg. mIoU", 3),
    ("oracle_miou", "oracle mIoU", 3),
    ("miou_ratio", "mIoU / oracle", 3),
    ("touching_boundary_gradient", "gradient on touching boundaries", 3),
    ("touching_boundary_gradient_real", "same, real images", 3),
    ("style_colour_distance", "style colour distance", 3),
    ("style_distinct_min", "distinct styles (fewest per input)", 0),
)


def commands(row: str, args: argparse.Namespace) -> list[str]:
    """Train, (cluster), test and evaluate commands of a row, as the docs show them."""
    _, flags, styles = ROWS[row]
    name = f"paired_{row}_seed{args.seed}"
    work = args.workdir
    found = [(f"python train.py --dataroot {args.dataroot} --name {name} --checkpoints_dir {work} {flags} {TRAIN} "
             f"--load_size {args.size} --crop_size {args.size} --seed {args.seed} --max_minutes {args.minutes}")]
    test = (f"python test.py --name {name} --checkpoints_dir {work} --eval --results_dir {work}/results "
            f"--num_test {args.num_test}")
    if styles:
        found.append(f"python -m scripts.cluster_features --name {name} --checkpoints_dir {work} --n_clusters 10")
        test += f" --n_styles {styles}"
    found += [test, f"python evaluate.py --results {work}/results/{name}/test_latest --label_nc 3"]
    return found


def results_dir(row: str, args: argparse.Namespace) -> Path:
    return Path(args.workdir) / "results" / f"paired_{row}_seed{args.seed}" / "test_latest"


def benchmark_row(row: str, args: argparse.Namespace) -> dict:
    """Run (or with --reuse read back) one row: {"row", "commands", "minutes", "metrics", ...}."""
    logs = Path(args.workdir) / "logs"
    saved = logs / f"paired_{row}_seed{args.seed}.json"
    if args.reuse and saved.is_file():
        print(f"reusing {saved}")
        return json.loads(saved.read_text())
    logs.mkdir(parents=True, exist_ok=True)
    train, *rest = commands(row, args)
    origin = run_origin()   # before training: a commit made meanwhile did not train it
    started = time.time()
    run(train, logs / f"paired_{row}_seed{args.seed}_train.log")
    minutes = (time.time() - started) / 60
    for index, command in enumerate(rest, 1):
        run(command, logs / f"paired_{row}_seed{args.seed}_{index}.log")
    metrics = json.loads((results_dir(row, args) / "metrics.json").read_text())
    record = {"row": row, "seed": args.seed, "train_minutes": round(minutes, 1), "commands": commands(row, args),
              "metrics": metrics, **origin}
    saved.write_text(json.dumps(record, indent=1, default=str))
    return record


def value(metrics: dict, key: str):
    found = metrics.get(key)
    return found.get("mean") if isinstance(found, dict) else found


def table(records: list[dict]) -> str:
    lines = ["| model | minutes | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|" + "---|" * (2 + len(COLUMNS))]
    for record in records:
        cells = []
        for key, _, digits in COLUMNS:
            found = value(record["metrics"], key)
            cells.append("n/a" if found is None else f"{found:.{digits}f}" if isinstance(found, float) else str(found))
        lines.append(f"| {ROWS[record['row']][0]} | {record['train_minutes']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sample_figure(records: list[dict], args: argparse.Namespace, path: Path, count: int = 6, scale: int = 2) -> None:
    """Rows of test inputs: label map, each row's synthesis (the encoder row's styles too), the real image."""
    columns = [(records[0]["row"], "real_A", "label map")]
    for record in records:
        columns.append((record["row"], "fake_B", record["row"]))
        if ROWS[record["row"]][2]:
            columns += [(record["row"], f"fake_B_style{s}", f"style {s}") for s in range(1, ROWS[record["row"]][2])]
    columns.append((records[0]["row"], "real_B", "real"))
    images = results_dir(records[0]["row"], args) / "images"
    stems = sorted(p.name[: -len("_real_A.png")] for p in images.glob("*_real_A.png"))[:count]
    if not stems:
        return
    side = min(args.size, 128) * scale
    canvas = Image.new("RGB", (side * len(columns), 16 + side * len(stems)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, (row, visual, title) in enumerate(columns):
        draw.text((col * side + 4, 2), title[:20], fill="black")
        for index, stem in enumerate(stems):
            file = results_dir(row, args) / "images" / f"{stem}_{visual}.png"
            if file.is_file():
                with Image.open(file) as image:
                    canvas.paste(image.convert("RGB").resize((side, side), Image.NEAREST),
                                 (col * side, 16 + index * side))
    canvas.save(path)


def reproduce_command(args: argparse.Namespace) -> str:
    out = Path(args.out).resolve()
    out_text = out.relative_to(ROOT).as_posix() if out.is_relative_to(ROOT) else str(args.out)
    return (f"python -m scripts.paired_benchmark --minutes {args.minutes} --rows {' '.join(args.rows)} --seed "
            f"{args.seed} --size {args.size} --dataroot {args.dataroot} --workdir {args.workdir} --num_test "
            f"{args.num_test} --out {out_text}")


def write_report(records: list[dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = out.with_suffix(".png")
    sample_figure(records, args, figure)
    notes = out.read_text().split(NOTES_MARKER, 1)[1] if out.is_file() and NOTES_MARKER in out.read_text() else ""
    lines = ["# Paired benchmark: pix2pix and pix2pixHD on the paired shapes", "",
             (f"Built-in paired shapes ({args.size}x{args.size}; label 0 background, 1 ellipse, 2 rectangle; about 30% of scenes with "
             f"two touching objects of one class; three colour palettes per class), every model trained for "
             f"{args.minutes} minutes of wall-clock time with seed {args.seed}, then {args.num_test} test label maps "
             f"drawn and scored by evaluate.py against the real test images."), "", table(records), "",
             provenance(records), "",
             "## Commands", "", "Reproduce everything with:", "",
             f"    python -m datasets.make_shapes_dataset --paired --out {args.dataroot} --size {args.size}",
             f"    {reproduce_command(args)}", "",
             "which runs, per row:", ""]
    for record in records:
        lines += [f"- {ROWS[record['row']][0]}:", "", *[f"      {c}" for c in record["commands"]], ""]
    if figure.is_file():
        lines += ["## Sample test images", "", f"![samples]({figure.name})", ""]
    out.write_text("\n".join(lines) + f"\n{NOTES_MARKER}{notes or chr(10)}")
    out.with_suffix(".json").write_text(json.dumps(records, indent=1, default=str))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="training budget per model")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64, help="image side: 64 on a CPU, 256 for the GPU rows")
    parser.add_argument("--dataroot", default=None, help="default: ./datasets/shapes_paired_<size>")
    parser.add_argument("--workdir", default="./checkpoints/paired_benchmark")
    parser.add_argument("--num_test", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "docs" / "paired_benchmark.md"))
    parser.add_argument("--reuse", action="store_true", help="take rows already measured in --workdir")
    args = parser.parse_args(argv)
    args.dataroot = args.dataroot or f"./datasets/shapes_paired_{args.size}"
    if not Path(args.dataroot, "train_label").is_dir():
        run(f"python -m datasets.make_shapes_dataset --paired --out {args.dataroot} --size {args.size}",
            Path("/dev/null"))
    records = [benchmark_row(row, args) for row in args.rows]
    write_report(records, args)
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())

