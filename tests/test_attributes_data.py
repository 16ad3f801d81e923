"""Labelled-attribute data (--dataset_mode attributes) and the attribute shapes generator (--attributes)."""

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.attributes_dataset import AttributesDataset
from datasets.make_shapes_dataset import main as shapes_main
from datasets.make_shapes_dataset import make_shapes_dataset
from datasets.shapes_attributes import ATTRIBUTES, make_attribute_shapes_dataset
from util.image_files import DatasetError

TINY = {"size": 32, "n_train": 64, "n_test": 8}
CELEBA_TEXT = """4
Black_Hair  Blond_Hair Male
000001.jpg  1 -1  1
000002.jpg -1  1 -1
000003.jpg -1 -1  1
000004.jpg  1 -1 -1
"""


def write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(names):
        Image.new("RGB", (8, 8), (number * 30, 100, 200)).save(folder / name)


def make_opt(root: Path, **overrides) -> argparse.Namespace:
    opt = {"dataroot": str(root), "phase": "train", "isTrain": True, "seed": None, "label_file": None,
           "attributes": None, "labelled_fraction": 1.0, "max_dataset_size": math.inf, "input_nc": 3,
           "preprocess": "resize_and_crop", "load_size_h": 8, "load_size_w": 8, "crop_size_h": 8, "crop_size_w": 8,
           "no_flip": True, "interpolation": "bicubic"}
    return argparse.Namespace(**{**opt, **overrides})


@pytest.fixture
def celeba(tmp_path: Path) -> Path:
    """CelebA's label format (names with .jpg, runs of spaces) for .png images, matched by stem."""
    write_images(tmp_path / "train", [f"00000{i}.png" for i in range(1, 5)])
    (tmp_path / "list_attr_celeba.txt").write_text(CELEBA_TEXT)
    return tmp_path


def write_csv_data(root: Path, count: int, rows: list[str] | None = None) -> Path:
    names = [f"im{i:02d}.png" for i in range(count)]
    write_images(root / "train", names)
    rows = rows or [f"{name},{i % 2},{(i // 2) % 2}" for i, name in enumerate(names)]
    (root / "train_labels.csv").write_text("filename,smile,glasses\n" + "\n".join(rows) + "\n")
    return root


# ------------------------------------------------------------------------------------ label files
def test_celeba_labels_follow_attributes_order_with_minus_one_as_zero(celeba):
    dataset = AttributesDataset(make_opt(celeba, attributes="Male,Black_Hair"))
    assert dataset.attribute_names == ["Male", "Black_Hair"]
    assert [Path(p).name for p in dataset.paths] == [f"00000{i}.png" for i in range(1, 5)]
    labels = [dataset[i]["A_label"].tolist() for i in range(4)]
    assert labels == [[1, 1], [0, 0], [1, 0], [0, 1]]
    sample = dataset[0]
    assert sample["A"].shape == (3, 8, 8) and sample["A"].min() >= -1 and sample["A"].max() <= 1
    assert sample["A_labelled"].dtype == torch.bool and sample["A_labelled"].item()
    assert sample["A_paths"].endswith("000001.png")
    assert AttributesDataset(make_opt(celeba)).attribute_names == ["Black_Hair", "Blond_Hair", "Male"]


def test_csv_labels_accept_zero_one_minus_one_and_true_false(tmp_path):
    rows = ["im00.png,1,0", "im01.png, -1 ,1", "im02.png,true,FALSE", "im03.png,0,True"]
    dataset = AttributesDataset(make_opt(write_csv_data(tmp_path, 4, rows)))
    assert dataset.attribute_names == ["smile", "glasses"]
    assert [dataset.true_labels(i).tolist() for i in range(4)] == [[1, 0], [0, 1], [1, 0], [0, 1]]
    assert dataset.label_vectors.shape == (4, 2)


# ----------------------------------------------------------------------------------- labelled part
def labelled_names(dataset: AttributesDataset) -> set[str]:
    return {Path(dataset.paths[i]).name for i in range(len(dataset)) if dataset[i]["A_labelled"]}


