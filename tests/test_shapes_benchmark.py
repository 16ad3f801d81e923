"""scripts/shapes_benchmark.py end to end on tiny data: every row trained, tested and scored; the report."""

import json
import time

import pytest
from PIL import Image

from datasets.make_shapes_dataset import in_domain_references, make_shapes_dataset
from scripts import shapes_benchmark


def test_benchmark_writes_the_table_commands_figure_and_keeps_hand_written_notes(tmp_path):
    data = tmp_path / "shapes"
    make_shapes_dataset(data, size=32, n_train=6, n_test=3, seed=0, min_objects=1, max_objects=2)
    out = tmp_path / "docs" / "bench.md"
    argv = ["--steps", "1", "--size", "32", "--dataroot", str(data), "--workdir", str(tmp_path / "work"),
            "--num_test", "3", "--classifier_steps", "2", "--nets", "--ngf 4 --ndf 4 --n_blocks_G 1",
            "--out", str(out), "--rows", "instagan", "cyclegan", "instagan_compose", "--seeds", "0", "1"]
    assert shapes_benchmark.main(argv) == 0
    report = out.read_text()
    for direction in ("A -> B", "B -> A"):
        section = report.split(f"### {direction}")[1].split("###")[0]
        header = [cell.strip() for cell in section.split("| model")[1].splitlines()[0].split("|")]
        rows = [line.split("|") for line in section.splitlines() if line.startswith(("| InstaGAN", "| CycleGAN"))]
        assert [row[2].strip() for row in rows] == ["0 1", "0 1", "0"]   # main rows both seeds, options the first
        shape_score, target_psnr = header.index("shape score") + 1, header.index("target PSNR dB") + 1
        assert "±" in rows[0][target_psnr] and rows[1][shape_score].strip() == "n/a"   # no CycleGAN masks
        true_objects = header.index("target PSNR with true objects dB") + 1
        for row in rows:   # perfect objects can only add: the bound sits at or above the row's own figure
            assert float(row[true_objects].split("±")[0]) >= float(row[target_psnr].split("±")[0])
        assert "shape change" in header
        assert "reference: the input unchanged" in section and "mean colour" in section
        iou = header.index("target-mask IoU") + 1
        unchanged = next(line.split("|") for line in section.splitlines() if "the input unchanged" in line)
        assert 0 <= float(unchanged[iou]) <= 1        # the input masks scored against the target masks
        bound = [line.split("|") for line in section.splitlines() if "nearest angle" in line]
        expected = in_domain_references(data, direction[0])
        assert float(bound[0][iou]) == pytest.approx(expected["target_mask_iou"], abs=1e-3)
        background = header.index("background PSNR dB") + 1
        assert float(bound[0][background]) == pytest.approx(expected["target_background_psnr"], abs=1e-2)
        itself = next(line.split("|") for line in section.splitlines() if "the target itself" in line)
        assert float(itself[background]) > 20        # the target's own background: only anti-aliased rims differ
    assert "--norm instance" in report and "--eval" in report and "--nets '--ngf 4" in report
    assert f"\n    python -m datasets.make_shapes_dataset --out {data} --size 32\n" in report   # a code line
    assert "--rows instagan cyclegan instagan_compose" in report  # the reproduce line names the rows that were run
    results = json.loads(out.with_suffix(".json").read_text())
    assert [r["row"] for r in results] == ["instagan", "cyclegan", "instagan_compose"]
    first = results[0]["runs"][0]
    assert first["steps"] == 1 and first["AtoB"]["num_images"] == 3 and first["BtoA"]["num_images"] == 3
    assert 0 <= first["AtoB"]["shape_score"] <= 1 and first["AtoB"]["target_psnr"] > 0
    assert results[0]["AtoB"]["target_psnr"]["runs"] == 2
    with Image.open(out.with_suffix(".png")) as figure:  # input, target, CycleGAN, InstaGAN, composed, masks
        assert figure.size == (6 * 32 * 2, 16 + 3 * 32 * 2)

    out.write_text(report + f"\n{shapes_benchmark.NOTES_MARKER}\n\nOur reading.\n")
    assert shapes_benchmark.main(argv + ["--reuse"]) == 0
    rewritten = out.read_text()
    assert rewritten.count("Our reading.") == 1 and rewritten.count("| InstaGAN (") == 2
    # --rescore keeps the runs (no training) and scores their saved results again
    saved = tmp_path / "work" / "logs" / "shapes_instagan_seed0_metrics.json"
    record = json.loads(saved.read_text())
    record["AtoB"]["target_psnr"] = -1.0
    record["trained"] = "2020-01-31"   # as if trained long ago: the report must say so, not today's date
    saved.write_text(json.dumps(record))
    assert shapes_benchmark.main(argv + ["--rescore"]) == 0
    rescored = json.loads(saved.read_text())
    assert rescored["AtoB"]["target_psnr"] == first["AtoB"]["target_psnr"] and rescored["steps"] == 1
    assert 0 <= rescored["AtoB"]["shape_change_score"] <= 1
    assert rescored["trained"] == "2020-01-31"
    today = time.strftime("%Y-%m-%d")
    assert f"Trained 2020-01-31, {today} at commit" in out.read_text()   # seed 0 rescored, the others trained now

    # --reuse where only the metrics came back (rows measured on another machine): the figure drawn there stays
    import shutil

    shutil.rmtree(tmp_path / "work" / "results")
    for saved in (tmp_path / "work" / "logs").glob("*_metrics.json"):
        saved.write_text(json.dumps({**json.loads(saved.read_text()), "machine": "NVIDIA H200 (CUDA 13.0)"}))
    assert shapes_benchmark.main(argv + ["--reuse"]) == 0
    assert "Machine: NVIDIA H200 (CUDA 13.0). Trained" in out.read_text()  # the rows' machine, not this one
    with Image.open(out.with_suffix(".png")) as figure:
        assert figure.size == (6 * 32 * 2, 16 + 3 * 32 * 2)


