"""scripts/attributes_benchmark.py end to end on tiny data: rows trained and translated, scored later with
--reuse, and the report with its references, commands and figure."""

import json

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
    assert "reference: the input unchanged" in report and "reference: the real test images" in report
    assert "--labelled_fraction 0.1" in report and "--fractions 0.1 1.0" in report
    saved = json.loads(out.with_suffix(".json").read_text())
    first = saved[0]["runs"][0]["metrics"]
    assert first["num_translations"] == 9 and 0 <= first["attribute_accuracy"] <= 1
    assert saved[0]["summary"]["attribute_accuracy"]["runs"] == 2
    with Image.open(out.with_suffix(".png")) as figure:       # input + 3 flips per model, one row per test image
        assert figure.size == (7 * 64, 16 + 3 * 64)