def test_labelled_fraction_keeps_a_seeded_subset_and_hides_the_rest(tmp_path):
    root = write_csv_data(tmp_path, 10)
    dataset = AttributesDataset(make_opt(root, labelled_fraction=0.5, seed=3))
    labelled = labelled_names(dataset)
    assert len(labelled) == 5
    assert labelled_names(AttributesDataset(make_opt(root, labelled_fraction=0.5, seed=3))) == labelled
    assert labelled_names(AttributesDataset(make_opt(root, labelled_fraction=0.5, seed=4))) != labelled
    assert labelled_names(AttributesDataset(make_opt(root, labelled_fraction=0.2, seed=3))) < labelled
    kept = []
    for index in range(len(dataset)):
        sample = dataset[index]
        if sample["A_labelled"]:
            assert torch.equal(sample["A_label"], dataset.true_labels(index))
            kept.append(sample["A_label"])
        else:
            assert not sample["A_label"].any()
    assert torch.equal(dataset.label_vectors, torch.stack(kept))
    hidden = [index for index in range(len(dataset)) if not dataset.labelled[index]]
    assert any(dataset.true_labels(index).any() for index in hidden)  # still there, for evaluation only
    no_seed = AttributesDataset(make_opt(root, labelled_fraction=0.5))
    assert labelled_names(no_seed) == labelled_names(AttributesDataset(make_opt(root, labelled_fraction=0.5, seed=0)))


def test_every_image_is_labelled_at_test_time(tmp_path):
    dataset = AttributesDataset(make_opt(write_csv_data(tmp_path, 6), labelled_fraction=0.2, isTrain=False))
    assert all(dataset[i]["A_labelled"] for i in range(6)) and len(dataset.label_vectors) == 6


# ------------------------------------------------------------------------------------------ errors
def test_missing_label_file_names_the_paths_and_the_option(tmp_path):
    write_images(tmp_path / "train", ["a.png"])
    with pytest.raises(DatasetError, match="--label_file") as error:
        AttributesDataset(make_opt(tmp_path))
    assert "train_labels.csv" in str(error.value) and "list_attr_celeba.txt" in str(error.value)
    with pytest.raises(DatasetError, match=r"--label_file .*nowhere\.csv does not exist"):
        AttributesDataset(make_opt(tmp_path, label_file=str(tmp_path / "nowhere.csv")))


def test_labels_that_match_no_image_are_an_error_and_unlabelled_images_a_warning(tmp_path, celeba):
    other = tmp_path / "other"
    write_images(other / "train", ["cat.png", "dog.png"])
    (other / "train_labels.csv").write_text("filename,x\nbird.png,1\nfish.png,0\n")
    with pytest.raises(DatasetError, match="none of the 2 images") as error:
        AttributesDataset(make_opt(other))
    message = str(error.value)
    assert "train_labels.csv" in message and "cat.png" in message and "bird.png" in message
    write_images(celeba / "train", ["zz_extra.png"])
    with pytest.warns(UserWarning, match=r"1 of the 5 images .* no row .*zz_extra\.png"):
        dataset = AttributesDataset(make_opt(celeba))
    assert len(dataset) == 4


def test_unknown_attribute_lists_the_available_ones(celeba):
    with pytest.raises(DatasetError, match="--attributes: Smiling not in label file .*list_attr_celeba.txt") as error:
        AttributesDataset(make_opt(celeba, attributes="Male,Smiling"))
    assert "Black_Hair, Blond_Hair, Male" in str(error.value)


@pytest.mark.parametrize("fraction, wanted", [(0.1, "labels none; raise it to at least 0.25"),
                                              (0.0, r"must be in \(0, 1\]"), (1.5, r"must be in \(0, 1\]")])
def test_a_labelled_fraction_without_labelled_images_is_refused(celeba, fraction, wanted):
    with pytest.raises(DatasetError, match=f"--labelled_fraction {fraction:g}.*{wanted}"):
        AttributesDataset(make_opt(celeba, labelled_fraction=fraction))