def test_machine_line_names_the_gpu_the_rows_trained_on(monkeypatch):
    """train.py trains on the first GPU when there is one, so the report must not call such rows 'CPU only'."""
    import torch

    from scripts import shapes_benchmark

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert shapes_benchmark.machine().endswith("CPU only")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H200")
    line = shapes_benchmark.machine()
    assert line.startswith("NVIDIA H200 (CUDA ")
    assert "CPU only" not in line


def test_report_command_reproduces_every_option_that_shapes_the_report():
    """The command in the report, run again, must train the same rows at the same size into the same files
    (a GPU report once printed no --size and would have retrained at 64 px over docs/shapes_benchmark.md)."""
    import shlex

    from scripts.shapes_benchmark import REPRODUCED, ROOT, parse_args, reproduce_command

    argv = ["--minutes", "2.0", "--size", "128", "--dataroot", "./datasets/shapes_128", "--seeds", "0",
            "--nets", "--ngf 64 --ndf 64 --n_blocks_G 9", "--rows", "instagan", "cyclegan", "instagan_compose",
            "--seeded_rows", "instagan_compose", "--num_test", "50", "--reuse_report", "docs/shapes_benchmark.md",
            "--workdir", "./checkpoints/gpu", "--out", str(ROOT / "docs" / "shapes_benchmark_gpu.md")]
    args = parse_args(argv)
    words = shlex.split(reproduce_command(args))
    assert words[:3] == ["python", "-m", "scripts.shapes_benchmark"]
    again = parse_args(words[3:])
    assert again.out == "docs/shapes_benchmark_gpu.md"
    for name in REPRODUCED:
        if name != "out":
            assert getattr(again, name) == getattr(args, name), name


def test_seeded_rows_run_every_seed_and_other_option_rows_the_first(monkeypatch):
    """A variant compared with the baseline over seeds must get every seed, not silently only the first."""
    from scripts.shapes_benchmark import DIRECTIONS, benchmark_row, parse_args

    def fake_run(row, seed, args):
        return {"row": row, "seed": seed, **{d: {"target_psnr": float(seed)} for d in DIRECTIONS}}

    monkeypatch.setattr(shapes_benchmark, "benchmark_run", fake_run)
    args = parse_args(["--task", "style", "--seeds", "3", "4", "--seeded_rows", "opgan_nce_fine"])
    seeds = {row: [run["seed"] for run in benchmark_row(row, args)["runs"]]
             for row in ("cyclegan", "opgan_nce_fine", "opgan_nce_fine_ss2")}
    assert seeds == {"cyclegan": [3, 4], "opgan_nce_fine": [3, 4], "opgan_nce_fine_ss2": [3]}


