"""``visuals.json``, written by test.py beside a results page: what each saved visual is.

    {"model": "insta_gan", "visuals": {"real_A_img": "image", "real_A_seg": "masks", ...},
     "roles": {"input_image": "real_A_img", "input_masks": "real_A_seg",
               "output_image": "fake_B_img", "output_masks": "fake_B_seg"}}

Evaluation reads the roles instead of assuming visual names, so any model's results can be scored.
"""

from __future__ import annotations

import json
from pathlib import Path

from .fileio import write_text_atomic

VISUALS_MANIFEST = "visuals.json"
# Results folders written before the manifest existed hold InstaGAN's (and CycleGAN's) visual names.
DEFAULT_ROLES = {"input_image": "real_A_img", "input_masks": "real_A_seg",
                 "output_image": "fake_B_img", "output_masks": "fake_B_seg"}
ROLES = tuple(DEFAULT_ROLES)


def write_manifest(page_dir: str | Path, model: str, visuals: dict[str, str], roles: dict[str, str]) -> Path:
    manifest = {"model": model, "visuals": dict(visuals), "roles": dict(roles)}
    return write_text_atomic(Path(page_dir) / VISUALS_MANIFEST, json.dumps(manifest, indent=2) + "\n")


def read_roles(results_dir: str | Path) -> dict[str, str]:
    """The role -> visual name map of a results folder (its page folder or its ``images`` folder)."""
    results = Path(results_dir)
    for folder in (results, results.parent):
        path = folder / VISUALS_MANIFEST
        if path.is_file():
            try:
                roles = json.loads(path.read_text())["roles"]
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path} is not a test.py visuals manifest ({err}); rerun test.py") from None
            return {role: str(name) for role, name in roles.items() if role in ROLES}
    return dict(DEFAULT_ROLES)
