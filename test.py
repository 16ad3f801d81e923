"""Translate a test split and write an HTML results page.

    python test.py --dataroot ./datasets/shapes --name shapes_instagan --model insta_gan --ins_max 20

The page goes to ``<results_dir>/<name>/<phase>_<epoch>/index.html``: one row per input with the real
image, its masks, the translated image and masks (and reconstructions with --save_reconstructions);
each translated instance mask is also saved as its own PNG for evaluation tools.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from data import create_dataset
from models import create_model
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


def run_test(opt) -> Path:
    """Translate up to ``--num_test`` inputs; returns the path of the results page."""
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup(opt)
    if opt.eval:
        model.eval()
    elif opt.norm == "batch":
        print("note: --norm batch without --eval normalises every test batch by its own statistics, which "
              "discards each image's mean colour when --batch_size is 1; add --eval to use the statistics "
              "gathered in training", file=sys.stderr)
    web_dir = results_dir(opt)
    write_manifest(web_dir, opt.model, model.visual_names, model.result_roles)  # what evaluate.py reads
    per_instance = [model.result_roles[role] for role in ("input_masks", "output_masks") if role in model.result_roles]
    webpage = HTML(web_dir, f"{opt.name}: {opt.phase}, epoch {opt.epoch}")
    webpage.add_header(f"{opt.name} ({opt.model}), {opt.phase} split, epoch {opt.epoch}, ins_max {getattr(opt, 'ins_max', '-')}")
    done = 0
    for batch in dataset:
        model.set_input(batch)
        model.test()
        visuals = shown_visuals(model, opt.save_reconstructions)
        for index, path in enumerate(model.get_image_paths()):
            if done >= opt.num_test:
                break
            single = {name: tensor[index:index + 1] for name, tensor in visuals.items()}
            save_images(webpage, single, model.visual_names, path, aspect_ratio=opt.aspect_ratio,
                        width=opt.display_winsize, per_instance=per_instance)
            done += 1
        if done >= opt.num_test:
            break
    page = webpage.save()
    print(f"translated {done} inputs; results page: {page}")
    return page


def main(argv: list[str] | None = None) -> int:
    opt = TestOptions().parse(argv)
    try:
        run_test(opt)
    except (CheckpointError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
