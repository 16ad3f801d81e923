"""The dataset checker (data/check.py): every problem gets its documented code, severity and exit status,
errors are exactly what makes the loader fail, and a clean dataset passes."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from data.base_dataset import DatasetError, DomainFolder
from data.check import Finding, check_dataset, main
from util.image_files import same_name

SIZE = 32


# ------------------------------------------------------------------------------------------------ helpers
def _mask_pixels(index: int = 0) -> np.ndarray:
    pixels = np.zeros((SIZE, SIZE), np.uint8)
    pixels[4 + index: 12 + index, 4:20] = 255
    return pixels


def _write_image(path: Path, size: int = SIZE) -> None:
    rng = np.random.default_rng(len(path.name))
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def _write_mask(path: Path, pixels: np.ndarray | None = None) -> None:
    Image.fromarray(_mask_pixels() if pixels is None else pixels).save(path)


def _make_dataset(root: Path, stems: tuple[str, ...] = ("a", "b"), masks_per_image: int = 2) -> Path:
    for letter in "AB":
        (root / f"train{letter}").mkdir(parents=True)
        (root / f"train{letter}_seg").mkdir()
        for stem in stems:
            _write_image(root / f"train{letter}" / f"{stem}.png")
            for k in range(masks_per_image):
                _write_mask(root / f"train{letter}_seg" / f"{stem}_{k}.png", _mask_pixels(k))
    return root


def _loader_fails(root: Path, max_instances: int = 20) -> bool:
    """Whether the real loader raises on this dataset (loading every sample of both domains)."""
    opt = argparse.Namespace(dataroot=str(root), phase="train", max_dataset_size=float("inf"),
                             max_instances=max_instances)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the loader's own too-many-masks warning
            for letter in "AB":
                domain = DomainFolder(opt, letter, nc=3, with_masks=True)
                for index in range(len(domain)):
                    domain.load(index, lambda stack: stack)
    except DatasetError:
        return True
    return False


def _png_bytes(mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (SIZE, SIZE), "white" if mode == "L" else (30, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _codes(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(Path(f.path).name, f.code, f.severity) for f in findings}


# ------------------------------------------------------------------------------------------- clean data
def test_clean_dataset_has_no_findings_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _make_dataset(tmp_path / "data")
    report = check_dataset(root)
    assert report.findings == []
    assert report.ok
    assert (report.images_checked, report.masks_checked) == (4, 8)
    assert main(["--dataroot", str(root)]) == 0
    assert "0 errors, 0 warnings in 0 files" in capsys.readouterr().out


def test_names_with_spaces_unicode_and_underscore_digits_are_clean(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path / "data set ü", stems=("my cat", "chat_été 猫", "img_12"))
    assert check_dataset(root).findings == []
    assert not _loader_fails(root)


def test_grey_valued_rgb_and_1_bit_masks_are_clean(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path)
    Image.fromarray(np.stack([_mask_pixels()] * 3, axis=-1)).save(root / "trainA_seg" / "a_0.png")
    Image.fromarray(_mask_pixels() > 0).save(root / "trainA_seg" / "a_1.png")
    assert check_dataset(root).findings == []


def test_anti_aliased_mask_edges_are_clean(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path)
    pixels = _mask_pixels()
    pixels[3, 4:20] = 128  # one soft edge row: 16 of 1024 pixels
    _write_mask(root / "trainA_seg" / "a_0.png", pixels)
    assert check_dataset(root).findings == []


# --------------------------------------------------------------------------------------------- problems
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


def _colour_mask(path: Path, colour: tuple[int, int, int] = (255, 0, 0)) -> None:
    pixels = np.zeros((SIZE, SIZE, 3), np.uint8)
    pixels[4:12, 4:20] = colour
    Image.fromarray(pixels).save(path)


def _palette_mask(path: Path) -> None:
    mask = Image.fromarray(_mask_pixels() // 255).convert("P")
    mask.putpalette([0, 0, 0, 0, 200, 0])
    mask.save(path)


def _transparent_mask(path: Path) -> None:
    alpha = _mask_pixels()
    Image.fromarray(np.stack([np.full_like(alpha, 255)] * 3 + [alpha], axis=-1)).save(path)


def _sixteen_bit_mask(path: Path) -> None:
    Image.fromarray(_mask_pixels().astype(np.uint16) * 257).save(path)


def _too_many_masks(root: Path) -> None:
    for k in range(2, 5):
        _write_mask(root / "trainA_seg" / f"a_{k}.png")


CASES: dict[str, tuple[Callable[[Path], None], str, str, str]] = {
    # name: (break the dataset, file named in the finding, code, severity)
    "truncated image": (lambda r: _truncate(r / "trainA" / "a.png"), "a.png", "unreadable", "error"),
    "truncated mask": (lambda r: _truncate(r / "trainB_seg" / "b_1.png"), "b_1.png", "unreadable", "error"),
    "garbage image": (lambda r: (r / "trainB" / "b.png").write_bytes(b"not a png"), "b.png", "unreadable",
                      "error"),
    "zero-byte image": (lambda r: (r / "trainA" / "b.png").write_bytes(b""), "b.png", "zero-byte", "error"),
    "zero-byte mask": (lambda r: (r / "trainA_seg" / "a_0.png").write_bytes(b""), "a_0.png", "zero-byte",
                       "error"),
    "wrong-size mask": (lambda r: _write_mask(r / "trainB_seg" / "a_0.png", np.zeros((SIZE, SIZE + 2), np.uint8)),
                        "a_0.png", "size-mismatch", "error"),
    "duplicate stem": (lambda r: _write_image(r / "trainA" / "a.jpg"), "a.png", "duplicate-stem", "error"),
    "missing domain folder": (lambda r: shutil.rmtree(r / "trainB"), "trainB", "missing-folder", "error"),
    "missing seg folder": (lambda r: shutil.rmtree(r / "trainA_seg"), "trainA_seg", "missing-seg-folder", "error"),
    "no images": (lambda r: [p.unlink() for p in (r / "trainB").iterdir()], "trainB", "no-images", "error"),
    "bright colour mask": (lambda r: _colour_mask(r / "trainA_seg" / "a_1.png", (255, 255, 160)), "a_1.png",
                           "colour-mask", "warning"),
    "grey gradient mask": (lambda r: _write_mask(r / "trainA_seg" / "b_0.png",
                                                 np.tile(np.arange(0, 256, 8, dtype=np.uint8), (SIZE, 1))),
                           "b_0.png", "non-binary-mask", "warning"),
    "orphan mask": (lambda r: _write_mask(r / "trainB_seg" / "zebra_0.png"), "zebra_0.png", "orphan-mask",
                    "warning"),
    "misnamed mask": (lambda r: _write_mask(r / "trainB_seg" / "a-mask.png"), "a-mask.png", "bad-mask-name",
                      "warning"),
    "image without masks": (lambda r: [(r / "trainA_seg" / f"b_{k}.png").unlink() for k in (0, 1)], "b.png",
                            "no-masks", "warning"),
    "too many masks": (_too_many_masks, "a.png", "too-many-masks", "warning"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_problem_gets_its_code_severity_and_exit_status(tmp_path: Path, case: str,
                                                             capsys: pytest.CaptureFixture) -> None:
    break_it, file_name, code, severity = CASES[case]
    root = _make_dataset(tmp_path / "data")
    break_it(root)
    report = check_dataset(root, max_instances=4)
    assert _codes(report.findings) == {(file_name, code, severity)}
    assert len(report.errors if severity == "error" else report.warnings) == len(report.findings)
    # errors are exactly what makes training's loader fail
    assert _loader_fails(root, max_instances=4) == (severity == "error")

    assert main(["--dataroot", str(root), "--max_instances", "4"]) == 1
    lines = capsys.readouterr().out.splitlines()
    finding_lines = [line for line in lines if line.startswith(f"{severity}: ")]
    assert len(finding_lines) == len(report.findings)
    assert all(file_name in line and f"[{code}]" in line for line in finding_lines)
    noun = "errors" if severity == "error" else "warnings"
    assert f"{len(report.findings)} {noun}" in lines[-1]


def _loader_error(root: Path) -> str:
    """The real loader's message on this dataset, "" when it loads."""
    opt = argparse.Namespace(dataroot=str(root), phase="train", max_dataset_size=float("inf"), max_instances=20)
    try:
        for letter in "AB":
            domain = DomainFolder(opt, letter, nc=3, with_masks=True)
            for index in range(len(domain)):
                domain.load(index, lambda stack: stack)
    except DatasetError as err:
        return str(err)
    return ""


