"""The attribute benchmark: MatchGAN against StarGAN with 100%, 10% and 2% of the training labels, on the built-in
attribute shapes (one object per image; rectangle, red, large), scored by evaluate.py's attribute accuracy.

    python -m scripts.attributes_benchmark                        # all rows, about 70 min on a 2-core CPU
    python -m scripts.attributes_benchmark --steps 200 --fractions 0.1 --seeds 0 --out /tmp/quick.md
    python -m scripts.attributes_benchmark --distractors 2    # shapes with unlabelled distractors, own report
    python -m scripts.attributes_benchmark --dataroot <celeba> --attributes Black_Hair,Blond_Hair,Male \
        --data_flags "--preprocess resize_and_crop --load_size 72" --out ./checkpoints/celeba_benchmark.md

Every row trains with train.py for the same number of steps (``--steps``: D updates; G is updated every
``--n_critic``-th), so rows compare at equal work whatever else the machine is doing; the minutes each took are
recorded beside. test.py then translates the test split with each attribute flipped in turn, and evaluate.py
reads the translations with an attribute classifier trained on every real training label (cached per dataset).
Rows at ``MAIN_FRACTION`` run once per ``--seeds`` (mean +- spread, half the range); the others with the first
seed. The table, the commands and a figure go to ``docs/attributes_benchmark.md``. ``--train_only`` trains and
translates without scoring; a later run with ``--reuse`` scores what is there. Run it alone: a second torch
process on the same cores slows both.

Any attribute dataset works (``--dataroot`` in the layout of data/attributes_dataset.py, e.g. CelebA with its
``list_attr_celeba.txt``; ``--attributes`` picks the columns, ``--data_flags`` adds training flags such as
preprocessing). Only the built-in shapes are made when missing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

from datasets.make_shapes_dataset import META_NAME
from evaluate import evaluate_attribute_results, summarize_runs
from scripts.shapes_benchmark import (
    ROOT,
    command_lines,
    fmt,
    kept_notes,
    provenance,
    run,
    run_origin,
    spoken_list,
    steps_done,
)
from util.attribute_classifier import AttributeClassifierSettings
from util.image_files import list_image_files

# The default --dataroot, --workdir and report (in docs/): for the plain shapes, and for --distractors N, where
# {} is empty for the documented count and N for any other, so that no count overwrites another's data, runs
# or report.
PLAIN_PATHS = ("./datasets/shapes_attributes_64", "./checkpoints/attributes_benchmark", "attributes_benchmark.md")
DISTRACTORS_PATHS = ("./datasets/shapes_attributes_distractors{}_64", "./checkpoints/attributes_benchmark_distractors{}",
                     "attributes_benchmark_distractors{}.md")
DOCUMENTED_DISTRACTORS = 2
ATTRIBUTES = "rectangle,red,large"   # the built-in shapes' columns
MODELS = {"stargan": "StarGAN", "match_gan": "MatchGAN"}
MAIN_FRACTION = 0.1
NETS = "--ngf 32 --ndf 32 --n_blocks_G 3"
TRAIN = "--batch_size 16 --amp bf16 --niter 1000 --niter_decay 0 --display_id 0 --print_freq 500"
COLUMNS = (  # (metric of evaluate.py, column title, digits)
    ("attribute_accuracy", "attribute accuracy", 3),
    ("attribute_flip_accuracy", "flipped attribute right", 3),
    ("attribute_kept_accuracy", "kept attributes right", 3),
    ("attribute_vector_accuracy", "whole vector right", 3),
    ("input_l1", "L1 to the input", 4),
)


def run_name(model: str, fraction: float, seed: int) -> str:
    return f"attrs_{model}_{fraction:g}_seed{seed}"


def commands(model: str, fraction: float, seed: int, args: argparse.Namespace) -> tuple[str, str]:
    """(train command, test command) of one row and seed, as the docs show them."""
    name = run_name(model, fraction, seed)
    train = (f"python train.py --dataroot {args.dataroot} --name {name} --model {model} "
             f"--attributes {args.attributes} --labelled_fraction {fraction:g} --checkpoints_dir {args.workdir} "
             f"--load_size {args.size} --crop_size {args.size} {args.nets} {TRAIN} --seed {seed} "
             f"--max_steps {args.steps} --num_threads 1")
    if args.data_flags:
        train += f" {args.data_flags}"
    test = (f"python test.py --name {name} --checkpoints_dir {args.workdir} --results_dir {args.workdir}/results "
            f"--num_test {args.num_test}")
    return train, test


def results_folder(args: argparse.Namespace, name: str) -> Path:
    return Path(args.workdir) / "results" / name / "test_latest"


def benchmark_run(model: str, fraction: float, seed: int, args: argparse.Namespace) -> dict:
    """Train, translate and score one row with one seed (reusing a saved record or trained run with --reuse)."""
    train, test = commands(model, fraction, seed, args)
    name = run_name(model, fraction, seed)
    logs = Path(args.workdir) / "logs"
    saved = logs / f"{name}_record.json"
    record = json.loads(saved.read_text()) if args.reuse and saved.is_file() else None
    if record is None:
        logs.mkdir(parents=True, exist_ok=True)
        origin = run_origin()   # before training: a commit made meanwhile did not train it
        started = time.time()
        run(train, logs / f"{name}_train.log")
        minutes = (time.time() - started) / 60
        run(test, logs / f"{name}_test.log")
        record = {"model": model, "fraction": fraction, "seed": seed, "train_minutes": round(minutes, 1),
                  "steps": steps_done(Path(args.workdir), name), "train_command": train, "test_command": test,
                  **origin}
        saved.write_text(json.dumps(record, indent=1))
    if not args.train_only and "metrics" not in record:
        classifier = AttributeClassifierSettings(steps=args.classifier_steps)
        metrics = evaluate_attribute_results(results_folder(args, name), args.dataroot, fid=False,
                                             classifier_settings=classifier,
                                             log=lambda text: print(text, file=sys.stderr))
        metrics.pop("per_image", None)
        record["metrics"] = metrics
        saved.write_text(json.dumps(record, indent=1, default=str))
    return record


def cell(summary: dict, key: str, digits: int) -> str:
    entry = summary.get(key)
    if entry is None:
        return "n/a"
    if entry["runs"] < 2:
        return fmt(entry["mean"], digits)
    return f"{fmt(entry['mean'], digits)} ± {fmt(entry['spread'], digits)}"


def table(rows: list[dict]) -> str:
    lines = ["| model | labels | seeds | steps (min) | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|" + "---|" * (4 + len(COLUMNS))]
    for row in rows:
        runs = row["runs"]
        steps = " / ".join(f"{r['steps']} ({r['train_minutes']})" for r in runs)
        lines.append(f"| {MODELS[row['model']]} | {row['fraction']:.0%} | {' '.join(str(r['seed']) for r in runs)} | "
                     f"{steps} | " + " | ".join(cell(row["summary"], key, d) for key, _, d in COLUMNS) + " |")
    first = rows[0]["runs"][0]["metrics"] if rows else {}
    references = [("reference: the input unchanged", "identity_"), ("reference: the real test images", "real_")]
    for label, prefix in references:
        values = [first.get(f"{prefix}{key}") for key, _, _ in COLUMNS]
        lines.append(f"| *{label}* | | | | " + " | ".join(fmt(v, d) for v, (_, _, d) in zip(values, COLUMNS,
                                                                                                strict=True)) + " |")
    return "\n".join(lines)


def sample_figure(rows: list[dict], args: argparse.Namespace, path: Path, count: int = 4, scale: int = 2) -> None:
    """Input and its flips (one per attribute), for StarGAN and MatchGAN at the main fraction (first seed)."""
    seed, side = args.seeds[0], args.size * scale
    attributes = args.attributes.split(",")
    shown = [model for model in MODELS if any(r["model"] == model and r["fraction"] == MAIN_FRACTION for r in rows)]
    if not shown:
        return
    folders = {model: results_folder(args, run_name(model, MAIN_FRACTION, seed)) / "images" for model in shown}
    stems = sorted(p.name[: -len("_real_A.png")] for p in folders[shown[0]].glob("*_real_A.png"))[:count]
    if not stems:
        return
    columns = [(shown[0], "real_A", "input")] + [(m, f"fake_{a}", f"{MODELS[m]} {a}") for m in shown
                                                  for a in attributes]
    canvas = Image.new("RGB", (side * len(columns), 16 + side * len(stems)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, (model, visual, title) in enumerate(columns):
        draw.text((col * side + 2, 2), title[:18], fill="black")
        for index, stem in enumerate(stems):
            with Image.open(folders[model] / f"{stem}_{visual}.png") as image:
                canvas.paste(image.convert("RGB").resize((side, side), Image.NEAREST), (col * side, 16 + index * side))
    canvas.save(path)


def write_report(rows: list[dict], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = out.with_suffix(".png")
    sample_figure(rows, args, figure)
    lines = [
        "# Attribute benchmark: MatchGAN vs StarGAN with few labels",
        "",
        (f"{data_description(args)}. Each row trains for {args.steps} steps (D updates; G "
         f"every 5th) with only the given share of training labels, then translates every test image with each "
         f"attribute flipped in turn. An attribute classifier trained on all real training labels reads the "
         f"translations. attribute accuracy = share of all attributes (flipped and kept) read as the target "
         f"says; flipped attribute right = the flipped one read as its new value; kept attributes right = the "
         f"others still read as before; whole vector right = every attribute right at once; L1 to the input = mean "
         f"absolute change (0..1). {seeds_sentence(args.seeds)} The seed also draws which images keep "
         f"their labels. The reference rows score the input itself as the translation and the classifier on "
         f"the real test images against their true labels."),
        "",
        table(rows),
        "",
        provenance([run for row in rows for run in row["runs"]]),
        "",
        "## Commands",
        "",
        *([f"    {data_command(args)}"] if builtin_data(args) else []),
        f"    {reproduce_command(args)}",
        "",
        "which runs, per row and seed:",
        "",
    ]
    for row in rows:
        lines += command_lines(f"{MODELS[row['model']]}, {row['fraction']:.0%} labels", row["runs"])
    if figure.is_file():
        title = f"## Sample translations ({MAIN_FRACTION:.0%} labels, seed {args.seeds[0]}; a column per flip)"
        lines += [title, "", f"![samples]({figure.name})", ""]
    out.write_text("\n".join(lines) + "\n" + kept_notes(out))
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=str))
    print(f"wrote {out}")


def seeds_sentence(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"Every row has one seed ({seeds[0]})."
    return (f"Rows at {MAIN_FRACTION:.0%} labels: mean ± spread (half the range) over seeds "
            f"{spoken_list(seeds)}; other rows one seed.")


def data_command(args: argparse.Namespace) -> str:
    """The command that makes the built-in attribute shapes these rows learn."""
    command = f"python -m datasets.make_shapes_dataset --attributes --out {args.dataroot} --size {args.size}"
    return command + (f" --distractors {args.distractors}" if args.distractors else "")


def builtin_distractors(args: argparse.Namespace) -> int:
    return json.loads(Path(args.dataroot, META_NAME).read_text())["options"].get("distractors", 0)


def check_distractors(args: argparse.Namespace) -> None:
    """Refuse built-in shapes in --dataroot made with another --distractors than asked for."""
    found = builtin_distractors(args) if builtin_data(args) else args.distractors
    if found != args.distractors:
        raise SystemExit(f"{args.dataroot} holds attribute shapes with {found} distractors, "
                         f"not --distractors {args.distractors}; give that number or another --dataroot")


def builtin_data(args: argparse.Namespace) -> bool:
    """Whether the rows learn the built-in attribute shapes, not a dataset of the user's."""
    return Path(args.dataroot, META_NAME).is_file()


