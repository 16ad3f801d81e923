"""scripts/shapes_benchmark.py end to end on tiny data: every row trained, tested and scored; the report."""

import json

from PIL import Image

from datasets.make_shapes_dataset import make_shapes_dataset
from scripts import shapes_benchmark


def test_benchmark_writes_the_table_commands_figure_and_keeps_hand_written_notes(tmp_path):
    data = tmp_path / "shapes"
    make_shapes_dataset(data, size=32, n_train=6, n_test=3, seed=0, min_objects=1, max_objects=2)
    out = tmp_path / "docs" / "bench.md"
    argv = ["--minutes", "0.005", "--size", "32", "--dataroot", str(data), "--workdir", str(tmp_path / "work"),
            "--num_test", "3", "--classifier_steps", "2", "--nets", "--ngf 4 --ndf 4 --n_blocks_G 1",
            "--out", str(out), "--rows", "instagan", "cyclegan"]
    assert shapes_benchmark.main(argv) == 0
    report = out.read_text()
    rows = [line for line in report.splitlines() if line.startswith(("| InstaGAN", "| CycleGAN"))]
    assert len(rows) == 2 and rows[1].split("|")[4].strip() == "n/a"  # CycleGAN has no shape score
    assert "--norm instance" in report and "--eval" in report and "--nets '--ngf 4" in report
    assert "--rows instagan cyclegan" in report  # the reproduce line names the rows that were run
    results = json.loads(out.with_suffix(".json").read_text())
    assert [r["row"] for r in results] == ["instagan", "cyclegan"]
    assert all(r["steps"] >= 1 and r["num_images"] == 3 for r in results)
    assert 0 <= results[0]["shape_score"] <= 1 and results[0]["empty_translated_masks"] >= 0
    with Image.open(out.with_suffix(".png")) as figure:
        assert figure.size == (5 * 32 * 2, 16 + 3 * 32 * 2)  # input, masks, CycleGAN, InstaGAN, masks x 3 rows

    out.write_text(report + f"\n{shapes_benchmark.NOTES_MARKER}\n\nOur reading.\n")
    assert shapes_benchmark.main(argv + ["--reuse"]) == 0
    rewritten = out.read_text()
    assert rewritten.count("Our reading.") == 1 and rewritten.count("| InstaGAN") == 1
