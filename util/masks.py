"""Instance-mask pixel conventions, in one place for the loader, the dataset builders, the checker and evaluation.

On disk a mask is an 8-bit grey image: ``MASK_BACKGROUND`` (0) outside the instance, ``MASK_INSTANCE`` (255)
inside; readers that need a yes/no per pixel count ``MASK_THRESHOLD`` (128, half of 255) and above as instance.
In tensors a mask is in [-1, 1] and a padding slot (no instance) is ``EMPTY_SLOT`` (-1) everywhere.

How a mask file is read (``read_mask``, used by the loader; ``inspect_mask``, used by data/check.py, applies
the same rules, so the checker never assumes another mask than the loader reads):

* the grey value of each pixel (colour and palette files by luminance, PIL's ``convert("L")``);
* 16-bit files scaled to 8 bits (65535 -> 255); one whose values are all at most 255 holds 8-bit values and
  is read as is (``util.image_files.to_8bit``).

Refused (errors: the loader raises, the checker stops training), because the file would train on garbage:

* ``mask-alpha``: transparency that disagrees with the grey on more than 1% of the pixels, i.e. an RGBA
  cut-out whose instance is in the alpha channel (read by grey it is the whole image, or the photo);
* ``mask-0-1``: values 0 and 1 only (the instance stored as 1, not 255: an invisible instance);
* ``faint-mask``: the brightest pixel below ``MASK_THRESHOLD`` (no pixel counts as instance, e.g. a label map
  of instance ids), or a colour or palette mask whose brightest grey is below 230 (e.g. a green instance
  reads as grey 117 to 150): the instance would train faint.

These could be read "correctly" (0/1 as 0/255, the alpha as the mask), but guessing would make this loader
disagree with every other reader of the dataset (evaluate.py, the builders); so they are refused with the fix.

Warnings (the checker reports them, the loader reads the grey as it is): ``empty-mask`` (all 0: a valid
sample with a useless file), ``colour-mask`` (colour that still reads bright), ``non-binary-mask`` (more than
5% of the pixels neither near 0 nor near 255) and ``inverted-mask``: the instance covers at least 90% of the
pixels AND has pixels on all four borders of the image, the signature of a mask saved with background 255 and
instance 0 (an object that really fills the frame gives it too, hence a warning with "inverted?").

Only numpy and PIL are imported, so the dataset builders can use this without loading torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from .image_files import to_8bit

MASK_BACKGROUND = 0
MASK_INSTANCE = 255
MASK_THRESHOLD = 128
EMPTY_SLOT = -1.0

# A pixel counts as black or white within this distance of 0 or 255; JPEG noise and anti-aliased edges stay inside.
NEAR_BLACK_WHITE = 25
# Share of pixels that may be neither near black nor near white (soft edges) before a mask counts as not binary.
MAX_GREY_SHARE = 0.05
# Largest channel spread (max - min of R, G, B) that still counts as grey.
MAX_CHANNEL_SPREAD = 8
# Share of pixels where the alpha channel and the grey may disagree (soft edges) before the alpha is the mask.
MAX_ALPHA_DISAGREEMENT = 0.01
# An instance covering at least this share of the image, with pixels on all four borders, looks inverted.
INVERTED_SHARE = 0.9

GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

__all__ = ["EMPTY_SLOT", "MASK_BACKGROUND", "MASK_INSTANCE", "MASK_THRESHOLD", "MaskFormatError", "MaskIssue",
           "binarize_mask", "inspect_mask", "mask_to_grey", "read_mask", "save_mask"]


def binarize_mask(grey: np.ndarray) -> np.ndarray:
    """A grey uint8 mask -> boolean (H, W), True where the pixel is at least ``MASK_THRESHOLD``."""
    return np.asarray(grey) >= MASK_THRESHOLD


def mask_to_grey(mask: np.ndarray) -> np.ndarray:
    """A boolean (H, W) mask -> uint8 grey, ``MASK_INSTANCE`` inside and ``MASK_BACKGROUND`` outside."""
    return np.where(np.asarray(mask, dtype=bool), MASK_INSTANCE, MASK_BACKGROUND).astype(np.uint8)


def save_mask(mask: np.ndarray, path: str | Path) -> None:
    """Write a boolean (H, W) mask as the 8-bit grey file the loader reads (the format follows the suffix)."""
    Image.fromarray(mask_to_grey(mask), "L").save(path)


# ---------------------------------------------------------------------------------------------- reading
class MaskIssue(NamedTuple):
    """What is wrong with a mask file: a short code and one line saying what it does to training and the fix."""

    code: str
    message: str


class MaskFormatError(ValueError):
    """A mask file in a format the loader refuses (see the module docstring); ``issue`` says which."""

    def __init__(self, issue: MaskIssue):
        super().__init__(issue.message)
        self.issue = issue


def read_mask(mask: Image.Image) -> np.ndarray:
    """The mask as training reads it: uint8 grey (H, W). Raises MaskFormatError for a refused format."""
    grey, refusal = _decode(mask)
    if refusal is not None:
        raise MaskFormatError(refusal)
    return grey


def inspect_mask(mask: Image.Image) -> tuple[MaskIssue | None, list[MaskIssue]]:
    """(why ``read_mask`` refuses the mask or None, the warnings about what it reads): the checker's view."""
    grey, refusal = _decode(mask)
    if refusal is not None:
        return refusal, []
    return None, _warnings(grey, mask)


