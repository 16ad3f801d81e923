"""scripts/shapes_curves.py on tiny data: staged training resumes the same run and scores every stage."""

import json

from datasets.make_shapes_dataset import make_shapes_dataset
from scripts import shapes_curves


def test_curves_resume_each_stage_and_score_it_against_the_ground_truth(tmp_path):
    data = tmp_path / "shapes"
    make_shapes_dataset(data, size=32, n_train=6, n_test=3, seed=0, min_objects=1, max_objects=2)
    out = tmp_path / "curves.md"
    assert shapes_curves.main(["--rows", "instagan", "cyclegan", "--steps", "2", "1", "--size", "32",
                               "--dataroot", str(data), "--workdir", str(tmp_path / "work"), "--num_test", "3",
                               "--classifier_steps", "2", "--nets", "--ngf 4 --ndf 4 --n_blocks_G 1",
                               "--out", str(out)]) == 0
    curves = json.loads(out.with_suffix(".json").read_text())
    assert [curve["row"] for curve in curves] == ["instagan", "cyclegan"]
    for curve in curves:
        assert [point["steps"] for point in curve["points"]] == [1, 2]     # stage 2 resumed stage 1's run
        assert "--continue_train" in curve["commands"][2] and "--max_steps 2" in curve["commands"][2]
        minutes = [point["train_minutes"] for point in curve["points"]]
        assert 0 < minutes[0] < minutes[1]
        assert all(point[d]["target_psnr"] > 0 for point in curve["points"] for d in ("AtoB", "BtoA"))
    assert curves[1]["points"][0]["AtoB"]["shape_score"] is None            # CycleGAN translates no masks
    # the objects' kind as read from the pixels: the curve that shows when the new shapes appear
    assert all(0 <= point[d]["object_kind_score"] <= 1 for curve in curves for point in curve["points"]
               for d in ("AtoB", "BtoA"))
    report = out.read_text()
    assert "| object kind |" in report and report.count("| 1 | ") == 2 and "input unchanged" in report and "--steps 1 2" in report
    assert out.with_suffix(".png").stat().st_size > 0


def test_curves_need_the_ground_truth(tmp_path, capsys):
    assert shapes_curves.main(["--steps", "1", "--dataroot", str(tmp_path)]) == 2
    assert "make_shapes_dataset" in capsys.readouterr().err
