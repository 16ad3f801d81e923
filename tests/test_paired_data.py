"""Paired data: the aligned (pix2pixHD) and aligned_ab (pix2pix) datasets, the paired shapes generator, the
Cityscapes builder and data.check on the aligned layout."""

from __future__ import annotations

import argparse
import colorsys
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import data
from data.aligned_ab_dataset import AlignedAbDataset
from data.aligned_dataset import AlignedDataset
from data.base_dataset import DatasetError
from data.check import check_dataset
from data.check import main as check_main
from datasets import generate_cityscapes_dataset as cityscapes
from datasets.make_shapes_dataset import main as shapes_main
from datasets.shapes_paired import LABEL_IDS, PALETTES, make_paired_shapes_dataset

torch.set_num_threads(1)

SIZE = 32
# The fixture's image colour encodes its label: id k is painted COLOURS[k].
COLOURS = np.array([[200, 200, 200], [200, 30, 30], [30, 200, 30], [30, 30, 200]], dtype=np.uint8)
INSTANCE_IDS = (26001, 26002, 33000, 7)  # 16-bit, as Cityscapes (car 26, instances 1 and 2)


# ---------------------------------------------------------------------------------------------- helpers
def make_opt(root: Path, **changes) -> argparse.Namespace:
    opt = argparse.Namespace(
        dataroot=str(root), phase="train", dataset_mode="aligned", isTrain=True, load_size_h=SIZE,
        load_size_w=SIZE, crop_size_h=SIZE, crop_size_w=SIZE, preprocess="none", no_flip=True,
        serial_batches=True, max_dataset_size=math.inf, batch_size=1, num_threads=0, direction="AtoB",
        input_nc=3, output_nc=3, label_nc=4, no_instance=False, interpolation="bicubic")
    for key, value in changes.items():
        assert hasattr(opt, key), key
        setattr(opt, key, value)
    return opt


