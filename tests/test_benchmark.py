"""scripts/benchmark.py: grid expansion, synthetic instances, and a one-point run of the --quick plumbing.

No timing targets here: the numbers only have to exist and be positive.
"""

from __future__ import annotations

import json

import pytest
import torch

from scripts import benchmark


def test_quick_run_writes_table_and_json(tmp_path, capsys):
    report_path = tmp_path / "out" / "bench.json"
    status = benchmark.main(["--quick", "--batch_sizes", "2", "--precisions", "none", "--steps", "1",
                             "--warmup", "1", "--loading_images", "4", "--threads", "1", "--num_threads", "0",
                             "--data_cache", str(tmp_path / "data"), "--json", str(report_path)])
    assert status == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| model | size | N | ins_max | ins_per | batch |")
    assert table[2].startswith("| insta_gan | 32 | 2 | 2 | 2 | 2 | cpu | none | off | off | 8/8/1 |")

    report = json.loads(report_path.read_text())
    assert report["grid"] == "quick"
    assert report["machine"]["torch"] == torch.__version__
    assert report["machine"]["logical_cpus"] >= 1
    (row,) = report["rows"]
    assert (row["size"], row["instances"], row["batch_size"], row["precision"]) == (32, 2, 2, "none")
    assert "error" not in row
    assert "load_error" not in row
    for key in ("seconds_per_step", "steps_per_s", "images_per_s", "peak_memory_mib", "load_images_per_s",
                "load_to_train_ratio"):
        assert row[key] > 0, key
    assert row["memory_kind"] == "peak_rss"
    assert row["images_per_s"] == pytest.approx(2 * row["steps_per_s"])
    assert row["load_images"] >= 4

    assert benchmark.main(["--from_json", str(report_path)]) == 0  # the table again, without measuring
    assert "| insta_gan | 32 | 2 | 2 | 2 | 2 | cpu | none | off | off | 8/8/1 |" in capsys.readouterr().out


def test_profile_splits_a_step_into_stages_that_add_up(tmp_path):
    """--profile: time per stage (generator and discriminator passes, backward, optimiser, ...) that account
    for the whole profiled step, beside the top operators."""
    point = benchmark.Point(32, 2, 1, 2, ngf=4, ndf=4, n_blocks_G=1)
    result = benchmark.measure_training(point, steps=1, warmup=0, profile=True)
    stages = {stage["stage"]: stage["ms"] for stage in result["stages"]}
    for name in ("forward: generators", "forward: discriminators", "update: backward", "update: optimiser step"):
        assert stages[name] > 0, name
    assert sum(stages.values()) == pytest.approx(result["profiled_step_ms"])
    assert stages["set_input and bookkeeping"] >= 0
    assert any(op["op"] == "aten::convolution_backward" for op in result["top_ops"])
    text = benchmark.format_top_ops([{**benchmark.asdict(point), **result}])
    assert "stages of one profiled step" in text and "forward: generators" in text


def test_cycle_gan_runs_beside_insta_gan_and_old_reports_still_print(tmp_path, capsys):
    point = benchmark.Point(32, 2, 1, 2, ngf=4, ndf=4, n_blocks_G=1, model="cycle_gan")
    assert "--ins_max" not in benchmark.train_argv(point, str(tmp_path))
    result = benchmark.measure_training(point, steps=1, warmup=0, profile=False, peak_tflops=0.5)
    assert result["images_per_s"] > 0
    insta = benchmark.measure_training(benchmark.replace(point, model="insta_gan"), steps=1, warmup=0, profile=False)
    # model FLOPs per step: InstaGAN encodes and decodes every instance too, and makes two sequential steps here
    assert insta["flops_per_step"] > 2 * result["flops_per_step"] > 0
    assert result["mfu"] == pytest.approx(result["achieved_tflops"] / 0.5)
    assert result["achieved_tflops"] == pytest.approx(result["flops_per_step"] / result["seconds_per_step"] / 1e12)
    assert "mfu" not in insta   # no peak known for a CPU
    old_row = {"size": 32, "instances": 2, "ins_max": 2, "ins_per": 2, "batch_size": 2, "device": "cpu",
               "precision": "none", "channels_last": False, "ngf": 8, "ndf": 8, "n_blocks_G": 1,
               "seconds_per_step": 1.0, "load_average_1min": 0.5}   # written before the model and compile axes
    assert benchmark.format_table([old_row]).splitlines()[2].startswith(
        "| insta_gan | 32 | 2 | 2 | 2 | 2 | cpu | none | off | off | 8/8/1 | 1.000 |")


