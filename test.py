"""Translate a test split and write an HTML results page.

    python test.py --dataroot ./datasets/shapes --name shapes_instagan --model insta_gan --ins_max 20

The page goes to ``<results_dir>/<name>/<phase>_<epoch>/index.html``: a section per direction (both folders
by default, as the authors' test; ``--direction AtoB|BtoA`` for one), one row per input with the real image,
its masks, the translated image and masks (and reconstructions with --save_reconstructions). Each input and
translated instance mask is also saved as ``<stem>_<visual>_<k>.png``, k being the number of the input mask
file ``<stem>_<k>.png`` it came from, and ``visuals.json`` says which files are which for evaluate.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from data import create_dataset
from models import create_model
from options.base_options import OptionsError, save_options_text
from options.test_options import TestOptions
from util.checkpoint import CheckpointError
from util.html import HTML
from util.image_files import DatasetError
from util.results_manifest import write_manifest
from util.visualizer import save_images


def results_dir(opt) -> Path:
    return Path(opt.results_dir) / opt.name / f"{opt.phase}_{opt.epoch}"


def shown_visuals(model, with_reconstructions: bool) -> dict[str, torch.Tensor]:
    visuals = model.get_current_visuals()
    return {name: tensor for name, tensor in visuals.items() if with_reconstructions or not name.startswith("rec_")}


def test_directions(opt: argparse.Namespace, model) -> list[str]:
    """Both folders by default, as the authors' test wrote both directions; ``--direction`` picks one."""
    wanted = [opt.direction] if opt.direction else ["AtoB", "BtoA"]
    supported = [direction for direction in wanted if direction in model.result_roles]
    if not supported:
        raise OptionsError(f"--direction {opt.direction}: --model {opt.model} translates only "
                           f"{', '.join(model.result_roles)} here")
    if not opt.dataset_mode.startswith("single"):   # a two-domain dataset translates both in one pass
        return supported[:1]
    return supported


def translate_split(model, opt: argparse.Namespace, direction: str, webpage: HTML) -> int:
    """Translate up to ``--num_test`` inputs of one folder into rows of the page; returns how many."""
    dataset = create_dataset(argparse.Namespace(**{**vars(opt), "direction": direction}))
    roles = model.result_roles[direction]
    per_instance = [roles[role] for role in ("input_masks", "output_masks") if role in roles]
    webpage.add_header(f"{direction[0]} -> {direction[-1]} ({opt.phase}{direction[0]})")
    done = 0
    for batch in dataset:
        model.set_input(batch)
        model.test()
        visuals = shown_visuals(model, opt.save_reconstructions)
        for index, path in enumerate(model.get_image_paths()):
            if done >= opt.num_test:
                return done
            single = {name: tensor[index:index + 1] for name, tensor in visuals.items()}
            ids = {name: model.instance_ids[name][index] if name in model.instance_ids else None
                   for name in per_instance if name in visuals}
            save_images(webpage, single, model.visual_names, path, aspect_ratio=opt.aspect_ratio,
                        width=opt.display_winsize, per_instance=ids)
            done += 1
    return done


def run_test(opt: argparse.Namespace) -> Path:
    """Translate up to ``--num_test`` inputs per direction; returns the path of the results page."""
    model = create_model(opt)
    model.setup(opt)
    if opt.eval:
        model.eval()
    elif opt.norm == "batch":
        print("note: --norm batch without --eval normalises every test batch by its own statistics, which "
              "discards each image's mean colour when --batch_size is 1; add --eval to use the statistics "
              "gathered in training", file=sys.stderr)
    directions = test_directions(opt, model)
    web_dir = results_dir(opt)
    recorded = {"dataroot": str(opt.dataroot), "phase": opt.phase, "max_instances": opt.max_instances,
                "ins_max": getattr(opt, "ins_max", None), "directions": directions}
    write_manifest(web_dir, opt.model, model.visual_names, {d: model.result_roles[d] for d in directions},
                   recorded)   # what evaluate.py reads
    webpage = HTML(web_dir, f"{opt.name}: {opt.phase}, epoch {opt.epoch}")
    webpage.add_header(f"{opt.name} ({opt.model}), {opt.phase} split, epoch {opt.epoch}, "
                       f"ins_max {getattr(opt, 'ins_max', '-')}")
    counts = {direction: translate_split(model, opt, direction, webpage) for direction in directions}
    page = webpage.save()
    print(f"translated {', '.join(f'{n} inputs {d}' for d, n in counts.items())}; results page: {page}")
    return page


def check_trained_run(opt: argparse.Namespace) -> None:
    """A mistyped --name must not create a folder: the run has to exist before test_opt.txt is written there."""
    run_dir = Path(opt.checkpoints_dir) / opt.name
    if not run_dir.is_dir():
        runs = sorted(p.name for p in Path(opt.checkpoints_dir).glob("*/") if any(p.glob("*_net_*.pth")))
        raise OptionsError(f"no trained run {run_dir}: check --name and --checkpoints_dir"
                           + (f" (runs there: {', '.join(runs[:10])})" if runs else ""))


def main(argv: list[str] | None = None) -> int:
    try:
        options = TestOptions()
        opt = options.parse(argv, save=False)
        check_trained_run(opt)
        save_options_text(opt, options.text, options.argv)
        run_test(opt)
    except OptionsError as err:
        print(err.code, file=sys.stderr)
        return 2
    except (CheckpointError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
