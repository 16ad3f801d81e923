"""evaluate.py on a conditional model's results (stargan, match_gan): the attribute classifier
(util/attribute_classifier.py) reads each translation, scored against its target vector beside the real inputs
(ceiling) and the inputs unchanged (floor). The results folders are written here, not by a trained model: the
"translations" are real images that have the target attributes, or copies of the input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import evaluate
from datasets.shapes_attributes import ATTRIBUTES, make_attribute_shapes_dataset
from util import attribute_classifier as ac
from util.image_files import list_image_files
from util.results_manifest import write_manifest
from util.segmenter import read_image

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(ATTRIBUTES)   # rectangle, red, large
# Rectangles against ellipses need a few hundred images; 500 at 64 px learn them in ~3 s at 48 px.
SETTINGS = ac.AttributeClassifierSettings(size=48, steps=300)
CLI_SETTINGS = ["--classifier_size", "48", "--classifier_steps", "300"]   # the same: the cache is reused
QUIET = {"log": lambda _: None}


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def dataroot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("attributes") / "shapes"
    make_attribute_shapes_dataset(root, size=64, n_train=500, n_test=24)
    return root


@pytest.fixture(scope="module")
def classifier(dataroot) -> tuple[ac.AttributeClassifierNet, ac.AttributeClassifierInfo]:
    """Trained once per module, on what evaluate.py trains it on, so its evaluations load it from the cache."""
    images, labels, label_file = evaluate.attribute_training_set(dataroot, None, NAMES)
    return ac.load_or_train(dataroot, images, torch.from_numpy(labels), NAMES, label_file, SETTINGS, **QUIET)


def labels_of(root: Path, phase: str) -> dict[str, tuple[int, ...]]:
    return {stem: tuple(int(v) for v in values)
            for stem, values in evaluate.attribute_labels(root / f"{phase}_labels.csv", NAMES).items()}


def make_page(page: Path, dataroot: Path, output_of: Callable[[Path, int], Path], attributes: list[str] = NAMES,
              label_file: str | None = None) -> Path:
    """A results folder as test.py writes it for stargan: ``<stem>_real_A.png`` (the test image) and per attribute
    ``<stem>_fake_<a>.png``, a copy of ``output_of(input path, attribute index)``."""
    images = page / "images"
    images.mkdir(parents=True)
    for path in list_image_files(dataroot / "test"):
        shutil.copyfile(path, images / f"{path.stem}_real_A.png")
        for index, name in enumerate(attributes):
            shutil.copyfile(output_of(path, index), images / f"{path.stem}_fake_{name}.png")
    visuals = {"real_A": "image", "fake": "image", "rec": "image", **{f"fake_{name}": "image" for name in attributes}}
    write_manifest(page, "stargan", visuals, {"AtoB": {"input_image": "real_A", "output_image": f"fake_{attributes[0]}"}},
                   {"dataroot": str(dataroot), "phase": "test", "ins_max": None, "max_instances": 20,
                    "directions": ["AtoB"], "attributes": list(attributes), "label_file": label_file})
    return page


def oracle(dataroot: Path) -> Callable[[Path, int], Path]:
    """Translations as a perfect model would draw them: another real image whose labels are the input's with
    attribute j flipped (a test image where there is one, else a training image)."""
    test, train = labels_of(dataroot, "test"), labels_of(dataroot, "train")
    pool = [(dataroot / "test" / f"{stem}.png", labels) for stem, labels in test.items()]
    pool += [(dataroot / "train" / f"{stem}.png", labels) for stem, labels in train.items()]

    def output_of(path: Path, index: int) -> Path:
        target = list(test[path.stem])
        target[index] = 1 - target[index]
        return next(other for other, labels in pool if list(labels) == target and other != path)

    return output_of


def identity(path: Path, index: int) -> Path:
    return path


def score(page: Path, dataroot: Path, **options) -> dict:
    return evaluate.evaluate_attribute_results(page, dataroot, classifier_settings=SETTINGS, fid=False,
                                               **{**QUIET, **options})


# ---------------------------------------------------------------------------------------------- the scores
def test_attribute_scores_count_every_attribute_the_flipped_one_and_the_kept_ones():
    true = np.array([[0, 1], [1, 1]])
    read = np.array([[[1, 1], [0, 0]],      # input 0: flip attribute 0 right; flip attribute 1 right
                     [[0, 0], [1, 1]]])     # input 1: flip 0 right but lose attribute 1; flip 1 not done
    scores = evaluate.attribute_scores(true, read, ["a", "b"])
    assert scores["attribute_accuracy"] == pytest.approx(6 / 8)
    assert scores["attribute_flip_accuracy"] == pytest.approx(3 / 4)
    assert scores["attribute_kept_accuracy"] == pytest.approx(3 / 4)
    assert scores["attribute_vector_accuracy"] == pytest.approx(2 / 4)
    assert scores["attribute_flip_accuracy_a"] == 1.0 and scores["attribute_flip_accuracy_b"] == 0.5
    unchanged = evaluate.attribute_scores(true, np.repeat(true[:, None], 2, 1), ["a", "b"])
    assert unchanged["attribute_accuracy"] == 0.5 and unchanged["attribute_flip_accuracy"] == 0.0
    assert unchanged["attribute_kept_accuracy"] == 1.0
    assert evaluate.attribute_scores(true[:, :1], read[:, :1, :1], ["a"])["attribute_kept_accuracy"] is None


def test_classifier_learns_the_attributes_of_the_tiny_dataset(dataroot, classifier):
    net, info = classifier
    assert info.trained and info.train_images == 500 and info.attributes == NAMES and info.side == 48
    test = labels_of(dataroot, "test")
    read = ac.predict(net, [read_image(dataroot / "test" / f"{stem}.png") for stem in test], info.side)
    accuracy = (read == np.array(list(test.values()))).mean(0)
    assert read.shape == (24, 3) and set(np.unique(read)) <= {0, 1}
    assert accuracy.min() >= 0.9 and accuracy.mean() >= 0.95, f"per attribute {accuracy}"


def test_cache_is_reused_and_retrained_when_labels_attributes_or_settings_change(tmp_path):
    root = tmp_path / "small"
    make_attribute_shapes_dataset(root, size=32, n_train=8, n_test=2)
    settings = ac.AttributeClassifierSettings(size=16, steps=3, batch_size=4)

    def train(names: list[str] = NAMES, settings: ac.AttributeClassifierSettings = settings, **options):
        images, labels, label_file = evaluate.attribute_training_set(root, None, names)
        return ac.load_or_train(root, images, torch.from_numpy(labels), names, label_file, settings, **options,
                                **QUIET)[1]

    cache = root / ".cache" / ac.CACHE_NAME
    first = train()
    stamp = cache.stat().st_mtime_ns
    second = train()
    assert first.trained and not second.trained and cache.stat().st_mtime_ns == stamp
    assert second.source == str(cache) and second.train_images == 8
    assert train(retrain=True).trained
    assert train(NAMES[:2]).trained, "other attributes retrain"
    assert not train(NAMES[:2]).trained
    assert train(NAMES[:2], ac.AttributeClassifierSettings(size=16, steps=4, batch_size=4)).trained, "other settings"
    train()
    rows = (root / "train_labels.csv").read_text().splitlines()
    flipped = rows[1].rsplit(",", 1)
    rows[1] = f"{flipped[0]},{1 - int(flipped[1])}"
    (root / "train_labels.csv").write_text("\n".join(rows) + "\n")
    assert train().trained, "changed labels retrain"
    with pytest.raises(ValueError, match="labels of shape"):
        ac.load_or_train(root, [root / "train" / "00000.png"], torch.zeros(1, 2), NAMES, None, settings, **QUIET)


# ---------------------------------------------------------------------------------------------- evaluate.py
def test_real_images_with_the_target_attributes_score_near_the_ceiling(dataroot, classifier, tmp_path):
    result = score(make_page(tmp_path / "oracle", dataroot, oracle(dataroot)), dataroot)
    assert result["attributes"] == NAMES and result["num_images"] == 24 and result["num_translations"] == 72
    assert result["attribute_classifier_trained_now"] is False, "the module's classifier is read from the cache"
    assert result["attribute_classifier_train_images"] == 500
    assert result["real_attribute_accuracy"] >= 0.95
    assert result["attribute_accuracy"] >= result["real_attribute_accuracy"] - 0.05
    assert result["attribute_flip_accuracy"] >= 0.9 and result["attribute_kept_accuracy"] >= 0.9
    assert result["attribute_vector_accuracy"] >= 0.8
    assert all(result[f"attribute_flip_accuracy_{name}"] >= 0.85 for name in NAMES)
    assert result["identity_attribute_flip_accuracy"] <= 0.1
    assert result["identity_attribute_accuracy"] == pytest.approx(2 / 3, abs=0.05), "kept right, flipped wrong"
    assert result["input_l1"] > 0.01, "other images than the inputs"
    first = result["per_image"][0]
    assert set(first) == {"stem", "labels", "input_l1", "read_real", "read"} and set(first["read"]) == set(NAMES)


def test_copies_of_the_input_score_the_floor(dataroot, classifier, tmp_path):
    class MeanColour(nn.Module):   # stand-in for Inception: per-channel means of uint8 images
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return torch.cat([images.float().mean((2, 3)) / 255, images.float().std((2, 3)) / 255], 1)

    result = evaluate.evaluate_attribute_results(make_page(tmp_path / "copies", dataroot, identity), dataroot,
                                                 classifier_settings=SETTINGS, feature_extractor=MeanColour(),
                                                 kid_subset_size=8, **QUIET)
    assert result["input_l1"] == 0.0
    assert result["attribute_flip_accuracy"] == result["identity_attribute_flip_accuracy"] <= 0.1
    assert result["attribute_accuracy"] == result["identity_attribute_accuracy"]
    assert result["attribute_kept_accuracy"] == pytest.approx(result["real_attribute_accuracy"])
    assert result["real_attribute_accuracy"] >= 0.95
    assert result["attribute_vector_accuracy"] <= 0.1, "only where the classifier misreads the input"
    assert np.isfinite(result["fid"]) and result["kid_mean"] is not None and "fid" not in result["skipped"]


def test_missing_labels_attributes_and_outputs_are_clear_errors(dataroot, tmp_path):
    page = make_page(tmp_path / "stray", dataroot, identity)
    for name in ["real_A", *(f"fake_{attribute}" for attribute in NAMES)]:
        shutil.copyfile(dataroot / "test" / "00000.png", page / "images" / f"stray_{name}.png")
    with pytest.raises(evaluate.EvaluationError, match=r"stray_real_A\.png .*no row in label file .*test_labels\.csv"):
        score(page, dataroot)
    smiles = make_page(tmp_path / "smile", dataroot, identity, ["red", "smile"])
    with pytest.raises(evaluate.EvaluationError, match=r"smile but label file .*test_labels\.csv has no such column"):
        score(smiles, dataroot)
    empty = make_page(tmp_path / "empty", dataroot, identity)
    for path in (empty / "images").glob("*_fake_*.png"):
        path.unlink()
    with pytest.raises(evaluate.EvaluationError, match=r"no translations in .*<stem>_fake_<attribute>\.png"):
        score(empty, dataroot)
    partial = make_page(tmp_path / "partial", dataroot, identity)
    (partial / "images" / "00003_fake_large.png").unlink()
    with pytest.raises(evaluate.EvaluationError, match=r"missing .*00003_fake_large\.png"):
        score(partial, dataroot)
    elsewhere = make_page(tmp_path / "elsewhere", dataroot, identity, label_file=str(tmp_path / "gone.csv"))
    assert evaluate.main(["--results", str(elsewhere), "--no_fid"]) == 2


def test_without_training_images_the_classifier_metrics_are_skipped(dataroot, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(dataroot / "test", bare / "test")
    shutil.copyfile(dataroot / "test_labels.csv", bare / "test_labels.csv")
    result = score(make_page(tmp_path / "page", bare, identity), bare)
    assert result["attribute_accuracy"] is None and result["input_l1"] == 0.0
    assert "attribute accuracy skipped" in result["skipped"]["attributes"] and "train" in result["skipped"]["attributes"]


def test_command_line_prints_the_table_and_writes_the_metrics(dataroot, classifier, tmp_path):
    page = make_page(tmp_path / "oracle", dataroot, oracle(dataroot))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "evaluate.py", "--results", str(page), "--no_fid", *CLI_SETTINGS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    for label in ("attribute accuracy (every attribute read as its target)", "ceiling: the real inputs",
                  "floor: the input unchanged", "flip accuracy, rectangle", "L1 translation vs input"):
        assert label in done.stdout
    assert "background PSNR" not in done.stdout and "training the attribute classifier" not in done.stderr
    result = json.loads((page / "metrics.json").read_text())
    expected = {*evaluate.ATTRIBUTE_KEYS, *(f"attribute_flip_accuracy_{name}" for name in NAMES), "fid", "skipped",
                "per_image", "attributes", "num_images", "num_translations"}
    assert expected <= set(result) and result["attributes"] == NAMES and result["fid"] is None
    assert result["attribute_accuracy"] >= 0.9 and result["attribute_classifier_trained_now"] is False


def test_several_attribute_folders_print_mean_and_spread(dataroot, classifier, tmp_path, capsys):
    pages = [make_page(tmp_path / "oracle", dataroot, oracle(dataroot)),
             make_page(tmp_path / "copies", dataroot, identity)]
    assert evaluate.is_attribute_results(pages[0]) and evaluate.main(["--results", *map(str, pages), "--no_fid",
                                                                       *CLI_SETTINGS]) == 0
    runs = [json.loads((page / "metrics.json").read_text()) for page in pages]
    summary = evaluate.summarize_runs(runs)
    assert summary["attribute_flip_accuracy"]["mean"] == pytest.approx(
        (runs[0]["attribute_flip_accuracy"] + runs[1]["attribute_flip_accuracy"]) / 2)
    assert "attribute_flip_accuracy_large" in summary and "background_l1" not in summary
    out = capsys.readouterr().out
    assert "mean +- spread (half the range) over 2 runs" in out and "flip accuracy, large" in out.split("mean +-")[-1]


def test_tables_of_each_kind_and_of_mixed_kinds():
    rows = [key for key, _, _ in evaluate.table_rows([{"attributes": ["a", "b"]}])]
    assert rows[:2] == ["num_images", "num_translations"] and rows[-1] == "seconds"
    assert rows.index("attribute_flip_accuracy_a") == rows.index("identity_attribute_flip_accuracy") + 1
    assert evaluate.table_rows([{}]) == evaluate.TABLE_ROWS
    assert evaluate.table_rows([{"paired": True}]) == evaluate.PAIRED_TABLE_ROWS
    mixed = [key for key, _, _ in evaluate.table_rows([{"paired": True}, {"attributes": ["a"]}, {}])]
    assert len(mixed) == len(set(mixed)) and mixed[-1] == "seconds"
    assert {"background_l1", "psnr", "attribute_accuracy", "attribute_flip_accuracy_a"} <= set(mixed)
    text = evaluate.format_table({"attributes": ["a"], "num_images": 2, "attribute_accuracy": 0.5})
    assert "attribute accuracy (every attribute read as its target)  0.500" in text and "flip accuracy, a" in text
