"""``visuals.json``, written by test.py beside a results page: what each saved visual is.

    {"model": "insta_gan", "visuals": {"real_A_img": "image", "real_A_seg": "masks", ...},
     "roles": {"AtoB": {"input_image": "real_A_img", "input_masks": "real_A_seg",
                        "output_image": "fake_B_img", "output_masks": "fake_B_seg"},
               "BtoA": {"input_image": "real_B_img", ...}},
     "options": {"dataroot": ..., "phase": "test", "ins_max": 20, "max_instances": 20, "directions": [...]}}

Evaluation reads the roles instead of assuming visual names, so any model's results can be scored, and
takes test.py's options as its defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

from .fileio import write_text_atomic

VISUALS_MANIFEST = "visuals.json"
# Results folders written before the manifest existed hold InstaGAN's (and CycleGAN's) visual names.
DEFAULT_ROLES = {"input_image": "real_A_img", "input_masks": "real_A_seg",
                 "output_image": "fake_B_img", "output_masks": "fake_B_seg"}
ROLES = (*DEFAULT_ROLES, "target_image")   # target_image: the real image of paired models


def write_manifest(page_dir: str | Path, model: str, visuals: dict[str, str], roles: dict[str, dict[str, str]],
                   options: dict) -> Path:
    manifest = {"model": model, "visuals": dict(visuals), "roles": roles, "options": options}
    return write_text_atomic(Path(page_dir) / VISUALS_MANIFEST, json.dumps(manifest, indent=2) + "\n")


def read_manifest(results_dir: str | Path) -> dict:
    """The manifest of a results folder (its page folder or its ``images`` folder); folders written before
    the manifest existed get InstaGAN's A -> B names and no recorded options."""
    results = Path(results_dir)
    for folder in (results, results.parent):
        path = folder / VISUALS_MANIFEST
        if path.is_file():
            try:
                manifest = json.loads(path.read_text())
                roles = {direction: {role: str(name) for role, name in names.items() if role in ROLES}
                         for direction, names in manifest["roles"].items()}
                return {"roles": roles, "options": dict(manifest.get("options") or {})}
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise ValueError(f"{path} is not a test.py visuals manifest ({err}); rerun test.py") from None
    return {"roles": {"AtoB": dict(DEFAULT_ROLES)}, "options": {}}
