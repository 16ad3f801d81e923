"""Translate a test split and write an HTML results page.

    python test.py --dataroot ./datasets/shapes --name shapes_instagan --model insta_gan --ins_max 20

The page goes to ``<results_dir>/<name>/<phase>_<epoch>/index.html``: a section per direction (both folders
by default, as the authors' test; ``--direction AtoB|BtoA`` for one), one row per input with the real image,
its masks, the translated image and masks (and reconstructions with --save_reconstructions). Each input and
translated instance mask is also saved as ``<stem>_<visual>_<k>.png``, k being the number of the input mask
file ``<stem>_<k>.png`` it came from, and ``visuals.json`` says which files are which for evaluate.py.

Images without masks: ``--predict_masks <run>`` has a mask predictor (``--model mask_predictor``) write the
masks of every test folder whose ``_seg`` folder is missing or empty, under the results folder, and
translates with those (docs/mask_prediction.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F

from data import create_dataset
from data.base_dataset import load_image
from models import create_model
from options.base_options import TRAINING_OPTIONS_JSON, OptionsError, save_options_text
from options.test_options import TestOptions
from util.checkpoint import CheckpointError
from util.fileio import atomic_folder
from util.html import HTML
from util.image_files import DatasetError, index_mask_files, list_image_files, mask_file_name
from util.masks import save_mask
from util.results_manifest import write_manifest
from util.visualizer import save_images

MASK_PREDICTOR = "mask_predictor"


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


def translate_split(model, opt: argparse.Namespace, direction: str, webpage: HTML, seg_root: Path | None = None) -> int:
    """Translate up to ``--num_test`` inputs of one folder into rows of the page; returns how many. ``seg_root``:
    where the folder's ``_seg`` masks are read, when not ``--seg_root`` / ``--dataroot``."""
    dataset = create_dataset(argparse.Namespace(**{**vars(opt), "direction": direction,
                                                   "seg_root": seg_root or opt.seg_root}))
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
    seg_roots = predicted_mask_roots(opt, directions, web_dir) if opt.predict_masks else {}
    recorded = {"dataroot": str(opt.dataroot), "phase": opt.phase, "max_instances": opt.max_instances,
                "ins_max": getattr(opt, "ins_max", None), "directions": directions,
                "predicted_masks": {direction: str(root) for direction, root in seg_roots.items()}}
    if getattr(model, "attributes", None):   # a conditional model: which attribute each fake_<name> flips
        recorded.update(attributes=list(model.attributes), label_file=getattr(opt, "label_file", None))
    write_manifest(web_dir, opt.model, model.visual_names, {d: model.result_roles[d] for d in directions},
                   recorded)   # what evaluate.py reads
    webpage = HTML(web_dir, f"{opt.name}: {opt.phase}, epoch {opt.epoch}")
    webpage.add_header(f"{opt.name} ({opt.model}), {opt.phase} split, epoch {opt.epoch}, "
                       f"ins_max {getattr(opt, 'ins_max', '-')}")
    counts = {direction: translate_split(model, opt, direction, webpage, seg_roots.get(direction))
              for direction in directions}
    page = webpage.save()
    print(f"translated {', '.join(f'{n} inputs {d}' for d, n in counts.items())}; results page: {page}")
    return page


