"""The data pipeline: on-disk format, joint transform alignment, sampling, errors, registry, loader."""

from __future__ import annotations

import argparse
import math
import pickle
import shutil
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

import data
from data.base_dataset import BaseDataset, DatasetError, get_joint_transform, load_image, load_masks
from data.single_dataset import SingleDataset
from data.single_seg_dataset import SingleSegDataset
from data.unaligned_dataset import UnalignedDataset
from data.unaligned_seg_dataset import UnalignedSegDataset

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------- helpers
def make_opt(root: Path, **changes) -> argparse.Namespace:
    opt = argparse.Namespace(
        dataroot=str(root), phase="train", dataset_mode="unaligned_seg", isTrain=True,
        load_size_h=32, load_size_w=32, crop_size_h=32, crop_size_w=32, preprocess="none",
        no_flip=True, serial_batches=True, max_dataset_size=math.inf, max_instances=4,
        batch_size=1, num_threads=0, direction="AtoB", input_nc=3, output_nc=3)
    for key, value in changes.items():
        assert hasattr(opt, key), key
        setattr(opt, key, value)
    return opt


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def write_domain(root: Path, letter: str, masks_per_image: dict[str, int], size=(32, 32), phase="train") -> None:
    """Images ``<stem>.png`` with ``n`` half-plane masks each; the seg folder always exists."""
    (root / f"{phase}{letter}_seg").mkdir(parents=True, exist_ok=True)
    for index, (stem, count) in enumerate(masks_per_image.items()):
        save(root / f"{phase}{letter}" / f"{stem}.png", noise(*size, seed=index))
        for k in range(count):
            mask = np.zeros(size, np.uint8)
            mask[:, : size[1] // 2] = 255
            save(root / f"{phase}{letter}_seg" / f"{stem}_{k}.png", mask)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A dataroot whose path contains the letters A and B (the original replaced every 'A' in the path)."""
    base = tmp_path / "AB_sets_A_B"
    write_domain(base, "A", {"a0": 2, "a1": 0, "a2": 1})
    write_domain(base, "B", {"b0": 1, "b1": 3})
    return base


# ---------------------------------------------------------------------------------------- format, shapes
def test_sample_keys_shapes_and_ranges(root: Path):
    sample = UnalignedSegDataset(make_opt(root))[0]
    assert sample["A"].shape == (3, 32, 32) and sample["B"].shape == (3, 32, 32)
    assert sample["A_seg"].shape == (4, 32, 32) and sample["B_seg"].shape == (4, 32, 32)
    assert sample["A_paths"] == str(root / "trainA" / "a0.png")
    assert sample["A_num_instances"] == 2 and sample["B_num_instances"] == 1
    for key in ("A", "B", "A_seg", "B_seg"):
        assert sample[key].dtype == torch.float32
        assert sample[key].min() >= -1 and sample[key].max() <= 1
    # masks: left half instance (+1), right half background (-1); empty slots exactly -1
    assert torch.all(sample["A_seg"][:2, :, :16] == 1) and torch.all(sample["A_seg"][:2, :, 16:] == -1)
    assert torch.all(sample["A_seg"][2:] == -1)


def test_image_without_mask_file_is_a_sample_with_zero_instances(root: Path):
    sample = UnalignedSegDataset(make_opt(root))[1]
    assert sample["A_paths"].endswith("a1.png")
    assert sample["A_num_instances"] == 0
    assert torch.all(sample["A_seg"] == -1)


def test_len_is_larger_domain_and_a_cycles(root: Path):
    dataset = UnalignedSegDataset(make_opt(root))
    assert len(dataset) == 3
    assert [dataset[i]["B_paths"][-6:] for i in range(3)] == ["b0.png", "b1.png", "b0.png"]


def test_jpg_and_uppercase_extensions_are_images(tmp_path: Path):
    save(tmp_path / "trainA" / "photo.JPG", noise(32, 32))
    save(tmp_path / "trainA" / "other.jpeg", noise(32, 32))
    save(tmp_path / "trainA_seg" / "photo_0.png", np.full((32, 32), 255, np.uint8))
    write_domain(tmp_path, "B", {"b": 0})
    dataset = SingleSegDataset(make_opt(tmp_path))
    assert len(dataset) == 2
    photo = dataset[1]
    assert photo["A_paths"].endswith("photo.JPG") and photo["A_num_instances"] == 1


def test_masks_found_by_stem_with_underscores_digits_and_ordered_by_number(tmp_path: Path):
    save(tmp_path / "trainA" / "img_1.png", noise(32, 32))
    save(tmp_path / "trainA" / "img_12.png", noise(32, 32))
    grey = {0: 130, 1: 160, 2: 190, 10: 255}  # k -> constant grey value, to read the order back
    for k, value in grey.items():
        save(tmp_path / "trainA_seg" / f"img_12_{k}.png", np.full((32, 32), value, np.uint8))
    save(tmp_path / "trainA_seg" / "img_1_0.png", np.full((32, 32), 255, np.uint8))
    save(tmp_path / "trainA_seg" / "nothing_0.png", np.zeros((32, 32), np.uint8))  # no image: ignored
    dataset = SingleSegDataset(make_opt(tmp_path, max_instances=5))
    img_1, img_12 = dataset[0], dataset[1]
    assert img_1["A_num_instances"] == 1 and torch.all(img_1["A_seg"][0] == 1)
    assert img_12["A_num_instances"] == 4
    expected = [v / 127.5 - 1 for v in grey.values()] + [-1.0]
    assert img_12["A_seg"][:, 0, 0].tolist() == pytest.approx(expected, abs=1e-6)


def test_more_masks_than_max_instances_keeps_first_and_warns_once(tmp_path: Path):
    write_domain(tmp_path, "A", {"many": 5, "more": 6, "few": 1})
    with pytest.warns(UserWarning, match="max_instances") as caught:
        dataset = SingleSegDataset(make_opt(tmp_path, max_instances=3))
    assert len([w for w in caught if "max_instances" in str(w.message)]) == 1
    sample = dataset[1]  # sorted: few, many, more
    assert sample["A_paths"].endswith("many.png")
    assert sample["A_seg"].shape[0] == 3 and sample["A_num_instances"] == 3


def test_colour_and_grey_masks_map_to_minus_one_plus_one(tmp_path: Path):
    save(tmp_path / "trainA" / "x.png", noise(32, 32))
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:16] = 255
    save(tmp_path / "trainA_seg" / "x_0.png", rgb)
    seg = SingleSegDataset(make_opt(tmp_path))[0]["A_seg"]
    assert torch.all(seg[0, :16] == 1) and torch.all(seg[0, 16:] == -1)


# ------------------------------------------------------------- file formats: read as data.check assumes, or refused
def test_16bit_grey_image_is_scaled_to_8_bits_not_clipped_to_white(tmp_path: Path):
    path = save(tmp_path / "deep.png", np.array([[0, 40000], [65535, 257]], np.uint16))  # PIL mode I;16
    expected = np.array([[0, 156], [255, 1]]) / 127.5 - 1  # value * 255 / 65535, rounded
    np.testing.assert_allclose(load_image(path, 1)[0].numpy(), expected, atol=1e-6)
    assert load_image(path, 3).shape == (3, 2, 2)
    assert torch.equal(load_image(path, 3)[1], load_image(path, 1)[0])


def test_16bit_masks_are_read_in_8_bits(tmp_path: Path):
    cases = [  # 16-bit pixels -> the 8-bit grey read
        (np.array([[0, 65535], [32896, 65535]], np.uint16), [[0, 255], [128, 255]]),  # 16-bit range: scaled
        (np.array([[0, 255], [255, 0]], np.uint16), [[0, 255], [255, 0]]),  # 8-bit values in 16 bits: as is
    ]
    for index, (pixels, grey) in enumerate(cases):
        path = save(tmp_path / f"m_{index}.png", pixels)
        np.testing.assert_allclose(load_masks([path], (2, 2))[0].numpy(), np.array(grey) / 127.5 - 1, atol=1e-6)


def _square(size: int = 16) -> np.ndarray:
    pixels = np.zeros((size, size), np.uint8)
    pixels[4:12, 4:12] = 255
    return pixels


def _palette(index_pixels: np.ndarray, colour: tuple[int, int, int]) -> Image.Image:
    image = Image.fromarray(index_pixels).convert("P")
    image.putpalette([0, 0, 0, *colour])
    return image


def _cut_out() -> np.ndarray:
    """An RGBA cut-out: the photo in RGB, the instance in the alpha channel."""
    return np.dstack([noise(16, 16), _square()])


REFUSED_MASKS = {
    # name: (mask file content, fragment of the loader's message)
    "0/1 mask": (_square() // 255, "0/1 mask"),
    "RGBA cut-out": (_cut_out(), "alpha channel"),
    "white RGBA cut-out": (np.dstack([np.full((16, 16, 3), 255, np.uint8), _square()]), "alpha channel"),
    "green palette mask": (_palette(_square() // 255, (0, 200, 0)), "palette mask"),
    "label map of ids": (np.minimum(np.indices((16, 16))[1] // 4, 3).astype(np.uint8), "label map"),
}


@pytest.mark.parametrize("case", list(REFUSED_MASKS))
def test_loader_refuses_masks_that_would_train_on_garbage(tmp_path: Path, case: str):
    content, fragment = REFUSED_MASKS[case]
    save(tmp_path / "trainA" / "x.png", noise(16, 16))
    mask = tmp_path / "trainA_seg" / "x_0.png"
    mask.parent.mkdir()
    (content if isinstance(content, Image.Image) else Image.fromarray(content)).save(mask)
    message = error_of(lambda: SingleSegDataset(make_opt(tmp_path))[0])
    assert str(mask) in message and fragment in message


def test_alpha_that_agrees_with_the_grey_and_white_palette_masks_load(tmp_path: Path):
    save(tmp_path / "trainA" / "x.png", noise(16, 16))
    save(tmp_path / "trainA_seg" / "x_0.png", np.dstack([_square()] * 4))  # alpha = grey
    _palette(_square() // 255, (255, 255, 255)).save(tmp_path / "trainA_seg" / "x_1.png")
    seg = SingleSegDataset(make_opt(tmp_path))[0]["A_seg"]
    expected = torch.from_numpy(_square()).float() / 127.5 - 1
    assert torch.equal(seg[0], expected) and torch.equal(seg[1], expected)


# ---------------------------------------------------------------------------------- file names: macOS, Unicode
def test_macos_metadata_files_are_skipped(tmp_path: Path):
    write_domain(tmp_path, "A", {"x": 1})
    appledouble = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
    (tmp_path / "trainA" / "._x.png").write_bytes(appledouble)
    (tmp_path / "trainA" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "trainA_seg" / "._x_0.png").write_bytes(appledouble)
    dataset = SingleSegDataset(make_opt(tmp_path))
    assert len(dataset) == 1
    assert dataset[0]["A_num_instances"] == 1 and dataset[0]["A_seg_ids"].tolist() == [0, -1, -1, -1]


def unicode_twins(folder: Path, stem: str = "café") -> tuple[str, str]:
    """The NFC and NFD spellings of ``stem``, both written as images in ``folder`` (skips where the file
    system folds them into one name, as macOS does)."""
    nfc, nfd = unicodedata.normalize("NFC", stem), unicodedata.normalize("NFD", stem)
    assert nfc != nfd
    for name in (nfc, nfd):
        save(folder / f"{name}.png", noise(16, 16))
    if len(list(folder.iterdir())) < 2:
        pytest.skip("this file system keeps one name for both Unicode forms")  # skip-ok: a file-system property
    return nfc, nfd


def test_unicode_twins_are_duplicates_naming_both(tmp_path: Path):
    nfc, nfd = unicode_twins(tmp_path / "trainA")
    (tmp_path / "trainA_seg").mkdir()
    message = error_of(lambda: SingleSegDataset(make_opt(tmp_path)))
    assert "duplicates" in message and "Unicode forms" in message
    assert ascii(f"{nfc}.png") in message and ascii(f"{nfd}.png") in message


def test_masks_stay_soft_within_range_after_resize(tmp_path: Path):
    save(tmp_path / "trainA" / "x.png", noise(30, 30))
    checker = (np.indices((30, 30)).sum(0) % 2 * 255).astype(np.uint8)
    save(tmp_path / "trainA_seg" / "x_0.png", checker)
    opt = make_opt(tmp_path, preprocess="resize", load_size_h=20, load_size_w=20)
    seg = SingleSegDataset(opt)[0]["A_seg"][0]
    assert seg.shape == (20, 20)
    assert seg.min() >= -1 and seg.max() <= 1
    soft = (seg > -0.99) & (seg < 0.99)
    assert soft.any(), "masks must not be thresholded after resizing"


PIL_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}
ONE_GREY_LEVEL = 1 / 127.5


def pil_resized(pixels: np.ndarray, mode: str, height: int, width: int) -> torch.Tensor:
    """What the authors' pipeline gave: PIL resize of the uint8 image, then [0, 255] -> [-1, 1]."""
    out = np.asarray(Image.fromarray(pixels).resize((width, height), PIL_FILTERS[mode]), dtype=np.float32)
    out = torch.from_numpy(out)
    return (out[None] if out.ndim == 2 else out.permute(2, 0, 1)) / 127.5 - 1


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize("height, width", [(28, 20), (52, 44)])  # shrink, enlarge
def test_resize_of_image_and_masks_matches_pil_in_each_interpolation(tmp_path: Path, mode, height, width):
    """--interpolation bicubic reproduces the authors' PIL bicubic resize (image and masks), bilinear PIL's
    bilinear; within one grey level (PIL rounds to uint8), and far from the other mode."""
    rgb = noise(40, 32, seed=3)
    box = np.zeros((40, 32), np.uint8)
    box[6:25, 9:28] = 255  # sharp corners: where bicubic overshoots
    save(tmp_path / "trainA" / "x.png", rgb)
    save(tmp_path / "trainA_seg" / "x_0.png", box)
    opt = make_opt(tmp_path, preprocess="resize", load_size_h=height, load_size_w=width)
    opt.interpolation = mode
    sample = SingleSegDataset(opt)[0]
    other = "bilinear" if mode == "bicubic" else "bicubic"
    for ours, pixels in ((sample["A"], rgb), (sample["A_seg"][:1], box)):
        expected = pil_resized(pixels, mode, height, width)
        assert (ours - expected).abs().max() <= ONE_GREY_LEVEL + 1e-4
        if pixels is rgb:
            assert (ours - pil_resized(pixels, other, height, width)).abs().max() > 5 * ONE_GREY_LEVEL


def test_resize_is_bicubic_when_the_option_is_absent(tmp_path: Path):
    """Options written before --interpolation existed get the authors' bicubic."""
    rgb = noise(40, 32, seed=4)
    save(tmp_path / "trainA" / "x.png", rgb)
    (tmp_path / "trainA_seg").mkdir()
    opt = make_opt(tmp_path, preprocess="resize", load_size_h=20, load_size_w=16)
    assert not hasattr(opt, "interpolation")
    image = SingleSegDataset(opt)[0]["A"]
    assert (image - pil_resized(rgb, "bicubic", 20, 16)).abs().max() <= ONE_GREY_LEVEL + 1e-4


@pytest.mark.parametrize("preprocess", ["resize", "none"])
def test_bicubic_masks_stay_within_range_although_bicubic_overshoots(tmp_path: Path, preprocess):
    checker = (np.indices((30, 30)).sum(0) % 2 * 255).astype(np.uint8)
    save(tmp_path / "trainA" / "x.png", noise(30, 30))
    save(tmp_path / "trainA_seg" / "x_0.png", checker)
    opt = make_opt(tmp_path, preprocess=preprocess, load_size_h=52, load_size_w=44)
    opt.interpolation = "bicubic"
    raw = TF.resize(torch.from_numpy(checker)[None].float() / 127.5 - 1, [52, 44],
                    interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert raw.max() > 1.05 and raw.min() < -1.05, "the input must make bicubic overshoot"
    sample = SingleSegDataset(opt)[0]
    assert sample["A_seg"].shape[-2:] == ((52, 44) if preprocess == "resize" else (32, 32))
    for key in ("A", "A_seg"):
        assert sample[key].min() >= -1 and sample[key].max() <= 1


def test_interpolation_option_comes_from_the_dataset_hook_of_every_mode():
    for mode in data.available_datasets():
        parser = argparse.ArgumentParser()
        parser.add_argument_group("data")
        parser = data.get_option_setter(mode)(parser, True)
        assert parser.parse_args([]).interpolation == "bicubic", mode
        assert parser.parse_args(["--interpolation", "bilinear"]).interpolation == "bilinear"
        with pytest.raises(SystemExit):
            parser.parse_args(["--interpolation", "nearest"])
    parser = argparse.ArgumentParser()
    parser.add_argument("--interpolation", default="bilinear")  # declared by options/: the hook keeps it
    assert BaseDataset.modify_commandline_options(parser, False).parse_args([]).interpolation == "bilinear"


def test_datasets_pickle_for_spawned_workers(root: Path):
    """Windows and macOS start DataLoader workers by spawning, which pickles the dataset."""
    for dataset in (UnalignedSegDataset(make_opt(root, preprocess="resize_and_crop", load_size_h=40)),
                    SingleSegDataset(make_opt(root)), UnalignedDataset(make_opt(root)), SingleDataset(make_opt(root))):
        copy = pickle.loads(pickle.dumps(data.SeededDataset(dataset)))
        torch.testing.assert_close(copy[(0, 7)]["A"], data.SeededDataset(dataset)[(0, 7)]["A"])


def test_greyscale_input(root: Path):
    sample = UnalignedSegDataset(make_opt(root, input_nc=1))[0]
    assert sample["A"].shape == (1, 32, 32) and sample["B"].shape == (3, 32, 32)


# --------------------------------------------------------------------------------------------- alignment
@pytest.mark.parametrize("load_h, load_w, crop_h, crop_w, preprocess", [
    (44, 36, 32, 24, "resize_and_crop"),   # downscale, non-square
    (64, 52, 40, 48, "resize_and_crop"),   # upscale, crop wider than tall
    (48, 40, 36, 28, "crop"),              # crop only
    (28, 44, 28, 44, "resize"),            # resize only, to non-square
])
def test_masks_stay_aligned_with_their_image_over_random_draws(tmp_path, load_h, load_w, crop_h, crop_w,
                                                               preprocess):
    """Masks equal to the image's red/green channels must equal those channels after every transform."""
    rgb = noise(48, 40, seed=7)
    for letter in "AB":
        save(tmp_path / f"train{letter}" / "x.png", rgb)
        save(tmp_path / f"train{letter}_seg" / "x_0.png", rgb[..., 0])
        save(tmp_path / f"train{letter}_seg" / "x_1.png", rgb[..., 1])
    opt = make_opt(tmp_path, load_size_h=load_h, load_size_w=load_w, crop_size_h=crop_h, crop_size_w=crop_w,
                   preprocess=preprocess, no_flip=False)
    dataset = UnalignedSegDataset(opt)
    outputs = set()
    for seed in range(50):
        torch.manual_seed(seed)
        sample = dataset[0]
        for d in "AB":
            image, seg = sample[d], sample[f"{d}_seg"]
            expected = (3, crop_h, crop_w) if "crop" in preprocess else (3, load_h, load_w)
            assert image.shape == expected, f"{d} image of {preprocess}: {tuple(image.shape)} != {expected}"
            torch.testing.assert_close(seg[:2], image[:2], atol=1e-5, rtol=0)
            assert torch.all(seg[2:] == -1)
        outputs.add(sample["A"].numpy().tobytes())
    assert len(outputs) > 1, "the random crop/flip never varied; the test would not see misalignment"


def test_no_flip_never_flips_and_flip_does_flip(tmp_path: Path):
    save(tmp_path / "trainA" / "x.png", noise(32, 32))
    save(tmp_path / "trainA_seg" / "x_0.png", noise(32, 32, channels=1))
    still = SingleSegDataset(make_opt(tmp_path, no_flip=True))
    moving = SingleSegDataset(make_opt(tmp_path, no_flip=False))
    reference = still[0]
    flips = 0
    for seed in range(40):
        torch.manual_seed(seed)
        sample = still[0]
        assert torch.equal(sample["A"], reference["A"]) and torch.equal(sample["A_seg"], reference["A_seg"])
        flips += torch.equal(moving[0]["A"], reference["A"].flip(-1))
    assert 0 < flips < 40


def test_test_phase_crops_centre_without_flip(tmp_path: Path):
    pixels = noise(40, 40)
    save(tmp_path / "testA" / "x.png", pixels)
    (tmp_path / "testA_seg").mkdir()
    opt = make_opt(tmp_path, phase="test", isTrain=False, no_flip=False, preprocess="crop",
                   crop_size_h=32, crop_size_w=24)
    dataset = SingleSegDataset(opt)
    expected = torch.from_numpy(pixels[4:36, 8:32]).permute(2, 0, 1).float() / 127.5 - 1
    for seed in range(10):
        torch.manual_seed(seed)
        torch.testing.assert_close(dataset[0]["A"], expected)


def test_joint_transform_is_reproducible_with_torch_seed(tmp_path: Path):
    opt = make_opt(tmp_path, preprocess="resize_and_crop", load_size_h=40, load_size_w=40, no_flip=False)
    transform = get_joint_transform(opt)
    stack = torch.rand(5, 32, 32) * 2 - 1
    torch.manual_seed(3)
    first = transform(stack)
    torch.manual_seed(3)
    assert torch.equal(first, transform(stack))


# ----------------------------------------------------------------------------------------------- sampling
def test_serial_batches_pairs_b_with_a_index_otherwise_b_is_random(root: Path):
    write_domain(root, "B", {f"b{i}": 1 for i in range(6)})
    serial = UnalignedSegDataset(make_opt(root, serial_batches=True))
    assert [Path(serial[i]["B_paths"]).stem for i in range(8)] == [f"b{i % 6}" for i in range(8)]
    shuffled = UnalignedSegDataset(make_opt(root, serial_batches=False))
    torch.manual_seed(0)
    draws = [shuffled[0]["B_paths"] for _ in range(30)]
    assert len(set(draws)) > 2
    torch.manual_seed(0)
    assert draws == [shuffled[0]["B_paths"] for _ in range(30)]


def test_max_dataset_size_keeps_first_sorted_files(root: Path):
    opt = make_opt(root, max_dataset_size=2.0)
    dataset = UnalignedSegDataset(opt)
    assert len(dataset) == 2
    assert {Path(dataset[i]["A_paths"]).name for i in range(2)} == {"a0.png", "a1.png"}
    assert len(data.DatasetLoader(dataset, opt)) == 2


def test_direction_btoa_swaps_domains(root: Path):
    sample = UnalignedSegDataset(make_opt(root, direction="BtoA"))[0]
    assert "trainB" in sample["A_paths"] and "trainA" in sample["B_paths"]
    assert sample["A_num_instances"] == 1
    single = SingleSegDataset(make_opt(root, direction="BtoA"))
    assert len(single) == 2 and Path(single[1]["A_paths"]).name == "b1.png"
    assert single[1]["A_num_instances"] == 3


def test_unaligned_reads_images_only_and_needs_no_seg_folders(root: Path):
    for letter in "AB":
        shutil.rmtree(root / f"train{letter}_seg")
    dataset = UnalignedDataset(make_opt(root, dataset_mode="unaligned"))
    assert len(dataset) == 3
    sample = dataset[0]
    assert set(sample) == {"A", "B", "A_paths", "B_paths"}
    assert sample["A"].shape == (3, 32, 32) and sample["A_paths"].endswith("a0.png")


def plain_unpaired_folder(root: Path) -> Path:
    """trainA/trainB/testA/testB with images only, as CycleGAN's datasets come: no _seg folder anywhere."""
    for phase in ("train", "test"):
        for letter, stems in (("A", ["a2", "a0", "a1"]), ("B", ["b1", "b0"])):
            for index, stem in enumerate(stems):
                save(root / f"{phase}{letter}" / f"{stem}.jpg", noise(32, 32, seed=index))
    return root


def test_single_reads_a_folder_without_masks_in_file_order(tmp_path: Path):
    root = plain_unpaired_folder(tmp_path)
    dataset = SingleDataset(make_opt(root, phase="test", isTrain=False, dataset_mode="single"))
    assert [Path(dataset[i]["A_paths"]).name for i in range(len(dataset))] == ["a0.jpg", "a1.jpg", "a2.jpg"]
    sample = dataset[0]
    assert set(sample) == {"A", "A_paths", "domain"}
    assert sample["A"].shape == (3, 32, 32) and sample["A"].dtype == torch.float32
    assert sample["A_paths"] == str(root / "testA" / "a0.jpg") and sample["domain"] == "A"
    batch = next(iter(data.create_dataset(make_opt(root, phase="test", isTrain=False, dataset_mode="single",
                                                   batch_size=2))))
    assert batch["domain"] == ["A", "A"] and batch["A"].shape == (2, 3, 32, 32)


@pytest.mark.parametrize("direction, folder", [("AtoB", "A"), ("BtoA", "B")])
def test_domain_key_names_the_folder_read_whatever_the_direction(root: Path, direction, folder):
    """The images are always under ``A`` (the domain being translated); ``domain`` tells which folder that is."""
    opt = make_opt(root, direction=direction, output_nc=1)
    for dataset in (SingleDataset(opt), SingleSegDataset(opt)):
        sample = dataset[0]
        assert sample["domain"] == folder
        assert Path(sample["A_paths"]).parent.name == f"train{folder}"
        assert sample["A"].shape[0] == (1 if folder == "B" else 3)  # folder B holds output_nc images


def test_unaligned_trains_on_a_plain_unpaired_folder(tmp_path: Path):
    root = plain_unpaired_folder(tmp_path)
    batches = list(data.create_dataset(make_opt(root, dataset_mode="unaligned", batch_size=2)))
    assert [len(b["A_paths"]) for b in batches] == [2, 1]
    assert batches[0]["A"].shape == (2, 3, 32, 32) and batches[0]["B"].shape == (2, 3, 32, 32)


def test_seg_ids_give_each_slot_the_k_of_its_mask_file_gaps_included(tmp_path: Path):
    for letter in "AB":
        save(tmp_path / f"train{letter}" / "x.png", noise(32, 32))
        for k, value in ((0, 130), (2, 160), (5, 190)):  # files _0, _2, _5: no _1, _3, _4
            save(tmp_path / f"train{letter}_seg" / f"x_{k}.png", np.full((32, 32), value, np.uint8))
    sample = UnalignedSegDataset(make_opt(tmp_path, max_instances=5))[0]
    for letter in "AB":
        ids = sample[f"{letter}_seg_ids"]
        assert ids.dtype == torch.long and ids.tolist() == [0, 2, 5, -1, -1]
        grey = sample[f"{letter}_seg"][:3, 0, 0]  # slot i holds the file ids[i]
        assert grey.tolist() == pytest.approx([v / 127.5 - 1 for v in (130, 160, 190)], abs=1e-6)
    with pytest.warns(UserWarning, match="max_instances"):
        capped = SingleSegDataset(make_opt(tmp_path, max_instances=2))
    assert capped[0]["A_seg_ids"].tolist() == [0, 2]
    batch = next(iter(data.create_dataset(make_opt(tmp_path, dataset_mode="single_seg"))))
    assert batch["A_seg_ids"].tolist() == [[0, 2, 5, -1]]


def test_image_without_masks_has_only_padding_ids(root: Path):
    sample = UnalignedSegDataset(make_opt(root))[1]  # a1 has no mask file
    assert sample["A_seg_ids"].tolist() == [-1, -1, -1, -1]


# ------------------------------------------------------------------------------------------------- errors
def error_of(build) -> str:
    with pytest.raises(DatasetError) as info:
        build()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_phase_folder(tmp_path: Path):
    message = error_of(lambda: UnalignedSegDataset(make_opt(tmp_path)))
    assert str(tmp_path / "trainA") in message and "--dataroot" in message and "--phase" in message


def test_folder_without_images(tmp_path: Path):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainA" / "notes.txt").write_text("x")
    message = error_of(lambda: SingleSegDataset(make_opt(tmp_path)))
    assert "no images" in message and str(tmp_path / "trainA") in message


def test_missing_seg_folder(tmp_path: Path):
    save(tmp_path / "trainA" / "x.png", noise(8, 8))
    message = error_of(lambda: SingleSegDataset(make_opt(tmp_path)))
    assert str(tmp_path / "trainA_seg") in message and "create it" in message


def test_unreadable_image_names_the_file(root: Path):
    (root / "trainA" / "a0.png").write_bytes(b"not a png")
    dataset = UnalignedSegDataset(make_opt(root))
    message = error_of(lambda: dataset[0])
    assert str(root / "trainA" / "a0.png") in message


def test_unreadable_mask_names_the_file(root: Path):
    (root / "trainA_seg" / "a2_0.png").write_bytes(b"\x89PNG broken")
    dataset = UnalignedSegDataset(make_opt(root))
    message = error_of(lambda: dataset[2])
    assert str(root / "trainA_seg" / "a2_0.png") in message


def test_mask_size_mismatch_names_both_files_and_sizes(root: Path):
    save(root / "trainA_seg" / "a2_0.png", np.zeros((20, 24), np.uint8))
    message = error_of(lambda: UnalignedSegDataset(make_opt(root))[2])
    assert str(root / "trainA_seg" / "a2_0.png") in message and str(root / "trainA" / "a2.png") in message
    assert "24x20" in message and "32x32" in message


def test_image_smaller_than_crop_names_the_file(root: Path):
    opt = make_opt(root, preprocess="crop", crop_size_h=40, crop_size_w=40)
    message = error_of(lambda: UnalignedSegDataset(opt)[0])
    assert str(root / "trainA" / "a0.png") in message and "--crop_size_h" in message


def test_error_in_loader_worker_stays_one_line(root: Path):
    (root / "trainA" / "a0.png").write_bytes(b"not a png")
    loader = data.create_dataset(make_opt(root, num_threads=1))
    message = error_of(lambda: list(loader))
    assert message.startswith("cannot read image") and str(root / "trainA" / "a0.png") in message


# ---------------------------------------------------------------------------------------- registry/loader
def test_registry_finds_modes_and_hooks():
    assert {"unaligned_seg", "unaligned", "single_seg", "single"} <= set(data.available_datasets())
    assert "base" not in data.available_datasets()
    assert data.find_dataset_using_name("unaligned_seg") is UnalignedSegDataset
    assert data.find_dataset_using_name("single_seg") is SingleSegDataset
    assert data.find_dataset_using_name("single") is SingleDataset
    parser = argparse.ArgumentParser()
    hook = data.get_option_setter("unaligned_seg")
    assert hook is UnalignedSegDataset.modify_commandline_options
    assert hook(parser, True) is parser


def test_unknown_mode_lists_known_modes():
    with pytest.raises(ValueError, match="unknown dataset mode 'nope'.*single_seg.*unaligned_seg"):
        data.find_dataset_using_name("nope")


def loader_opt(root: Path, num_threads: int = 2) -> argparse.Namespace:
    write_domain(root, "A", {f"c{i}": i % 3 for i in range(4)})  # 7 images in A
    return make_opt(root, batch_size=3, num_threads=num_threads, serial_batches=False, no_flip=False,
                    preprocess="resize_and_crop", load_size_h=36, load_size_w=36, crop_size_h=32, crop_size_w=28)


def test_loader_with_workers_gives_batches_of_the_right_shapes(root: Path):
    batches = list(data.create_dataset(loader_opt(root)))
    assert [len(b["A_paths"]) for b in batches] == [3, 3, 1]
    first = batches[0]
    assert first["A"].shape == (3, 3, 32, 28) and first["A_seg"].shape == (3, 4, 32, 28)
    assert first["B"].shape == (3, 3, 32, 28) and first["B_seg"].shape == (3, 4, 32, 28)
    assert first["A_num_instances"].shape == (3,)
    assert sorted(p for b in batches for p in b["A_paths"]) == sorted(str(p) for p in (root / "trainA").iterdir())


def assert_same_batches(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for one, two in zip(first, second):
        assert one["A_paths"] == two["A_paths"] and one["B_paths"] == two["B_paths"]
        assert torch.equal(one["A"], two["A"]) and torch.equal(one["B_seg"], two["B_seg"])


def test_epoch_is_replayed_from_rng_state_whatever_the_workers(root: Path):
    """Resuming restores torch's RNG state before iter(); with persistent workers the epoch must repeat exactly,
    and the augmentation must not depend on --num_threads."""
    torch.manual_seed(5)
    loader = data.create_dataset(loader_opt(root, num_threads=2))
    epoch_1 = list(loader)
    state = torch.get_rng_state()
    epoch_2 = list(loader)
    assert [b["A_paths"] for b in epoch_1] != [b["A_paths"] for b in epoch_2]
    fresh = data.create_dataset(loader_opt(root, num_threads=0))
    torch.set_rng_state(state)
    batches = iter(fresh)  # the epoch's randomness is fixed here, whatever happens before the first batch
    torch.manual_seed(123)
    assert_same_batches(epoch_2, list(batches))


# ------------------------------------------------------------------------------------------ worker count
@pytest.mark.parametrize("cores, expected", [(1, 1), (2, 2), (3, 3), (16, 4)])
def test_num_threads_not_given_is_four_capped_by_the_cores_silently(monkeypatch, cores, expected):
    monkeypatch.setattr(data, "available_cores", lambda: cores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data.num_workers(None) == expected
        assert data.num_workers(cores) == cores  # explicit, within the cores: kept, no warning


def test_explicit_num_threads_above_the_cores_is_kept_with_one_warning_of_ours(monkeypatch):
    monkeypatch.setattr(data, "available_cores", lambda: 2)
    with pytest.warns(data.TooManyWorkersWarning) as caught:
        assert data.num_workers(8) == 8
    assert len(caught) == 1
    assert "--num_threads 8" in str(caught[0].message) and "2 core(s)" in str(caught[0].message)


def test_torch_duplicate_worker_warning_does_not_reach_the_user(root: Path, monkeypatch):
    """Fake a one-core machine (ours and torch's count) and ask for 2 workers: only our warning, once, over
    two epochs, though torch warns at DataLoader creation and at every new iterator."""
    monkeypatch.setattr(data, "available_cores", lambda: 1)
    monkeypatch.setattr(torch._utils, "cpu_count", lambda: 1)
    with pytest.warns(UserWarning, match="suggested max number of worker"):  # the fake reaches torch's check
        DataLoader(list(range(3)), num_workers=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = data.create_dataset(make_opt(root, num_threads=2))
        assert loader.dataloader.num_workers == 2
        for _ in range(2):
            assert len(list(loader)) == 3
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "worker processes in total" in m], messages
    ours = [w for w in caught if issubclass(w.category, data.TooManyWorkersWarning)]
    assert len(ours) == 1 and "--num_threads 2" in str(ours[0].message)