@pytest.mark.parametrize("text, wanted", [
    (CELEBA_TEXT.replace("000003.jpg -1 -1  1", "000003.jpg -1 yes  1"), "line 5: 'yes' for Blond_Hair"),
    (CELEBA_TEXT.replace("000002.jpg -1  1 -1", "000002.jpg -1  1"), "line 4 has 2 values for 3 attributes"),
    (CELEBA_TEXT.replace("000004.jpg", "000001.png"), "line 6 labels 000001.png again"),
    ("Black_Hair Male\n", "neither a CelebA list_attr file"),
])
def test_bad_label_files_name_the_file_and_the_line(celeba, text, wanted):
    (celeba / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(DatasetError, match="list_attr_celeba.txt") as error:
        AttributesDataset(make_opt(celeba))
    assert wanted in str(error.value)


# ----------------------------------------------------------------------------- shapes generator
def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("attributes") / "shapes_attributes"
    summary = make_attribute_shapes_dataset(root, seed=1, **TINY)
    return root, summary, json.loads((root / "shapes_meta.json").read_text())


def test_generator_is_byte_identical_for_any_worker_count(tmp_path):
    small = {"size": 32, "n_train": 6, "n_test": 2, "seed": 5}
    make_attribute_shapes_dataset(tmp_path / "serial", **small)
    make_attribute_shapes_dataset(tmp_path / "parallel", workers=2, **small)
    assert all_files(tmp_path / "serial") == all_files(tmp_path / "parallel")
    assert make_attribute_shapes_dataset(tmp_path / "serial", **small)["skipped"]
    make_attribute_shapes_dataset(tmp_path / "other", **{**small, "seed": 6})
    assert (tmp_path / "other" / "train" / "00000.png").read_bytes() != \
        (tmp_path / "serial" / "train" / "00000.png").read_bytes()


def test_label_files_list_every_image_with_its_meta_labels(shapes):
    root, summary, meta = shapes
    for phase in ("train", "test"):
        with open(root / f"{phase}_labels.csv", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["filename", *ATTRIBUTES]
        assert [row[0] for row in rows[1:]] == sorted(p.name for p in (root / phase).iterdir())
        assert [[int(v) for v in row[1:]] for row in rows[1:]] == \
            [[r["labels"][name] for name in ATTRIBUTES] for r in meta["phases"][phase]]
        assert summary["counts"][phase] == TINY[f"n_{phase}"]
    assert len(summary["combinations"]["train"]) == 8
    assert "--attributes --out <this folder> --size 32 --n_train 64 --n_test 8 --seed 1" in \
        (root / "README.md").read_text()


def object_pixels(image: np.ndarray) -> np.ndarray:
    """The object's pixels: saturated ones (the background is pale and nearly grey)."""
    return image.max(axis=2) - image.min(axis=2) > 60


def test_attributes_are_visible_in_the_pictures(shapes):
    root, _, meta = shapes
    areas = {0: [], 1: []}
    for record in meta["phases"]["train"]:
        labels, obj = record["labels"], record["object"]
        assert obj["kind"] == ("rectangle" if labels["rectangle"] else "ellipse")
        image = np.asarray(Image.open(root / record["image"])).astype(int)
        inside = object_pixels(image)
        red_minus_blue = (image[..., 0] - image[..., 2])[inside].mean()
        assert red_minus_blue > 30 if labels["red"] else red_minus_blue < -30
        areas[labels["large"]].append(inside.sum())
    assert min(areas[1]) > 1.5 * max(areas[0])


def test_distractors_leave_the_labelled_object_and_its_labels_as_they_were(tmp_path):
    """--distractors adds green or grey objects clear of the labelled one; labels, the labelled object and its
    pixels are those of the same image without distractors, and 0 distractors writes the plain dataset."""
    small = {"size": 64, "n_train": 12, "n_test": 2, "seed": 3}
    make_attribute_shapes_dataset(tmp_path / "plain", **small)
    make_attribute_shapes_dataset(tmp_path / "zero", distractors=0, **small)
    assert all_files(tmp_path / "plain") == all_files(tmp_path / "zero")
    assert "distractors" not in json.loads((tmp_path / "zero" / "shapes_meta.json").read_text())["options"]
    summary = make_attribute_shapes_dataset(tmp_path / "two", distractors=2, **small)
    assert summary["options"]["distractors"] == 2
    plain = json.loads((tmp_path / "plain" / "shapes_meta.json").read_text())["phases"]["train"]
    two = json.loads((tmp_path / "two" / "shapes_meta.json").read_text())["phases"]["train"]
    assert sum(len(record["distractors"]) for record in two) == 2 * len(two)
    for without, record in zip(plain, two):
        assert (record["labels"], record["object"]) == (without["labels"], without["object"])
        x0, y0, x1, y1 = record["object"]["bbox"]
        image = np.asarray(Image.open(tmp_path / "two" / record["image"])).astype(int)
        before = np.asarray(Image.open(tmp_path / "plain" / without["image"])).astype(int)
        assert np.array_equal(image[y0:y1, x0:x1], before[y0:y1, x0:x1])
        for other in record["distractors"]:
            assert other["palette"] in ("green", "grey")
            ox0, oy0, ox1, oy1 = other["bbox"]
            assert ox1 <= x0 or ox0 >= x1 or oy1 <= y0 or oy0 >= y1   # clear of the labelled object
            patch = image[oy0:oy1, ox0:ox1]
            saturated = object_pixels(patch)
            assert not (saturated & ((patch[..., 0] - patch[..., 1] > 40) | (patch[..., 2] - patch[..., 1] > 40))).any()
    assert "--distractors 2" in (tmp_path / "two" / "README.md").read_text()
    with pytest.raises(ValueError, match="--distractors 9"):
        make_attribute_shapes_dataset(tmp_path / "many", distractors=9, **small)


def test_command_line_writes_the_attribute_variant(tmp_path, capsys):
    out = tmp_path / "cli"
    assert shapes_main(["--attributes", "--out", str(out), "--size", "32", "--n_train", "3", "--n_test", "1"]) == 0
    assert "attribute shapes dataset" in capsys.readouterr().out
    assert (out / "train" / "00002.png").is_file() and (out / "test_labels.csv").is_file()
    assert shapes_main(["--attributes", "--out", str(tmp_path / "x"), "--max_objects", "2"]) == 2
    assert "--max_objects" in capsys.readouterr().err
    assert shapes_main(["--out", str(tmp_path / "x"), "--distractors", "2"]) == 2
    assert "--distractors applies to --attributes only" in capsys.readouterr().err
    assert shapes_main(["--attributes", "--out", str(tmp_path / "d"), "--size", "32", "--n_train", "2", "--n_test",
                        "1", "--distractors", "1"]) == 0
    assert json.loads((tmp_path / "d" / "shapes_meta.json").read_text())["options"]["distractors"] == 1
    unpaired = tmp_path / "unpaired"
    make_shapes_dataset(unpaired, size=32, n_train=1, n_test=1)
    before = all_files(unpaired)
    assert shapes_main(["--attributes", "--out", str(unpaired), "--size", "32", "--n_train", "1", "--n_test", "1"]) == 2
    assert "--force" in capsys.readouterr().err and all_files(unpaired) == before


def test_dataset_mode_reads_the_generated_shapes(shapes):
    from data import create_dataset
    from options.train_options import TrainOptions

    root = shapes[0]
    opt = TrainOptions().parse(f"--model cycle_gan --dataset_mode attributes --dataroot {root} --load_size 32 "
                               f"--crop_size 32 --gpu_ids -1 --labelled_fraction 0.25 --seed 7 "
                               f"--attributes large,red".split(), save=False, show=False)
    dataset = create_dataset(opt).dataset
    assert isinstance(dataset, AttributesDataset) and len(dataset) == TINY["n_train"]
    assert dataset.attribute_names == ["large", "red"] and dataset.label_vectors.shape == (16, 2)
    with open(root / "train_labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for index, row in enumerate(rows):
        assert dataset.true_labels(index).tolist() == [float(row["large"]), float(row["red"])]
    sample = dataset[0]
    assert sample["A"].shape == (3, 32, 32)


def test_training_samples_carry_a_labelled_image_for_the_discriminator(tmp_path):
    root = write_csv_data(tmp_path, 10)
    dataset = AttributesDataset(make_opt(root, labelled_fraction=0.2, seed=3))
    torch.manual_seed(0)
    drawn = set()
    for index in range(len(dataset)):
        sample = dataset[index]
        match = [i for i in dataset.labelled_indices if torch.equal(dataset._image(i), sample["L"])]
        assert match, "L must be one of the labelled images"
        assert torch.equal(sample["L_label"], dataset.true_labels(match[0]))
        drawn.add(match[0])
    assert drawn == set(dataset.labelled_indices)   # every labelled image serves, the unlabelled never
    assert "L" not in AttributesDataset(make_opt(root, isTrain=False))[0]
