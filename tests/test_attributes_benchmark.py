"""scripts/attributes_benchmark.py end to end on tiny data: rows trained and translated, scored later with
--reuse, and the report with its references, commands and figure."""

import json

import pytest
from PIL import Image

from datasets.make_shapes_dataset import main as make_shapes
from scripts import attributes_benchmark


def test_benchmark_trains_then_scores_and_writes_the_report(tmp_path):
    data = tmp_path / "attrs"
    assert make_shapes(f"--attributes --out {data} --size 32 --n_train 16 --n_test 3".split()) == 0
    out = tmp_path / "docs" / "attrs.md"
    argv = ["--steps", "2", "--size", "32", "--dataroot", str(data), "--workdir", str(tmp_path / "work"),
            "--num_test", "3", "--classifier_steps", "5", "--fractions", "0.1", "1.0", "--seeds", "0", "1",
            "--nets", "--ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 3", "--out", str(out)]
    assert attributes_benchmark.main(argv + ["--train_only"]) == 0
    assert not out.exists()                                     # trained and translated, nothing scored yet
    records = sorted((tmp_path / "work" / "logs").glob("*_record.json"))
    assert len(records) == 6                                    # 10%: both seeds per model; 100%: the first
    assert all("metrics" not in json.loads(path.read_text()) for path in records)

    assert attributes_benchmark.main(argv + ["--reuse"]) == 0   # scores the saved translations, no training
    report = out.read_text()
    rows = [line.split("|") for line in report.splitlines() if line.startswith(("| StarGAN", "| MatchGAN"))]
    assert [(row[1].strip(), row[2].strip(), row[3].strip()) for row in rows] == [
        ("StarGAN", "10%", "0 1"), ("MatchGAN", "10%", "0 1"), ("StarGAN", "100%", "0"), ("MatchGAN", "100%", "0")]
    assert "±" in rows[0][5] and "±" not in rows[2][5]         # mean ± spread where two seeds ran
    assert "over seeds 0 and 1; other rows one seed" in report
    assert "reference: the input unchanged" in report and "reference: the real test images" in report
    assert "--labelled_fraction 0.1" in report and "--fractions 0.1 1.0" in report
    saved = json.loads(out.with_suffix(".json").read_text())
    first = saved[0]["runs"][0]["metrics"]
    assert first["num_translations"] == 9 and 0 <= first["attribute_accuracy"] <= 1
    assert saved[0]["summary"]["attribute_accuracy"]["runs"] == 2
    with Image.open(out.with_suffix(".png")) as figure:       # input + 3 flips per model, one row per test image
        assert figure.size == (7 * 64, 16 + 3 * 64)


def write_celeba_folder(root, train: int, test: int) -> None:
    """CelebA's layout: non-square JPEGs in train/ and test/, one list_attr_celeba.txt with values 1 / -1."""
    rows = []
    for index in range(train + test):
        name = f"{index + 1:06d}.jpg"
        folder = root / ("train" if index < train else "test")
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 48), (index * 20 % 256, 90, 160)).save(folder / name)
        rows.append(f"{name} {' '.join(('1' if (index >> bit) & 1 else '-1').rjust(2) for bit in range(3))}")
    (root / "list_attr_celeba.txt").write_text(f"{len(rows)}\nSmiling Male Young\n" + "\n".join(rows) + "\n")


def test_benchmark_runs_on_a_celeba_folder_with_the_attributes_and_flags_given(tmp_path):
    data = tmp_path / "celeba"
    write_celeba_folder(data, train=20, test=4)
    out = tmp_path / "celeba.md"
    argv = ["--steps", "2", "--size", "32", "--dataroot", str(data), "--attributes", "Male,Smiling",
            "--data_flags", "--load_size 36", "--workdir", str(tmp_path / "work"), "--num_test", "4",
            "--classifier_steps", "5", "--fractions", "0.1", "--seeds", "0", "--models", "stargan",
            "--nets", "--ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 3", "--out", str(out)]
    assert attributes_benchmark.main(argv) == 0
    report = out.read_text()
    assert f"Dataset {data} at 32x32, attributes Male,Smiling; 20 training and 4 test images" in report
    assert "make_shapes_dataset" not in report and not (data / "shapes_meta.json").exists()
    assert "--attributes Male,Smiling" in report and "--load_size 36" in report     # rows and reproduce command
    record = json.loads(out.with_suffix(".json").read_text())[0]["runs"][0]
    assert "--attributes Male,Smiling" in record["train_command"] and "--load_size 36" in record["train_command"]
    assert record["metrics"]["num_translations"] == 8                                # 4 images x 2 flips
    with Image.open(out.with_suffix(".png")) as figure:                             # input + one flip per attribute
        assert figure.size == (3 * 64, 16 + 4 * 64)


def test_benchmark_without_data_for_other_attributes_says_what_the_folder_needs(tmp_path):
    with pytest.raises(SystemExit, match="train/ and test/ image folders"):
        attributes_benchmark.main(["--dataroot", str(tmp_path / "none"), "--attributes", "Male"])


def test_benchmark_help_names_the_seeded_rows_and_every_default():
    words = " ".join(attributes_benchmark.build_parser().format_help().split())
    assert "--seeds SEEDS [SEEDS ...] seeds of the 10% rows; the others use the first --models" in words
    assert ("the report (default docs/attributes_benchmark.md, with --distractors 2 "
            "docs/attributes_benchmark_distractors.md, with N other than 2 "
            "docs/attributes_benchmark_distractorsN.md)") in words


def test_benchmark_on_distractor_shapes_reports_them_and_refuses_a_mismatch(tmp_path):
    defaults = attributes_benchmark.parse_args(["--distractors", "2"])
    assert (defaults.dataroot, defaults.workdir) == ("./datasets/shapes_attributes_distractors_64",
                                                     "./checkpoints/attributes_benchmark_distractors")
    assert defaults.out.endswith("docs/attributes_benchmark_distractors.md")   # never the plain set's report
    other = attributes_benchmark.parse_args(["--distractors", "4"])   # nor the two-distractor set's
    assert (other.dataroot, other.workdir) == ("./datasets/shapes_attributes_distractors4_64",
                                               "./checkpoints/attributes_benchmark_distractors4")
    assert other.out.endswith("docs/attributes_benchmark_distractors4.md")
    assert attributes_benchmark.parse_args([]).out.endswith("docs/attributes_benchmark.md")
    data, out = tmp_path / "distractors", tmp_path / "distractors.md"
    assert make_shapes(f"--attributes --out {data} --size 32 --n_train 16 --n_test 2 --distractors 1".split()) == 0
    argv = ["--steps", "2", "--size", "32", "--dataroot", str(data), "--workdir", str(tmp_path / "work"),
            "--num_test", "2", "--classifier_steps", "2", "--fractions", "0.1", "--seeds", "0", "--models",
            "stargan", "--nets", "--ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 3", "--out", str(out)]
    assert attributes_benchmark.main(argv + ["--distractors", "1"]) == 0
    assert json.loads((data / "shapes_meta.json").read_text())["options"]["distractors"] == 1
    report = out.read_text()
    assert "one labelled object and up to 1 unlabelled distractors per image" in report
    assert "Every row has one seed (0)." in report and "spread" not in report
    assert f"make_shapes_dataset --attributes --out {data} --size 32 --distractors 1" in report
    assert "python -m scripts.attributes_benchmark --distractors 1 --steps 2" in report   # the reproduce command
    with pytest.raises(SystemExit, match="1 distractors, not --distractors 0"):
        attributes_benchmark.main(argv)