def test_memory_plot_is_written(tmp_path):
    rows = [{**benchmark.asdict(point), "peak_memory_mib": 100.0 * point.ins_per, "memory_kind": "peak_rss"}
            for point in benchmark.grid_points(benchmark.named_grids()["memory"])]
    benchmark.plot_memory(rows, str(tmp_path / "memory.png"))
    assert (tmp_path / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(benchmark.BenchmarkError, match="--plot needs"):
        benchmark.plot_memory(rows[:1], str(tmp_path / "one.png"))


@pytest.mark.parametrize("count", [1, 3, 16])
def test_synthetic_masks_hold_exactly_n_disjoint_instances(count):
    masks = benchmark.disjoint_instance_masks(2, count, 32, 20, torch.Generator().manual_seed(1))
    assert masks.shape == (2, 20, 32, 32)
    assert set(masks.unique().tolist()) <= {-1.0, 1.0}
    present = (masks > 0).flatten(2).any(2)
    assert present[:, :count].all()
    assert not present[:, count:].any()
    assert ((masks > 0).sum(1) <= 1).all()  # no pixel belongs to two instances


def test_memory_grid_compares_sequential_with_one_step():
    points = benchmark.grid_points(benchmark.named_grids()["memory"])
    sequential = [(p.instances, p.ins_max) for p in points if p.ins_per == 2]
    one_step = [(p.instances, p.ins_max) for p in points if p.ins_per == p.instances]
    assert sequential == [(2, 2), (4, 4), (8, 8), (16, 16)]
    assert one_step == [(2, 2), (4, 4), (8, 8), (16, 16)]
    assert len(points) == 7  # N=2 is the same point in both variants
    assert {(p.ngf, p.ndf, p.n_blocks_G) for p in points} == {(64, 64, 9)}


def test_axis_flags_replace_the_named_grid():
    args = benchmark.parse_args(["--grid", "gpu", "--sizes", "64", "--ngf", "16", "--device", "cpu"])
    points = benchmark.grid_points(benchmark.override_grid(benchmark.named_grids()["gpu"], args))
    assert {p.size for p in points} == {64}
    assert {p.device for p in points} == {"cpu"}
    assert {p.ngf for p in points} == {16}
    assert {(p.precision, p.channels_last) for p in points} == {("none", False), ("bf16", False), ("bf16", True)}
    args = benchmark.parse_args(["--grid", "gpu", "--compile", "off", "--batch_sizes", "2", "--device", "cpu"])
    points = benchmark.grid_points(benchmark.override_grid(benchmark.named_grids()["gpu"], args))
    assert {(p.compile, p.batch_size) for p in points} == {(False, 2)}


def test_rejects_a_size_the_networks_cannot_take(capsys):
    assert benchmark.main(["--quick", "--sizes", "30"]) == 2
    assert "--sizes 30" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_gpu_grid_covers_batch_precision_and_compile_at_200_px():
    points = benchmark.grid_points(benchmark.named_grids()["gpu"])
    plain = {(p.batch_size, p.precision, p.compile) for p in points if not p.channels_last}
    assert plain == {(b, amp, c) for b in (1, 4, 8) for amp in ("none", "bf16") for c in (False, True)}
    assert {p.size for p in points} == {200} and {p.device for p in points} == {"cuda"}
    assert {(p.ngf, p.ndf, p.n_blocks_G) for p in points} == {(64, 64, 9)}


def test_gpu_grid_without_cuda_names_the_fix(capsys):
    assert benchmark.main(["--grid", "gpu"]) == 2
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err


def test_json_keeps_finished_points_when_the_run_is_stopped(tmp_path, monkeypatch):
    """A grid killed part-way (a lease or a timeout ends) leaves a readable report of the points it finished."""
    calls = []

    def fake_point(spec, threads):
        calls.append(spec)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run is stopped during the second point
        return {"seconds_per_step": 0.5, "steps_per_s": 2.0, "images_per_s": 2.0}

    monkeypatch.setattr(benchmark, "run_in_fresh_process", fake_point)
    report_path = tmp_path / "bench.json"
    with pytest.raises(KeyboardInterrupt):
        benchmark.main(["--quick", "--no_loading", "--json", str(report_path)])
    report = json.loads(report_path.read_text())
    assert report["complete"] is False
    assert report["points"] == 4
    assert [row["seconds_per_step"] for row in report["rows"]] == [0.5]
    assert benchmark.main(["--from_json", str(report_path)]) == 0