# --------------------------------------------------------------- mask pixels: errors stop training, in fast mode too
def _cut_out(path: Path) -> None:
    """An RGBA cut-out: the photo in RGB, the instance in the alpha channel."""
    photo = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(np.dstack([photo, _mask_pixels()])).save(path)


def _inverted_mask(path: Path) -> None:
    """Background 255 and a 4x8 instance 0: 97% "instance", on all four borders."""
    pixels = np.full((SIZE, SIZE), 255, np.uint8)
    pixels[10:14, 10:18] = 0
    _write_mask(path, pixels)


MASK_CASES: dict[str, tuple[Callable[[Path], None], str, str, str]] = {
    # name: (write the mask file, code, severity, fragment of the message)
    "0/1 mask": (lambda p: _write_mask(p, _mask_pixels() // 255), "mask-0-1", "error", "multiply the values by 255"),
    "RGBA cut-out, white RGB": (_transparent_mask, "mask-alpha", "error", "RGBA cut-out"),
    "RGBA cut-out, photo RGB": (_cut_out, "mask-alpha", "error", "save the alpha channel"),
    "palette mask": (_palette_mask, "faint-mask", "error", "palette mask (mode P)"),
    "red colour mask": (_colour_mask, "faint-mask", "error", "brightest grey is 76 of 255"),
    "label map of ids": (lambda p: _write_mask(p, (np.indices((SIZE, SIZE))[1] // 8).astype(np.uint8)),
                         "faint-mask", "error", "label map"),
    "inverted mask": (_inverted_mask, "inverted-mask", "warning", "inverted?"),
    "empty mask": (lambda p: _write_mask(p, np.zeros((SIZE, SIZE), np.uint8)), "empty-mask", "warning",
                   "training goes on"),
}


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("case", list(MASK_CASES))
def test_mask_pixel_problems_are_found_and_errors_are_what_the_loader_refuses(tmp_path: Path, case: str,
                                                                             fast: bool) -> None:
    write, code, severity, fragment = MASK_CASES[case]
    root = _make_dataset(tmp_path)
    write(root / "trainB_seg" / "a_1.png")
    (finding,) = check_dataset(root, fast=fast).findings
    assert (Path(finding.path).name, finding.code, finding.severity) == ("a_1.png", code, severity)
    assert fragment in finding.message
    loader_error = _loader_error(root)
    assert bool(loader_error) == (severity == "error")
    if loader_error:  # the loader refuses with the checker's words
        assert finding.message in loader_error and "a_1.png" in loader_error


FORMATS_READ_RIGHT: dict[str, Callable[[Path], None]] = {
    # masks (and an image) whose format is unusual but read as intended: no finding, and the loader reads them
    "16-bit mask 0/65535": lambda r: _sixteen_bit_mask(r / "trainA_seg" / "a_0.png"),
    "16-bit mask holding 0/255": lambda r: _write_mask(r / "trainA_seg" / "a_1.png",
                                                       _mask_pixels(1).astype(np.uint16)),
    "RGBA whose alpha is the grey": lambda r: Image.fromarray(np.dstack([_mask_pixels()] * 4)).save(
        r / "trainB_seg" / "a_0.png"),
    "grey-valued RGB mask": lambda r: Image.fromarray(np.dstack([_mask_pixels()] * 3)).save(
        r / "trainB_seg" / "b_0.png"),
    "1-bit mask": lambda r: Image.fromarray(_mask_pixels(1) > 0).save(r / "trainB_seg" / "b_1.png"),
    "16-bit grey image": lambda r: Image.fromarray(
        np.random.default_rng(0).integers(0, 65536, (SIZE, SIZE), dtype=np.uint16)).save(r / "trainA" / "b.png"),
}


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_formats_the_loader_reads_right_are_clean(tmp_path: Path, fast: bool) -> None:
    root = _make_dataset(tmp_path)
    for write in FORMATS_READ_RIGHT.values():
        write(root)
    assert check_dataset(root, fast=fast).findings == []
    assert _loader_error(root) == ""


def test_dark_16bit_image_is_a_warning(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path)
    Image.fromarray(np.full((SIZE, SIZE), 4000, np.uint16)).save(root / "trainA" / "a.png")  # 12-bit data
    (finding,) = check_dataset(root).findings
    assert (finding.code, finding.severity) == ("dark-16bit-image", "warning") and "12-bit" in finding.message


def test_fast_check_reads_the_pixels_of_a_seeded_sample_of_masks(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path, stems=tuple("abcdefgh"), masks_per_image=1)
    for stem in "abcdefgh":
        _write_mask(root / "trainA_seg" / f"{stem}_0.png", _mask_pixels() // 255)
    reports = [check_dataset(root, fast=True, mask_sample=3) for _ in range(2)]
    assert reports[0].findings == reports[1].findings  # the same sample every run
    assert [(f.code, f.severity) for f in reports[0].findings] == [("mask-0-1", "error")] * 3
    assert reports[0].mask_pixels_checked == 6 and "pixels of 6 sampled masks" in reports[0].summary()
    assert len(check_dataset(root).errors) == 8  # the full check reads every mask
    assert check_dataset(root).mask_pixels_checked == 16


# ------------------------------------------------------------------------- image sizes against train.py's options
def _resize_image(root: Path, stem: str, width: int, height: int) -> None:
    """Make image ``trainA/<stem>.png`` and its masks ``width`` x ``height``."""
    _write_image(root / "trainA" / f"{stem}.png")
    with Image.open(root / "trainA" / f"{stem}.png") as image:
        image.resize((width, height)).save(root / "trainA" / f"{stem}.png")
    for mask in (root / "trainA_seg").glob(f"{stem}_*.png"):
        _write_mask(mask, np.where(np.indices((height, width))[0] < 4, 255, 0).astype(np.uint8))


SIZE_CASES = {
    # name: (image sizes in trainA (stem: width, height), check_dataset options, findings: (folder, code, fragment))
    "crop larger than every image": ({}, {"preprocess": "crop", "crop_size": (40, 40)},
                                     [("trainA", "smaller-than-crop", "--crop_size_w/--crop_size_h to at most 32x32"),
                                      ("trainB", "smaller-than-crop", "2 of 2 images")]),
    "crop larger than one image": ({"b": (36, 20)}, {"preprocess": "crop", "crop_size": (24, 32)},
                                   [("trainA", "smaller-than-crop", "b.png 36x20")]),
    "none, mixed sizes, batch 4": ({"b": (48, 40)}, {"preprocess": "none", "batch_size": 4},
                                   [("trainA", "mixed-sizes", "use --batch_size 1")]),
    "none, mixed sizes, batch 1": ({"b": (48, 40)}, {"preprocess": "none", "batch_size": 1}, []),
    "none, sizes one after rounding": ({"b": (31, 30)}, {"preprocess": "none", "batch_size": 4}, []),
    "resize, mixed sizes, batch 4": ({"b": (48, 40)}, {"preprocess": "resize", "batch_size": 4}, []),
    "crop that fits": ({"b": (48, 40)}, {"preprocess": "crop", "crop_size": (32, 32), "batch_size": 4}, []),
}


@pytest.mark.parametrize("case", list(SIZE_CASES))
def test_image_sizes_are_checked_once_per_folder_against_the_options(tmp_path: Path, case: str) -> None:
    sizes, options, expected = SIZE_CASES[case]
    root = _make_dataset(tmp_path)
    for stem, (width, height) in sizes.items():
        _resize_image(root, stem, width, height)
    report = check_dataset(root, fast=True, **options)
    assert [(Path(f.path).name, f.code) for f in report.findings] == [(folder, code) for folder, code, _ in expected]
    for finding, (_, _, fragment) in zip(report.findings, expected):
        assert finding.severity == "error" and fragment in finding.message


def test_size_options_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _make_dataset(tmp_path)
    assert main(["--dataroot", str(root), "--preprocess", "crop", "--crop_size", "40"]) == 1
    assert capsys.readouterr().out.count("[smaller-than-crop]") == 2
    assert main(["--dataroot", str(root), "--preprocess", "crop", "--crop_size", "32"]) == 0


def test_without_masks_only_the_images_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--dataset_mode unaligned (CycleGAN) reads no _seg folders: their absence is no error, sizes still count."""
    root = _make_dataset(tmp_path)
    for letter in "AB":
        shutil.rmtree(root / f"train{letter}_seg")
    assert check_dataset(root, fast=True, with_masks=False).findings == []
    report = check_dataset(root, fast=True, with_masks=False, preprocess="crop", crop_size=(40, 40))
    assert [f.code for f in report.findings] == ["smaller-than-crop"] * 2
    assert main(["--dataroot", str(root), "--no_masks"]) == 0


# ----------------------------------------------------------------------------------- names: Unicode, macOS files
def _unicode_twins(folder: Path, write: Callable[[Path], None]) -> tuple[str, str]:
    """Write ``café.png`` twice, NFC and NFD (skips where the file system folds them into one name, as macOS)."""
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    for name in (nfc, nfd):
        write(folder / f"{name}.png")
    if sum(same_name(p.name) == same_name(f"{nfc}.png") for p in folder.iterdir()) < 2:
        pytest.skip("this file system keeps one name for both Unicode forms")  # skip-ok: a file-system property
    return nfc, nfd


def test_unicode_normalisation_twins_are_duplicates_naming_both(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path)
    nfc, nfd = _unicode_twins(root / "trainA", _write_image)
    for name in (nfc, nfd):
        _write_mask(root / "trainA_seg" / f"{name}_0.png")
    (finding,) = check_dataset(root, fast=True).findings
    assert (finding.code, finding.severity) == ("duplicate-stem", "error")
    assert "two Unicode forms" in finding.message and "remove one" in finding.message
    assert ascii(f"{nfc}.png") in finding.message and ascii(f"{nfd}.png") in finding.message
    assert "Unicode forms" in _loader_error(root)


def test_mask_named_in_another_unicode_form_than_its_image_says_so(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path)
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    _write_image(root / "trainA" / f"{nfc}.png")
    _write_mask(root / "trainA_seg" / f"{nfd}_0.png")
    codes = _codes(check_dataset(root).findings)
    assert codes == {(f"{nfc}.png", "no-masks", "warning"), (f"{nfd}_0.png", "unicode-name-mismatch", "warning")}


def test_macos_metadata_files_are_ignored_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _make_dataset(tmp_path)
    appledouble = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
    for path in ("trainA/._a.png", "trainB/._b.jpg", "trainA_seg/._a_0.png", "trainA/.DS_Store",
                 "trainB_seg/.DS_Store"):
        (root / path).write_bytes(appledouble)
    report = check_dataset(root, fast=True)
    assert report.findings == [] and report.ignored == 5 and report.images_checked == 4
    assert main(["--dataroot", str(root)]) == 0
    assert "info: ignored 5 macOS metadata files (._*, .DS_Store)" in capsys.readouterr().out
    assert _loader_error(root) == ""


def test_format_limit_shows_errors_first_and_counts_the_rest(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path, stems=("a", "b", "c"), masks_per_image=1)
    for stem in "abc":
        (root / "trainB_seg" / f"{stem}_0.png").unlink()
    (root / "trainA" / "c.png").write_bytes(b"")
    lines = check_dataset(root).format(limit=2).splitlines()
    assert lines[0].startswith("error: ") and "c.png" in lines[0]
    assert lines[1].startswith("warning: ")
    assert lines[2].startswith("... and 2 more")
    assert lines[3].startswith("1 errors, 3 warnings in 4 files")


def test_missing_dataroot_is_one_error(tmp_path: Path) -> None:
    report = check_dataset(tmp_path / "nowhere")
    assert [(f.code, f.severity) for f in report.findings] == [("missing-folder", "error")]
    assert main(["--dataroot", str(tmp_path / "nowhere")]) == 1


def test_every_requested_phase_is_checked(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path)
    report = check_dataset(root, phases=("train", "test"))
    assert {Path(f.path).name for f in report.errors} == {"testA", "testB"}


def test_masks_beyond_max_instances_are_not_read(tmp_path: Path) -> None:
    """The loader never opens them, so a broken one there must not be reported as an error."""
    root = _make_dataset(tmp_path, masks_per_image=3)
    (root / "trainA_seg" / "a_2.png").write_bytes(b"")
    report = check_dataset(root, max_instances=2)
    assert report.errors == []
    assert _codes(report.findings) == {("a.png", "too-many-masks", "warning"), ("b.png", "too-many-masks", "warning")}


def test_fast_mode_still_finds_header_level_errors(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path)
    (root / "trainA" / "a.png").write_bytes(b"")
    _write_mask(root / "trainB_seg" / "b_0.png", np.zeros((SIZE + 1, SIZE), np.uint8))
    _write_image(root / "trainB" / "b.jpg")
    found = _codes(check_dataset(root, fast=True).findings)
    assert found == {("a.png", "zero-byte", "error"), ("b_0.png", "size-mismatch", "error"),
                     ("b.png", "duplicate-stem", "error")}


def test_json_output_lists_findings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _make_dataset(tmp_path)
    _write_mask(root / "trainB_seg" / "zoé_0.png")
    (root / "trainA" / "b.png").write_bytes(b"")
    assert main(["--dataroot", str(root), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["errors"], data["warnings"]) == (1, 1)
    assert {(Path(f["path"]).name, f["code"]) for f in data["findings"]} == {("zoé_0.png", "orphan-mask"),
                                                                             ("b.png", "zero-byte")}


def test_bad_max_instances_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--dataroot", str(tmp_path), "--max_instances", "0"]) == 2
    assert "--max_instances" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- hypothesis
@pytest.fixture(scope="module")
def one_image_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_dataset(tmp_path_factory.mktemp("fuzz"), stems=("a",), masks_per_image=1)


def _agrees_with_loader(root: Path, broken: Path, content: bytes) -> None:
    original = broken.read_bytes()
    broken.write_bytes(content)
    try:
        errors = check_dataset(root).errors
        assert all(Path(f.path) == broken for f in errors)
        assert bool(errors) == _loader_fails(root)
    finally:
        broken.write_bytes(original)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(_png_bytes()) - 1), in_mask=st.booleans())
def test_any_truncation_is_an_error_exactly_when_the_loader_fails(one_image_dataset: Path, cut: int,
                                                                   in_mask: bool) -> None:
    root = one_image_dataset
    broken = root / ("trainA_seg/a_0.png" if in_mask else "trainA/a.png")
    valid = _png_bytes("L" if in_mask else "RGB")
    _agrees_with_loader(root, broken, valid[: min(cut, len(valid) - 1)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]), noise=st.binary(max_size=200),
       in_mask=st.booleans())
def test_random_bytes_never_crash_the_checker(one_image_dataset: Path, prefix: bytes, noise: bytes,
                                              in_mask: bool) -> None:
    root = one_image_dataset
    broken = root / ("trainB_seg/a_0.png" if in_mask else "trainB/a.png")
    _agrees_with_loader(root, broken, prefix + noise)