def _is_colour(mask: Image.Image) -> bool:
    if mask.mode in GREY_MODES:
        return False
    rgb = np.asarray(mask.convert("RGB"))
    spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
    return int(spread.max(initial=0)) > MAX_CHANNEL_SPREAD


def _colour_name(mask: Image.Image) -> str:
    return "palette" if mask.mode in ("P", "PA") else "colour"


def _alpha_issue(mask: Image.Image, grey: np.ndarray) -> MaskIssue | None:
    """The alpha channel holds another mask than the grey (an RGBA cut-out), or None."""
    if mask.mode not in ALPHA_MODES and "transparency" not in mask.info:
        return None
    alpha = binarize_mask(np.asarray(mask.convert("RGBA"))[..., 3])
    if alpha.all() or not alpha.any():
        return None  # no shape in the alpha channel: nothing is lost by reading the grey
    differ = float((alpha != binarize_mask(grey)).mean())
    if differ <= MAX_ALPHA_DISAGREEMENT:
        return None
    return MaskIssue("mask-alpha", (
        f"mask has transparency (mode {mask.mode}) whose shape differs from its grey on {differ:.0%} of the pixels: "
        f"an RGBA cut-out with the instance in the alpha channel? Training reads the grey, not the alpha, so it "
        f"would train on another mask; save the alpha channel as an 8-bit grey mask (0 background, 255 instance), "
        f"e.g. Image.open(f).getchannel('A').save(f)"))


def _decode(mask: Image.Image) -> tuple[np.ndarray, MaskIssue | None]:
    """The grey the loader reads and, for a refused format, why (the errors of the module docstring)."""
    mask = to_8bit(mask, keep_8bit_values=True)
    grey = np.asarray(mask.convert("L"))
    alpha = _alpha_issue(mask, grey)
    if alpha is not None:
        return grey, alpha
    brightest = int(grey.max(initial=0))
    if brightest == 0 or brightest >= MASK_INSTANCE - NEAR_BLACK_WHITE:
        return grey, None
    if brightest == 1:
        return grey, MaskIssue("mask-0-1", (
            "0/1 mask: the instance is stored as 1, not 255, so it would train as an invisible instance; save it "
            "with 255 for the instance (multiply the values by 255)"))
    if _is_colour(mask):
        return grey, MaskIssue("faint-mask", (
            f"{_colour_name(mask)} mask (mode {mask.mode}): training reads it as grey by luminance and its "
            f"brightest grey is {brightest} of 255, so the instance would train faint; save it as 8-bit grey "
            f"(0 background, 255 instance)"))
    if brightest < MASK_THRESHOLD:
        return grey, MaskIssue("faint-mask", (
            f"mask's brightest pixel is {brightest} of 255, below {MASK_THRESHOLD}, so no pixel counts as instance "
            f"and it would train faint (a label map of instance ids?); save one file per instance with 255 for the "
            f"instance and 0 elsewhere"))
    return grey, None


def _warnings(grey: np.ndarray, mask: Image.Image) -> list[MaskIssue]:
    brightest = int(grey.max(initial=0))
    if brightest == 0:
        return [MaskIssue("empty-mask", "mask is all 0 (no instance pixel), so it adds an empty instance; training "
                                        "goes on, but remove the file or draw the instance in 255")]
    if _is_colour(to_8bit(mask, keep_8bit_values=True)):
        return [MaskIssue("colour-mask", (
            f"mask is in colour (mode {mask.mode}); training reads it as grey by luminance (its brightest grey is "
            f"{brightest} of 255); save it as 8-bit grey (0 background, 255 instance)"))]
    found = []
    in_between = (grey > NEAR_BLACK_WHITE) & (grey < MASK_INSTANCE - NEAR_BLACK_WHITE)
    share = float(in_between.mean())
    if share > MAX_GREY_SHARE:
        found.append(MaskIssue("non-binary-mask", (
            f"{share:.0%} of the pixels are neither near 0 nor near 255; masks should be black (0) and white (255), "
            f"e.g. threshold at {MASK_THRESHOLD}")))
    instance = binarize_mask(grey)
    covered = float(instance.mean())
    borders = (instance[0].any(), instance[-1].any(), instance[:, 0].any(), instance[:, -1].any())
    if covered >= INVERTED_SHARE and all(borders):
        found.append(MaskIssue("inverted-mask", (
            f"inverted? the instance (pixels >= {MASK_THRESHOLD}) covers {covered:.0%} of the image and all four "
            f"borders; masks need 0 for the background and 255 for the instance: if it is inverted save 255 - value, "
            f"if the object really fills the image ignore this")))
    return found
