"""scripts/paired_benchmark.py: the commands each row runs and the report it writes (no training here; the
models, test.py and evaluate.py are tested end to end in their own files)."""

import argparse
import json

from scripts import paired_benchmark
from scripts.shapes_benchmark import NOTES_MARKER


def args(tmp_path, **changes) -> argparse.Namespace:
    values = {"minutes": 10.0, "rows": list(paired_benchmark.ROWS), "seed": 0, "dataroot": "./datasets/paired",
              "workdir": str(tmp_path / "work"), "num_test": 200, "size": 64, "out": str(tmp_path / "bench.md"), "reuse": False}
    return argparse.Namespace(**{**values, **changes})


def test_every_row_trains_for_the_budget_and_the_encoder_row_draws_styles(tmp_path):
    a = args(tmp_path)
    for row in paired_benchmark.ROWS:
        train, *rest = paired_benchmark.commands(row, a)
        assert "--max_minutes 10.0" in train and "--label_nc 3" in train and "--seed 0" in train
        assert rest[-1].startswith("python evaluate.py") and "--label_nc 3" in rest[-1]
    assert "--load_size 64 --crop_size 64" in paired_benchmark.commands("pix2pix", a)[0]
    assert "--load_size 256 --crop_size 256" in paired_benchmark.commands("pix2pix", args(tmp_path, size=256))[0]
    assert "--no_instance" in paired_benchmark.commands("pix2pixhd_no_instance", a)[0]
    styles = paired_benchmark.commands("pix2pixhd_features", a)
    assert "--instance_feat" in styles[0] and "scripts.cluster_features" in styles[1] and "--n_styles 3" in styles[2]


def test_report_table_commands_and_hand_written_notes(tmp_path):
    a = args(tmp_path, rows=["pix2pix", "pix2pixhd"])
    records = [{"row": row, "seed": 0, "train_minutes": 10.1, "commands": paired_benchmark.commands(row, a),
                "metrics": {"psnr": 20.0 + i, "segmentation_miou": 0.8, "oracle_miou": 0.9, "miou_ratio": 0.889,
                            "style_distinct_min": None}, "commit": "abc1234", "machine": "test machine"}
               for i, row in enumerate(a.rows)]
    paired_benchmark.write_report(records, a)
    out = tmp_path / "bench.md"
    report = out.read_text()
    assert "| pix2pix (U-Net, PatchGAN, L1) | 10.1 | 20.00 |" in report
    assert "| 0.889 |" in report and "n/a" in report
    assert "Machine: test machine. Trained an unrecorded day at commit abc1234; report written" in report
    assert "python -m scripts.paired_benchmark --minutes 10.0 --rows pix2pix pix2pixhd" in report
    assert json.loads(out.with_suffix(".json").read_text())[1]["row"] == "pix2pixhd"
    out.write_text(report + "\nOur reading.\n")
    paired_benchmark.write_report(records, a)
    assert out.read_text().count("Our reading.") == 1 and NOTES_MARKER in out.read_text()