def data_description(args: argparse.Namespace) -> str:
    """The report's first words on the data: what it is, its attributes, how many images."""
    counts = {phase: len(list_image_files(Path(args.dataroot, phase))) for phase in ("train", "test")}
    sizes = f"{counts['train']} training and {min(counts['test'], args.num_test)} test images"
    if builtin_data(args):
        distractors = builtin_distractors(args)
        objects = (f"one labelled object and up to {distractors} unlabelled distractors per image" if distractors
                   else "one object per image")
        return f"Built-in attribute shapes ({args.size}x{args.size}, {objects}, attributes {args.attributes}; {sizes})"
    return f"Dataset {args.dataroot} at {args.size}x{args.size}, attributes {args.attributes}; {sizes}"


def reproduce_command(args: argparse.Namespace) -> str:
    defaults = vars(parse_args(["--distractors", str(args.distractors)]))
    words = ["python -m scripts.attributes_benchmark"]
    if args.distractors:   # never a default's difference: it picks the other defaults
        words.append(f"--distractors {args.distractors}")
    for name in ("steps", "fractions", "seeds", "models", "size", "dataroot", "attributes", "data_flags", "workdir",
                 "num_test", "nets", "classifier_steps"):
        value = getattr(args, name)
        if value != defaults[name]:
            text = " ".join(map(str, value)) if isinstance(value, list) else shlex.quote(str(value))
            words.append(f"--{name} {text}")
    return " ".join(words)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000, help="training steps (D updates) per model")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.02, 1.0],
                        help="shares of labelled training images, one row per model each")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help=f"seeds of the {MAIN_FRACTION:.0%}% rows; the others use the first")   # %% for argparse
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dataroot", default=None,
                        help="an attribute dataset (data/attributes_dataset.py); the built-in shapes are made here "
                             f"when missing ({defaults_help(0)})")
    parser.add_argument("--distractors", type=int, default=0,
                        help="built-in shapes only: unlabelled objects per image beside the labelled one "
                             "(datasets/shapes_attributes.py); changes the default --dataroot, --workdir and --out")
    parser.add_argument("--attributes", default=ATTRIBUTES, help="the label columns to learn, comma-separated")
    parser.add_argument("--data_flags", default="",
                        help="more train.py flags for every row, e.g. \"--preprocess resize_and_crop --load_size 72\"")
    parser.add_argument("--workdir", default=None,
                        help=defaults_help(1))
    parser.add_argument("--num_test", type=int, default=200)
    parser.add_argument("--nets", default=NETS, help="network size flags given to every row")
    parser.add_argument("--classifier_steps", type=int, default=AttributeClassifierSettings.steps,
                        help="training steps of evaluate.py's attribute classifier (cached per dataset)")
    parser.add_argument("--out", default=None,
                        help=f"the report ({defaults_help(2, 'docs/')})")
    parser.add_argument("--reuse", action="store_true", help="take rows already trained (and scored) in --workdir")
    parser.add_argument("--train_only", action="store_true", help="train and translate; score later with --reuse")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, with the defaults of the plain or the distractor shapes filled in."""
    args = build_parser().parse_args(argv)
    dataroot, workdir, report = default_paths(args.distractors)
    args.dataroot = args.dataroot or dataroot
    args.workdir = args.workdir or workdir
    args.out = args.out or str(ROOT / "docs" / report)
    return args


def default_paths(distractors: int) -> tuple[str, str, str]:
    """(--dataroot, --workdir, report in docs/) by default for the plain shapes (0) or ``distractors``."""
    if not distractors:
        return PLAIN_PATHS
    count = "" if distractors == DOCUMENTED_DISTRACTORS else str(distractors)
    dataroot, workdir, report = (template.format(count) for template in DISTRACTORS_PATHS)
    return dataroot, workdir, report


def defaults_help(which: int, prefix: str = "") -> str:
    """The help's words on the defaults of one of PLAIN_PATHS' entries (``which``), each after ``prefix``."""
    documented = DISTRACTORS_PATHS[which].format("")
    other = DISTRACTORS_PATHS[which].format("N")
    return (f"default {prefix}{PLAIN_PATHS[which]}, with --distractors {DOCUMENTED_DISTRACTORS} {prefix}{documented}, "
            f"with N other than {DOCUMENTED_DISTRACTORS} {prefix}{other}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.dataroot, "train").is_dir():
        if args.attributes != ATTRIBUTES:
            raise SystemExit(f"no {Path(args.dataroot, 'train')}: --dataroot must hold train/ and test/ image folders "
                             "and their labels (data/attributes_dataset.py)")
        run(data_command(args), Path("/dev/null"))
    check_distractors(args)
    rows = []
    for fraction in args.fractions:
        for model in args.models:
            seeds = args.seeds if fraction == MAIN_FRACTION else args.seeds[:1]
            runs = [benchmark_run(model, fraction, seed, args) for seed in seeds]
            rows.append({"model": model, "fraction": fraction, "runs": runs})
    if args.train_only:
        return 0
    for row in rows:
        row["summary"] = summarize_runs([r["metrics"] for r in row["runs"]])
    write_report(rows, args)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