def test_report_names_seeds_as_a_sentence_does():
    from scripts.shapes_benchmark import spoken_list

    assert [spoken_list(seeds) for seeds in ([3], [0, 1], [0, 1, 2, 3])] == ["3", "0 and 1", "0, 1, 2 and 3"]


def test_style_task_has_its_own_data_rows_and_files():
    """--task style (OP-GAN's benchmark) must never train into, or write over, the shapes benchmark's files."""
    import shlex

    from scripts.shapes_benchmark import ROOT, parse_args, reproduce_command

    args = parse_args(["--task", "style", "--minutes", "6"])
    assert args.rows == ["opgan", "cyclegan", "opgan_registration", "opgan_classification"]
    assert args.dataroot == "./datasets/shapes_style_64" and args.workdir == "./checkpoints/style_benchmark"
    assert args.out == str(ROOT / "docs" / "style_benchmark.md")
    again = parse_args(shlex.split(reproduce_command(args))[3:])
    assert (again.task, again.rows, again.dataroot, again.workdir) == ("style", args.rows, args.dataroot, args.workdir)
    assert parse_args([]).rows[:2] == ["instagan", "cyclegan"]


def test_every_task_has_its_own_files_a_figure_row_it_runs_and_data_flags_the_generator_accepts():
    """Two tasks sharing a dataroot or workdir would reuse each other's data and rows without a word."""
    import shlex

    from datasets.make_shapes_dataset import parse_args as dataset_args
    from scripts.shapes_benchmark import TASKS, parse_args

    parsed = {task: parse_args(["--task", task]) for task in TASKS}
    for field in ("dataroot", "workdir", "out"):
        assert len({getattr(args, field) for args in parsed.values()}) == len(TASKS), field
    for name, task in TASKS.items():
        assert task.figure_row in task.default_rows, name
        assert dataset_args(shlex.split(task.make_flags) + ["--out", task.dataroot]).out == task.dataroot
    skewed = dataset_args(shlex.split(TASKS["style_skew"].make_flags))
    assert skewed.style and skewed.kind_skew == 0.9
    assert dataset_args(shlex.split(TASKS["style_hue0"].make_flags)).night_hue_shift == 0


def test_style_tables_add_the_hue_kept_reference_where_the_rule_turns_hues(tmp_path):
    from datasets.shapes_style import hue_kept_references, make_style_shapes_dataset
    from scripts.shapes_benchmark import HUE_KEPT_LABEL, TASKS, task_references

    make_style_shapes_dataset(tmp_path / "style", seed=1, size=32, n_train=2, n_test=3)
    for direction in ("AtoB", "BtoA"):
        references = task_references(TASKS["style"], str(tmp_path / "style"), direction)
        assert references == [(HUE_KEPT_LABEL, hue_kept_references(tmp_path / "style", direction[0]))]
        assert references[0][1]["target_psnr"] < float("inf")
        assert task_references(TASKS["style_hue0"], str(tmp_path / "style"), direction) == []
    rows = shapes_benchmark.reference_rows({}, references)
    assert rows[-1].startswith(f"| *{HUE_KEPT_LABEL}* |")
    assert f"| {references[0][1]['target_psnr']:.2f} |" in rows[-1]


def test_every_row_trains_with_flags_train_py_accepts_and_has_a_label():
    """A row naming a flag its model lacks (or a misspelt value) would only fail after the rows before it trained."""
    import shlex

    from options.train_options import TrainOptions
    from scripts.shapes_benchmark import LABELS, ROWS, commands, parse_args

    args = parse_args(["--seeds", "0"])
    parsed = {}
    for row, (model, norm, _) in ROWS.items():
        assert LABELS.get(row), row
        train, _ = commands(row, 0, args)
        parsed[row] = TrainOptions().parse(shlex.split(train)[2:], save=False, show=False)
        assert (parsed[row].model, parsed[row].norm) == (model, norm), row
    vanilla = parsed["instagan_batch_norm_vanilla_ctx3_idt5_idtmask0.2_one_step"]
    assert (vanilla.gan_mode, vanilla.ins_per, vanilla.ins_max) == ("vanilla", 4, 4)