# ---------------------------------------------------------------------------------------- predicted masks
def load_mask_predictor(name: str, checkpoints_dir: str | Path = "./checkpoints", epoch: str = "latest",
                        gpu_ids: str = "-1"):
    """The trained mask predictor ``<checkpoints_dir>/<name>``, in eval mode; errors name the run and the fix."""
    run = Path(checkpoints_dir) / name
    saved = run / TRAINING_OPTIONS_JSON
    if not saved.is_file():
        raise OptionsError(f"no trained mask predictor {run} (no {TRAINING_OPTIONS_JSON}): train one with python "
                           f"train.py --model {MASK_PREDICTOR} --name {name} ..., or check the name and "
                           f"--checkpoints_dir")
    trained = json.loads(saved.read_text(encoding="utf-8")).get("model")
    if trained != MASK_PREDICTOR:
        raise OptionsError(f"{run} is a {trained} run, not a mask predictor: give the name of a run trained with "
                           f"--model {MASK_PREDICTOR}")
    opt = TestOptions().parse(["--name", name, "--checkpoints_dir", str(checkpoints_dir), "--epoch", epoch,
                               "--gpu_ids", gpu_ids], save=False, show=False)
    predictor = create_model(opt)
    predictor.setup(opt)
    predictor.eval()
    return predictor


def predict_mask_folder(predictor, images: Path, out: Path, *, replace: bool = False, batch_size: int = 8,
                        log: Callable[[str], None] = print) -> dict[str, int]:
    """Write the instance masks of every image in ``images`` to ``out`` as ``<stem>_<k>.png`` (0/255, largest
    instance first), at each image's own size. ``out`` appears complete or not at all (an existing one is
    replaced only with ``replace``). Returns counts of images, instances and resized images."""
    try:
        paths = list_image_files(Path(images))
    except DatasetError as err:
        raise DatasetError(f"{err}: give a folder of images (.png, .jpg) to predict masks for") from None
    if Path(out).exists() and not replace:
        raise OptionsError(f"{out} exists; remove it, choose another output folder, or replace it (--overwrite)")
    opt = predictor.opt
    trained = (opt.crop_size_h, opt.crop_size_w)
    counts = {"images": len(paths), "instances": 0, "resized": 0}
    with atomic_folder(out, replace=replace) as temp:
        for start in range(0, len(paths), batch_size):
            batch = [load_image(path, opt.input_nc) for path in paths[start:start + batch_size]]
            sizes = [tuple(image.shape[-2:]) for image in batch]
            for index, size in enumerate(sizes):
                if size != trained:
                    counts["resized"] += 1
                    batch[index] = F.interpolate(batch[index][None], size=trained, mode="bilinear",
                                                 antialias=True, align_corners=False)[0].clamp(-1, 1)
            found = predictor.predict(torch.stack(batch), sizes)
            for path, instances in zip(paths[start:start + batch_size], found, strict=True):
                for k, mask in enumerate(instances):
                    save_mask(mask, temp / mask_file_name(path.stem, k))
                counts["instances"] += len(instances)
    if counts["resized"]:
        log(f"note: {counts['resized']} of {len(paths)} images in {images} are not "
            f"{trained[1]}x{trained[0]}, the size the predictor was trained at: they were resized to it, and "
            f"their masks back to each image's size")
    log(f"predicted {counts['instances']} instance masks for {len(paths)} images of {images} into {out}")
    return counts


def predicted_mask_roots(opt: argparse.Namespace, directions: list[str], web_dir: Path) -> dict[str, Path]:
    """For ``--predict_masks``: each direction whose source folder has no masks gets them predicted into
    ``<web_dir>/predicted_masks/<phase><letter>_seg``; returns {direction: folder holding that _seg folder}."""
    roots, predictor = {}, None
    for direction in directions:
        folder = f"{opt.phase}{direction[0]}"
        seg = Path(opt.seg_root or opt.dataroot) / f"{folder}_seg"
        if seg.is_dir() and index_mask_files(seg):
            print(f"--predict_masks: {seg} has masks, translating {folder} with them")
            continue
        if predictor is None:
            predictor = load_mask_predictor(opt.predict_masks, opt.checkpoints_dir, gpu_ids=",".join(map(str, opt.gpu_ids)) or "-1")
        root = web_dir / "predicted_masks"
        predict_mask_folder(predictor, Path(opt.dataroot) / folder, root / f"{folder}_seg", replace=True,
                            batch_size=opt.batch_size)
        roots[direction] = root
    return roots


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