def label_pixels(seed: int, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    """Blocks of ids 0..3 (8x8 cells), different per seed, every id present."""
    rng = np.random.default_rng(seed)
    cells = rng.permutation(np.arange(size[0] // 8 * size[1] // 8) % 4).reshape(size[0] // 8, size[1] // 8)
    return np.kron(cells, np.ones((8, 8), dtype=np.int64)).astype(np.uint8)


def instance_pixels(labels: np.ndarray) -> np.ndarray:
    """One instance per 8x8 cell of a non-background label, with 16-bit ids; 0 on the background."""
    cells = np.arange(labels.size // 64).reshape(labels.shape[0] // 8, labels.shape[1] // 8)
    ids = np.kron(cells, np.ones((8, 8), dtype=np.int64))
    inst = np.array(INSTANCE_IDS)[ids % len(INSTANCE_IDS)] + 4 * (ids // len(INSTANCE_IDS))
    return np.where(labels > 0, inst, 0).astype(np.uint16)


def write_aligned(root: Path, stems=("a", "b", "c"), phase: str = "train", instances: bool = True,
                  size: tuple[int, int] = (SIZE, SIZE)) -> Path:
    for kind in ("label", "img") + (("inst",) if instances else ()):
        (root / f"{phase}_{kind}").mkdir(parents=True, exist_ok=True)
    for seed, stem in enumerate(stems):
        labels = label_pixels(seed, size)
        Image.fromarray(labels, "L").save(root / f"{phase}_label" / f"{stem}.png")
        Image.fromarray(COLOURS[labels], "RGB").save(root / f"{phase}_img" / f"{stem}.png")
        if instances:
            Image.fromarray(instance_pixels(labels)).save(root / f"{phase}_inst" / f"{stem}.png")
    return root


def sample_with_seed(dataset, index: int, seed: int) -> dict:
    torch.manual_seed(seed)
    return dataset[index]


def colour_ids(image: torch.Tensor) -> np.ndarray:
    """The label each pixel's colour encodes (nearest of COLOURS), (H, W)."""
    rgb = ((image.numpy().transpose(1, 2, 0) + 1) * 127.5)
    distances = ((rgb[:, :, None, :] - COLOURS[None, None].astype(float)) ** 2).sum(-1)
    return distances.argmin(-1)


# ------------------------------------------------------------------------------------ aligned dataset
def test_sample_keys_dtypes_and_shapes(tmp_path):
    root = write_aligned(tmp_path)
    opt = make_opt(root, preprocess="resize_and_crop", load_size_h=40, load_size_w=48, crop_size_h=24,
                   crop_size_w=32)
    dataset = AlignedDataset(opt)
    sample = sample_with_seed(dataset, 1, 0)
    assert len(dataset) == 3
    assert set(sample) == {"label", "inst", "image", "paths"}
    assert sample["label"].dtype == torch.int64 and sample["label"].shape == (1, 24, 32)
    assert sample["inst"].dtype == torch.int64 and sample["inst"].shape == (1, 24, 32)
    assert sample["image"].dtype == torch.float32 and sample["image"].shape == (3, 24, 32)
    assert -1 <= sample["image"].min() and sample["image"].max() <= 1
    assert sample["paths"] == str(root / "train_label" / "b.png")
    batch = next(iter(data.create_dataset(opt)))  # the loader collates it
    assert batch["label"].shape == (1, 1, 24, 32) and batch["inst"].dtype == torch.int64


@pytest.mark.parametrize("sizes", [{"load_size_h": 44, "load_size_w": 52, "crop_size_h": 28, "crop_size_w": 36},
                                   {"load_size_h": 20, "load_size_w": 24, "crop_size_h": 16, "crop_size_w": 16}])
def test_ids_survive_resize_crop_and_flip_as_a_set(tmp_path, sizes):
    root = write_aligned(tmp_path)
    dataset = AlignedDataset(make_opt(root, preprocess="resize_and_crop", no_flip=False, **sizes))
    source_labels = set(range(4))
    source_instances = {0} | {int(i) for i in np.unique(instance_pixels(label_pixels(0)))}
    for seed in range(8):
        sample = sample_with_seed(dataset, 0, seed)
        assert set(sample["label"].unique().tolist()) <= source_labels
        assert set(sample["inst"].unique().tolist()) <= source_instances
        # each instance lies inside one label region: the two id maps moved together
        for inst in sample["inst"].unique().tolist():
            assert len(sample["label"][sample["inst"] == inst].unique()) == 1


def test_label_instance_and_image_stay_aligned_under_random_crop_and_flip(tmp_path):
    root = write_aligned(tmp_path, size=(48, 48))
    dataset = AlignedDataset(make_opt(root, preprocess="crop", crop_size_h=24, crop_size_w=32, no_flip=False))
    crops = set()
    for seed in range(12):
        sample = sample_with_seed(dataset, 0, seed)
        label = sample["label"][0].numpy()
        assert (colour_ids(sample["image"]) == label).all()
        assert ((sample["inst"][0].numpy() > 0) == (label > 0)).all()
        crops.add(label.tobytes())
    assert len(crops) > 4  # the crops and flips did vary


def test_resizing_keeps_the_image_on_its_labels(tmp_path):
    root = write_aligned(tmp_path)
    dataset = AlignedDataset(make_opt(root, preprocess="resize_and_crop", load_size_h=52, load_size_w=44,
                                      crop_size_h=40, crop_size_w=40, no_flip=False))
    for seed in range(4):
        sample = sample_with_seed(dataset, 2, seed)
        agree = colour_ids(sample["image"]) == sample["label"][0].numpy()
        assert agree.mean() > 0.9  # bicubic blends colours only along the label edges


def test_test_phase_is_a_deterministic_centre_crop_without_flip(tmp_path):
    root = write_aligned(tmp_path, phase="test", size=(48, 48))
    dataset = AlignedDataset(make_opt(root, phase="test", isTrain=False, preprocess="crop", crop_size_h=16,
                                      crop_size_w=16))
    first, second = sample_with_seed(dataset, 0, 1), sample_with_seed(dataset, 0, 2)
    assert torch.equal(first["label"], second["label"]) and torch.equal(first["image"], second["image"])
    assert (first["label"][0].numpy() == label_pixels(0, (48, 48))[16:32, 16:32]).all()


def test_same_seed_gives_the_same_sample(tmp_path):
    dataset = AlignedDataset(make_opt(write_aligned(tmp_path), preprocess="resize_and_crop", load_size_h=40,
                                      load_size_w=40, crop_size_h=24, crop_size_w=24, no_flip=False))
    first, second = sample_with_seed(dataset, 0, 5), sample_with_seed(dataset, 0, 5)
    assert all(torch.equal(first[key], second[key]) for key in ("label", "inst", "image"))


def test_16bit_instance_ids_are_read_exactly(tmp_path):
    root = write_aligned(tmp_path)
    sample = AlignedDataset(make_opt(root))[0]
    expected = instance_pixels(label_pixels(0)).astype(np.int64)
    assert (sample["inst"][0].numpy() == expected).all()
    assert {26001, 26002, 33000} <= set(sample["inst"].unique().tolist())


def test_without_instance_folder_or_with_no_instance_there_is_no_inst_key(tmp_path):
    without = write_aligned(tmp_path / "without", instances=False)
    assert "inst" not in AlignedDataset(make_opt(without))[0]
    ignored = write_aligned(tmp_path / "ignored")
    assert "inst" not in AlignedDataset(make_opt(ignored, no_instance=True))[0]


def test_label_nc_0_reads_the_label_folder_as_rgb_images(tmp_path):
    root = write_aligned(tmp_path)
    Image.fromarray(COLOURS[label_pixels(0)]).save(root / "train_label" / "a.png")
    sample = AlignedDataset(make_opt(root, label_nc=0))[0]
    assert sample["label"].dtype == torch.float32 and sample["label"].shape == (3, SIZE, SIZE)
    assert torch.equal(sample["label"], sample["image"])


def test_options_hook_adds_label_nc_and_no_instance_once():
    parser = argparse.ArgumentParser()
    data.get_option_setter("aligned")(parser, True)
    opt = parser.parse_args([])
    assert opt.label_nc == 0 and opt.no_instance is False and opt.interpolation == "bicubic"
    assert parser.parse_args(["--label_nc", "35", "--no_instance"]).label_nc == 35
    declared = argparse.ArgumentParser()
    declared.add_argument("--label_nc", type=int, default=7)  # a model declared it first: no clash
    assert data.get_option_setter("aligned")(declared, True).parse_args([]).label_nc == 7


def _break(root: Path, case: str) -> str:
    """Spoil the fixture; returns the file name the error must name."""
    if case == "id >= label_nc":
        Image.fromarray(np.full((SIZE, SIZE), 4, np.uint8), "L").save(root / "train_label" / "b.png")
        return "train_label/b.png"
    if case == "instance size":
        Image.fromarray(np.zeros((SIZE, SIZE + 2), np.uint16)).save(root / "train_inst" / "b.png")
        return "train_inst/b.png"
    if case == "image size":
        Image.fromarray(np.zeros((SIZE - 4, SIZE, 3), np.uint8)).save(root / "train_img" / "b.png")
        return "train_img/b.png"
    if case == "label without image":
        (root / "train_img" / "b.png").unlink()
        return "train_label/b.png"
    if case == "image without label":
        Image.fromarray(COLOURS[label_pixels(0)]).save(root / "train_img" / "z.jpg")
        return "train_img/z.jpg"
    if case == "instance map without label":
        Image.fromarray(np.zeros((SIZE, SIZE), np.uint16)).save(root / "train_inst" / "z.png")
        return "train_inst/z.png"
    if case == "label without instance map":
        (root / "train_inst" / "c.png").unlink()
        return "train_label/c.png"
    if case == "rgb label map":
        Image.fromarray(COLOURS[label_pixels(1)]).save(root / "train_label" / "b.png")
        return "train_label/b.png"
    if case == "unreadable image":
        (root / "train_img" / "b.png").write_bytes(b"not a png")
        return "train_img/b.png"
    for kind in ("label", "inst", "img"):
        for path in (root / f"train_{kind}").iterdir():
            path.unlink()
    return "train_label"


@pytest.mark.parametrize("case", ["id >= label_nc", "instance size", "image size", "label without image",
                                  "image without label", "instance map without label", "label without instance map",
                                  "rgb label map", "unreadable image", "no files"])
def test_each_problem_is_a_dataset_error_naming_the_file(tmp_path, case):
    root = write_aligned(tmp_path)
    named = _break(root, case)
    with pytest.raises(DatasetError) as error:
        dataset = AlignedDataset(make_opt(root))
        for index in range(len(dataset)):
            dataset[index]
    assert str(root / named) in str(error.value)
    if case == "id >= label_nc":
        assert "--label_nc" in str(error.value)


# --------------------------------------------------------------------------------- aligned_ab (pix2pix)
def write_side_by_side(root: Path, width: int = 2 * SIZE, height: int = SIZE) -> Path:
    """Right half = 255 - left half, so B = -A exactly wherever the halves stay aligned."""
    (root / "train").mkdir(parents=True)
    left = np.random.default_rng(0).integers(0, 256, (height, width // 2, 3), dtype=np.uint8)
    Image.fromarray(np.concatenate([left, 255 - left], 1)).save(root / "train" / "x.png")
    return root


def test_aligned_ab_splits_the_halves_and_swaps_them_with_b_to_a(tmp_path):
    root = write_side_by_side(tmp_path)
    left = np.array(Image.open(root / "train" / "x.png"))[:, :SIZE]
    expected = torch.from_numpy(left).permute(2, 0, 1).float() / 127.5 - 1
    sample = AlignedAbDataset(make_opt(root, dataset_mode="aligned_ab"))[0]
    assert set(sample) == {"A", "B", "A_paths", "B_paths"}
    assert sample["A_paths"] == sample["B_paths"] == str(root / "train" / "x.png")
    assert torch.allclose(sample["A"], expected) and torch.allclose(sample["B"], -expected, atol=1e-6)
    swapped = AlignedAbDataset(make_opt(root, dataset_mode="aligned_ab", direction="BtoA"))[0]
    assert torch.equal(swapped["A"], sample["B"]) and torch.equal(swapped["B"], sample["A"])


def test_aligned_ab_crops_and_flips_both_halves_alike_with_their_channel_counts(tmp_path):
    root = write_side_by_side(tmp_path, width=96, height=48)
    dataset = AlignedAbDataset(make_opt(root, dataset_mode="aligned_ab", preprocess="crop", crop_size_h=24,
                                        crop_size_w=24, no_flip=False))
    for seed in range(6):
        sample = sample_with_seed(dataset, 0, seed)
        assert torch.allclose(sample["B"], -sample["A"], atol=1e-6)
    grey = AlignedAbDataset(make_opt(root, dataset_mode="aligned_ab", input_nc=1))[0]
    assert grey["A"].shape == (1, 48, 48) and grey["B"].shape == (3, 48, 48)


def test_aligned_ab_refuses_an_odd_width_naming_the_file(tmp_path):
    (tmp_path / "train").mkdir()
    Image.fromarray(np.zeros((SIZE, 2 * SIZE + 1, 3), np.uint8)).save(tmp_path / "train" / "x.png")
    root = tmp_path
    with pytest.raises(DatasetError, match="odd width") as error:
        AlignedAbDataset(make_opt(root, dataset_mode="aligned_ab"))[0]
    assert str(root / "train" / "x.png") in str(error.value)


# ------------------------------------------------------------------------------------ paired shapes
def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired") / "shapes_paired"
    summary = make_paired_shapes_dataset(root, size=48, n_train=30, n_test=4, seed=1)
    return root, summary, json.loads((root / "shapes_meta.json").read_text())


def neighbours(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels of ``a`` with a 4-neighbour in ``b``."""
    near = np.zeros_like(b)
    near[1:] |= b[:-1]
    near[:-1] |= b[1:]
    near[:, 1:] |= b[:, :-1]
    near[:, :-1] |= b[:, 1:]
    return a & near


def test_paired_shapes_layout_and_ids(shapes):
    root, _, meta = shapes
    for phase, count in (("train", 30), ("test", 4)):
        for kind in ("label", "inst", "img"):
            assert len(list((root / f"{phase}_{kind}").glob("*.png"))) == count
    assert meta["label_ids"] == {"background": 0, "ellipse": 1, "rectangle": 2} == LABEL_IDS
    readme = (root / "README.md").read_text()
    assert "0 background, 1 ellipse, 2 rectangle" in readme and "--paired" in readme
    for record in meta["phases"]["train"]:
        label = np.asarray(Image.open(root / record["label"]))
        inst = np.asarray(Image.open(root / record["inst"]))
        assert set(np.unique(label)) <= {0, 1, 2} and ((label > 0) == (inst > 0)).all()
        assert set(np.unique(inst)) == set(range(record["n_objects"] + 1))
        for obj in record["objects"]:
            assert (label[inst == obj["instance"]] == obj["label"]).all()
            assert (inst == obj["instance"]).sum() == obj["area"] > 0


def test_touching_same_class_objects_differ_only_in_the_instance_map(shapes):
    root, _, meta = shapes
    records = meta["phases"]["train"]
    touching = [r for r in records if r["touching"]]
    assert 0.15 <= len(touching) / len(records) <= 0.5
    for record in records:
        inst = np.asarray(Image.open(root / record["inst"]))
        label = np.asarray(Image.open(root / record["label"]))
        pairs = {tuple(pair) for pair in record["touching"]}
        for i in range(1, record["n_objects"] + 1):
            for j in range(i + 1, record["n_objects"] + 1):
                contact = neighbours(inst == i, inst == j)
                assert contact.any() == ((i, j) in pairs), (record["name"], i, j)
                if contact.any():  # one label across the contact: the label map shows no boundary
                    assert len(np.unique(label[(inst == i) | (inst == j)])) == 1


def test_each_class_is_drawn_in_several_palettes_that_show_in_the_pixels(shapes):
    root, _, meta = shapes
    used = {kind: set() for kind in PALETTES}
    for record in meta["phases"]["train"]:
        image = np.asarray(Image.open(root / record["img"])).astype(float) / 255
        inst = np.asarray(Image.open(root / record["inst"]))
        for obj in record["objects"]:
            used[obj["kind"]].add(obj["palette"])
            hue = colorsys.rgb_to_hsv(*np.median(image[inst == obj["instance"]], axis=0))[0]
            distance = {name: min(abs(hue - h), 1 - abs(hue - h)) for name, h in PALETTES[obj["kind"]].items()}
            assert min(distance, key=distance.get) == obj["palette"]
    assert all(len(names) >= 3 for names in used.values()), used


def test_paired_shapes_are_byte_identical_for_a_seed_and_any_worker_count(tmp_path):
    tiny = {"size": 32, "n_train": 6, "n_test": 2, "seed": 4}
    make_paired_shapes_dataset(tmp_path / "one", **tiny)
    make_paired_shapes_dataset(tmp_path / "two", workers=2, **tiny)
    make_paired_shapes_dataset(tmp_path / "other", **{**tiny, "seed": 5})
    first = all_files(tmp_path / "one")
    assert first == all_files(tmp_path / "two")
    assert first["train_img/00000.png"] != all_files(tmp_path / "other")["train_img/00000.png"]


def test_paired_command_line_and_the_aligned_loader_read_it(tmp_path, capsys):
    out = tmp_path / "shapes_paired_32"
    assert shapes_main(["--paired", "--out", str(out), "--size", "32", "--n_train", "3", "--n_test", "1"]) == 0
    assert "paired shapes dataset" in capsys.readouterr().out
    assert not (out / "trainA").exists()
    sample = AlignedDataset(make_opt(out, label_nc=3))[0]
    assert set(sample) == {"label", "inst", "image", "paths"}
    assert shapes_main(["--paired", "--out", str(out), "--size", "32", "--n_train", "3", "--n_test", "1"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert check_dataset(out, ("train", "test"), label_nc=3).findings == []


# --------------------------------------------------------------------------------------- cityscapes
FRAMES = {"train": [("aachen", "000000", "000019"), ("aachen", "000001", "000019"), ("bochum", "000000", "000313")],
          "val": [("frankfurt", "000000", "000294"), ("lindau", "000000", "000019"), ("lindau", "000001", "000019")]}


@pytest.fixture
def cityscapes_root(tmp_path) -> Path:
    """The official layout, 64x32 px: labelIds 8-bit, instanceIds 16-bit (26001 = car 26, instance 1)."""
    root = tmp_path / "cityscapes"
    for split, frames in FRAMES.items():
        for index, (city, seq, frame) in enumerate(frames):
            stem = f"{city}_{seq}_{frame}"
            gt, photos = root / "gtFine" / split / city, root / "leftImg8bit" / split / city
            gt.mkdir(parents=True, exist_ok=True)
            photos.mkdir(parents=True, exist_ok=True)
            labels = np.random.default_rng(index).integers(0, 34, (32, 64)).astype(np.uint8)
            inst = labels.astype(np.uint16)
            inst[4:12, 8:24] = 26001 + index
            inst[20:28, 30:50] = 26002
            Image.fromarray(labels, "L").save(gt / f"{stem}_gtFine_labelIds.png")
            Image.fromarray(inst).save(gt / f"{stem}_gtFine_instanceIds.png")
            Image.fromarray(np.random.default_rng(9 + index).integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(
                photos / f"{stem}_leftImg8bit.png")
    return root


def test_cityscapes_builder_writes_the_aligned_layout_with_exact_ids(cityscapes_root, tmp_path, capsys):
    out = tmp_path / "out"
    assert cityscapes.main(["--cityscapes_root", str(cityscapes_root), "--out", str(out)]) == 0
    for split, phase in (("train", "train"), ("val", "test")):
        stems = sorted(f"{city}_{seq}_{frame}" for city, seq, frame in FRAMES[split])
        for kind in ("label", "inst", "img"):
            assert sorted(p.stem for p in (out / f"{phase}_{kind}").iterdir()) == stems
        for stem in stems:
            city = stem.split("_")[0]
            source = cityscapes_root / "gtFine" / split / city
            for kind, suffix in (("label", "labelIds"), ("inst", "instanceIds")):
                written = np.asarray(Image.open(out / f"{phase}_{kind}" / f"{stem}.png"))
                assert (written == np.asarray(Image.open(source / f"{stem}_gtFine_{suffix}.png"))).all()
            photo = cityscapes_root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png"
            assert (np.asarray(Image.open(out / f"{phase}_img" / f"{stem}.png")) == np.asarray(Image.open(photo))).all()
    sample = AlignedDataset(make_opt(out, label_nc=35, crop_size_h=32, crop_size_w=64))[0]
    assert 26001 in sample["inst"].unique().tolist() and sample["label"].max() < 34
    assert "val -> test: 3 samples" in capsys.readouterr().out


def test_cityscapes_builder_resizes_ids_nearest(cityscapes_root, tmp_path):
    out = tmp_path / "out"
    cityscapes.main(["--cityscapes_root", str(cityscapes_root), "--out", str(out), "--splits", "train",
                     "--size", "32", "16"])
    assert not (out / "test_label").exists()
    stem = "aachen_000000_000019"
    inst = Image.open(out / "train_inst" / f"{stem}.png")
    assert inst.size == (32, 16) and Image.open(out / "train_img" / f"{stem}.png").size == (32, 16)
    source = np.asarray(Image.open(cityscapes_root / "gtFine/train/aachen" / f"{stem}_gtFine_instanceIds.png"))
    assert set(np.unique(np.asarray(inst))) <= set(np.unique(source)) and 26001 in np.asarray(inst)


def test_cityscapes_builder_errors_name_the_fix(cityscapes_root, tmp_path, capsys):
    def error_of(*args: str) -> str:
        with pytest.raises(SystemExit) as stop:
            cityscapes.main(["--out", str(tmp_path / "out"), *args])
        assert stop.value.code == 2
        return capsys.readouterr().err

    wrong = error_of("--cityscapes_root", str(tmp_path))
    assert "gtFine" in wrong and "leftImg8bit" in wrong
    photo = cityscapes_root / "leftImg8bit/train/bochum/bochum_000000_000313_leftImg8bit.png"
    photo.unlink()
    assert "bochum_000000_000313_gtFine_labelIds.png" in error_of("--cityscapes_root", str(cityscapes_root))
    assert not (tmp_path / "out").exists()  # nothing written before every split was checked


# ------------------------------------------------------------------------------------------ data.check
def _findings(root: Path, label_nc: int | None = 4) -> set[tuple[str, str]]:
    return {(Path(f.path).relative_to(root).as_posix(), f.code) for f in check_dataset(root, label_nc=label_nc).findings}


def test_check_finds_nothing_in_a_clean_aligned_dataset(tmp_path, capsys):
    root = write_aligned(tmp_path)
    report = check_dataset(root, label_nc=4)
    assert report.findings == [] and report.images_checked == 6 and report.masks_checked == 3
    assert check_main(["--dataroot", str(root), "--label_nc", "4"]) == 0


@pytest.mark.parametrize("case, expected", [
    ("id >= label_nc", {("train_label/b.png", "label-id-out-of-range")}),
    ("instance size", {("train_inst/b.png", "size-mismatch")}),
    ("image size", {("train_img/b.png", "size-mismatch")}),
    ("label without image", {("train_label/b.png", "no-img")}),
    ("image without label", {("train_img/z.jpg", "no-label")}),
    ("instance map without label", {("train_inst/z.png", "no-label")}),
    ("label without instance map", {("train_label/c.png", "no-inst")}),
    ("rgb label map", {("train_label/b.png", "label-mode")}),
    ("unreadable image", {("train_img/b.png", "unreadable")}),
])
def test_check_reports_each_aligned_problem_once(tmp_path, case, expected):
    root = write_aligned(tmp_path)
    _break(root, case)
    assert _findings(root) == expected


def test_check_label_ids_only_against_a_given_label_nc(tmp_path, capsys):
    root = write_aligned(tmp_path)
    _break(root, "id >= label_nc")
    assert _findings(root, label_nc=None) == set()
    assert check_main(["--dataroot", str(root), "--label_nc", "4"]) == 1
    out = capsys.readouterr().out
    assert f"error: {root / 'train_label' / 'b.png'}: holds label ids 4 outside 0..3" in out


def test_check_reports_a_missing_image_folder_of_an_aligned_dataset(tmp_path):
    root = write_aligned(tmp_path, instances=False)
    for path in (root / "train_img").iterdir():
        path.unlink()
    (root / "train_img").rmdir()
    assert _findings(root) == {("train_img", "missing-folder")}


def test_train_stops_at_start_on_a_broken_aligned_dataset(tmp_path):
    """train.py checks aligned data before it builds anything: a label map without its image is named."""
    import subprocess
    import sys

    root = write_aligned(tmp_path / "data")
    (root / "train_img" / "b.png").unlink()
    done = subprocess.run([sys.executable, "train.py", "--model", "pix2pixhd", "--dataroot", str(root),
                           "--label_nc", "4", "--name", "broken", "--checkpoints_dir", str(tmp_path / "ck"),
                           "--load_size", "32", "--crop_size", "32", "--gpu_ids", "-1", "--display_id", "0"],
                          check=False, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0
    assert "b.png" in done.stderr and "python -m data.check" in done.stderr and "--label_nc 4" in done.stderr
    assert not (tmp_path / "ck" / "broken" / "latest_net_G.pth").exists()