def test_a_run_records_the_commit_and_day_it_trained_on(monkeypatch, tmp_path):
    head = {"commit": "aaa1111"}

    def train_while_a_commit_lands(command: str, log) -> None:
        head["commit"] = "bbb2222"

    monkeypatch.setattr(shapes_benchmark, "git_commit", lambda: head["commit"])
    monkeypatch.setattr(shapes_benchmark, "run", train_while_a_commit_lands)
    monkeypatch.setattr(shapes_benchmark, "steps_done", lambda workdir, name: 5)
    monkeypatch.setattr(shapes_benchmark, "score_run", lambda record, results, args: None)
    args = shapes_benchmark.parse_args(["--workdir", str(tmp_path), "--steps", "5", "--size", "32"])
    record = shapes_benchmark.benchmark_run("cyclegan", 0, args)
    assert record["commit"] == "aaa1111" and record["trained"] == time.strftime("%Y-%m-%d")


def test_reuse_report_takes_the_runs_a_report_recorded_and_trains_only_the_others(monkeypatch, tmp_path):
    """A variant joins a committed table from a fresh clone: the report's runs are taken as recorded (never
    retrained), the new row trains, the report says which runs came from where, and a recorded run that trained
    with other options is refused, not silently mixed in."""
    earlier = shapes_benchmark.parse_args(["--task", "style", "--workdir", str(tmp_path / "old")])
    recorded = [{"row": "cyclegan", "seed": seed, "train_command": shapes_benchmark.commands("cyclegan", seed,
                                                                                             earlier)[0],
                 "machine": "elsewhere", **{d: {"target_psnr": 20.0 + seed} for d in shapes_benchmark.DIRECTIONS}}
                for seed in (0, 1)]
    report = tmp_path / "docs" / "style_benchmark.md"
    report.parent.mkdir()
    report.with_suffix(".json").write_text(json.dumps([{"row": "cyclegan", "runs": recorded}]))
    trained = []
    monkeypatch.setattr(shapes_benchmark, "run", lambda command, log: trained.append(command))
    monkeypatch.setattr(shapes_benchmark, "steps_done", lambda workdir, name: 5)
    monkeypatch.setattr(shapes_benchmark, "score_run", lambda record, results, args: record.update(
        {d: {"target_psnr": 25.0} for d in shapes_benchmark.DIRECTIONS}))
    argv = ["--task", "style", "--workdir", str(tmp_path / "new"), "--seeds", "0", "1", "--reuse_report", str(report)]
    args = shapes_benchmark.parse_args(argv)
    results = [shapes_benchmark.benchmark_row(row, args) for row in ("cyclegan", "opgan")]
    assert [run["AtoB"]["target_psnr"] for run in results[0]["runs"]] == [20.0, 21.0]
    assert [run["machine"] for run in results[0]["runs"]] == ["elsewhere", "elsewhere"]
    assert len(trained) == 4 and all("shapes_opgan_seed" in command for command in trained)   # train, test x2
    taken = f"Taken as recorded in `{report.with_suffix('.json')}`: CycleGAN, seeds 0 and 1."
    assert shapes_benchmark.taken_from_text(results) == ["", taken]
    assert f"--reuse_report {report}" in shapes_benchmark.reproduce_command(args)

    other_budget = shapes_benchmark.parse_args(argv + ["--minutes", "5"])
    with pytest.raises(SystemExit, match="style_benchmark.json records cyclegan seed 0 trained with"):
        shapes_benchmark.benchmark_row("cyclegan", other_budget)
    missing = shapes_benchmark.parse_args(argv[:-1] + [str(tmp_path / "none.md")])
    with pytest.raises(SystemExit, match="none.json does not exist"):
        shapes_benchmark.benchmark_row("cyclegan", missing)
