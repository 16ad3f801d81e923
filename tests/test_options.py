"""Option parsing: the authors' flags, the model/dataset hooks, saved option files and clear errors."""

import json
import math
import shlex

import pytest

import data
from options.base_options import OptionsError, save_options_text
from options.test_options import TestOptions
from options.train_options import TrainOptions

AUTHORS_TRAIN = ("--dataroot {root} --model insta_gan --name pants2skirt_mhp_instagan --loadSizeH 270 "
                 "--loadSizeW 180 --fineSizeH 240 --fineSizeW 160")
AUTHORS_TEST = ("--dataroot {root} --model insta_gan --name pants2skirt_mhp_instagan --loadSizeH 240 "
                "--loadSizeW 160 --fineSizeH 240 --fineSizeW 160 --ins_per 2 --ins_max 20")


def parse(cls, text: str, tmp_path, save: bool = False):
    argv = ["--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1"] + shlex.split(text)
    return cls().parse(argv, save=save)


def error_of(cls, text: str, tmp_path) -> str:
    with pytest.raises(SystemExit) as info:
        parse(cls, text, tmp_path)
    assert isinstance(info.value, OptionsError) or info.value.code == 2
    return str(info.value.code if not isinstance(info.value, OptionsError) else info.value)


def test_authors_train_command_parses(tmp_path):
    opt = parse(TrainOptions, AUTHORS_TRAIN.format(root=tmp_path), tmp_path)
    assert (opt.load_size_h, opt.load_size_w, opt.crop_size_h, opt.crop_size_w) == (270, 180, 240, 160)
    assert opt.model == "insta_gan" and opt.dataset_mode == "unaligned_seg" and opt.isTrain
    assert (opt.ins_max, opt.ins_per, opt.set_order) == (4, 2, "decreasing")
    assert (opt.lambda_A, opt.lambda_B, opt.lambda_idt, opt.lambda_ctx) == (10.0, 10.0, 1.0, 1.0)
    assert (opt.lr, opt.beta1, opt.niter, opt.niter_decay, opt.pool_size) == (0.0002, 0.5, 100, 100, 50)


def test_authors_test_command_parses(tmp_path):
    opt = parse(TestOptions, AUTHORS_TEST.format(root=tmp_path), tmp_path)
    assert (opt.ins_max, opt.ins_per, opt.crop_size_w) == (20, 2, 160)
    assert opt.dataset_mode == "single_seg" and not opt.isTrain
    assert opt.serial_batches and opt.no_flip and opt.display_id == 0


def test_modern_and_authors_spellings_are_the_same_option(tmp_path):
    old = parse(TrainOptions, "--loadSizeH 300 --fineSizeW 64 --no_lsgan --niter 3", tmp_path)
    new = parse(TrainOptions, "--load_size_h 300 --crop_size_w 64 --gan_mode vanilla --n_epochs 3", tmp_path)
    for key in ("load_size_h", "crop_size_w", "gan_mode", "niter"):
        assert getattr(old, key) == getattr(new, key)
    both = parse(TrainOptions, "--load_size 72 --crop_size 64", tmp_path)
    assert (both.load_size_h, both.load_size_w, both.crop_size_h, both.crop_size_w) == (72, 72, 64, 64)


def test_model_hook_adds_its_options_only_for_that_model(tmp_path):
    opt = parse(TrainOptions, "--model cycle_gan", tmp_path)
    assert opt.dataset_mode == "unaligned" and not hasattr(opt, "ins_max")
    assert not hasattr(parse(TestOptions, "--model insta_gan", tmp_path), "lambda_ctx")


def test_options_file_marks_non_default_values(tmp_path):
    opt = parse(TrainOptions, "--name exp --ngf 16 --ins_max 6 --ins_per 3", tmp_path, save=True)
    text = (tmp_path / "ck" / "exp" / "train_opt.txt").read_text()
    ngf_line = next(line for line in text.splitlines() if line.strip().startswith("ngf:"))
    ndf_line = next(line for line in text.splitlines() if line.strip().startswith("ndf:"))
    assert "[default: 64]" in ngf_line and "16" in ngf_line
    assert "default" not in ndf_line
    assert opt.ins_per == 3


@pytest.mark.parametrize("text, words", [
    ("--load_size 64 --crop_size 72", ["--crop_size_h 72", "--load_size_h 64"]),
    ("--ins_max 5 --ins_per 2", ["--ins_per 2", "--ins_max 5"]),
    ("--model no_such_model", ["no_such_model", "insta_gan", "cycle_gan"]),
    ("--dataset_mode no_such_mode", ["no_such_mode", "unaligned_seg"]),
    ("--lambda_ctx -1", ["--lambda_ctx"]),
    ("--batch_size 0", ["--batch_size"]),
    ("--ins_max 30", ["--max_instances"]),
    ("--crop_size 62 --load_size 70", ["multiple of 4"]),
    ("--gpu_ids 7", ["GPU 7", "--gpu_ids -1"]),
])
def test_invalid_combinations_fail_at_parse_time_naming_the_option(tmp_path, text, words):
    message = error_of(TrainOptions, text, tmp_path)
    for word in words:
        assert word in message, message


def test_unknown_flag_is_rejected(tmp_path):
    with pytest.raises(SystemExit):
        parse(TrainOptions, "--no_such_flag 3", tmp_path)


# ---------------------------------------------------------------------------------------------- --help
def help_of(cls, text: str, tmp_path, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        parse(cls, text + " --help", tmp_path)
    assert info.value.code == 0
    return capsys.readouterr().out


def test_train_help_lists_the_models_and_the_datasets_options(tmp_path, capsys, monkeypatch):
    real_setter = data.get_option_setter

    def with_probe(name):
        def hook(parser, is_train):
            parser = real_setter(name)(parser, is_train)
            parser.add_argument("--probe_dataset_option", help="added by the dataset's hook")
            return parser
        return hook

    monkeypatch.setattr(data, "get_option_setter", with_probe)
    out = help_of(TrainOptions, "--model insta_gan", tmp_path, capsys)
    for flag in ("--ins_max", "--ins_per", "--lambda_ctx", "--probe_dataset_option", "--ngf", "--lr"):
        assert flag in out, flag
    out = help_of(TrainOptions, "--model cycle_gan", tmp_path, capsys)
    assert "--lambda_idt" in out and "--ins_max" not in out


def test_test_help_lists_the_models_options(tmp_path, capsys):
    out = help_of(TestOptions, "--model insta_gan", tmp_path, capsys)
    assert "--ins_max" in out and "--num_test" in out and "--lambda_ctx" not in out


# ---------------------------------------------------------------------------------------------- train_opt.json
TRAINED = ("--name exp --dataroot {root} --model insta_gan --ngf 16 --n_blocks_G 2 --norm batch --load_size_h 72 "
           "--load_size_w 80 --crop_size 64 --ins_max 2 --ins_per 1 --direction BtoA --batch_size 3")


def train_run(tmp_path, text: str = TRAINED) -> dict:
    """Parse a training command and write its option files as train.py does; returns train_opt.json."""
    options = TrainOptions()
    argv = ["--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1"] + shlex.split(text.format(root=tmp_path))
    opt = options.parse(argv, save=False, show=False)
    save_options_text(opt, options.text, options.argv)
    return json.loads((tmp_path / "ck" / opt.name / "train_opt.json").read_text())


def test_training_writes_every_option_and_its_command_line_as_strict_json(tmp_path):
    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    saved = train_run(tmp_path)
    text = (tmp_path / "ck" / "exp" / "train_opt.json").read_text()
    json.loads(text, parse_constant=no_constants)  # readable by any JSON reader, not just Python's
    assert (saved["ngf"], saved["ins_per"], saved["direction"], saved["batch_size"]) == (16, 1, "BtoA", 3)
    assert saved["max_dataset_size"] == "inf" and float(saved["max_dataset_size"]) == math.inf
    assert saved["argv"][-2:] == ["--batch_size", "3"] and "--ngf" in saved["argv"]
    assert (tmp_path / "ck" / "exp" / "train_opt.txt").is_file()


def test_test_options_default_to_the_trained_architecture(tmp_path, capsys):
    train_run(tmp_path)
    opt = parse(TestOptions, "--name exp", tmp_path)
    assert (opt.model, opt.ngf, opt.n_blocks_G, opt.norm, opt.ins_per) == ("insta_gan", 16, 2, "batch", 1)
    assert (opt.load_size_h, opt.load_size_w, opt.crop_size_h, opt.crop_size_w) == (72, 80, 64, 64)
    assert opt.dataroot == str(tmp_path)
    assert "train_opt.json" in capsys.readouterr().out
    # this run's own choices are not inherited
    assert (opt.ins_max, opt.batch_size, opt.phase, opt.num_threads) == (4, 1, "test", 0)


def test_flags_on_the_test_command_line_win(tmp_path):
    train_run(tmp_path)
    opt = parse(TestOptions, "--name exp --ngf 32 --ins_max 20 --load_size 64", tmp_path)
    assert (opt.ngf, opt.ins_max, opt.load_size_h, opt.load_size_w, opt.n_blocks_G) == (32, 20, 64, 64, 2)


def test_the_trained_model_is_chosen_before_its_options_are_added(tmp_path):
    train_run(tmp_path, "--name cyc --model cycle_gan --ngf 8 --lambda_idt 0")
    opt = parse(TestOptions, "--name cyc", tmp_path)
    assert opt.model == "cycle_gan" and opt.ngf == 8 and not hasattr(opt, "ins_max")
    assert not hasattr(opt, "lambda_idt")  # a training-only option


def test_directions_at_test_time(tmp_path):
    train_run(tmp_path)
    opt = parse(TestOptions, "--name exp", tmp_path)
    assert opt.train_direction == "BtoA" and opt.direction is None  # None: translate both folders
    assert parse(TestOptions, "--name exp --direction AtoB", tmp_path).direction == "AtoB"


def test_without_a_training_file_the_defaults_are_todays(tmp_path, capsys):
    opt = parse(TestOptions, "--name never_trained", tmp_path)
    assert (opt.model, opt.ngf, opt.n_blocks_G, opt.norm, opt.load_size_h) == ("insta_gan", 64, 9, "instance", 286)
    assert opt.train_direction == "AtoB" and opt.direction is None
    assert "train_opt.json" not in capsys.readouterr().out


def write_training_file(tmp_path, text: str) -> None:
    folder = tmp_path / "ck" / "exp"
    folder.mkdir(parents=True)
    (folder / "train_opt.json").write_text(text)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_malformed_training_file_names_the_file_and_the_fix(tmp_path, text):
    write_training_file(tmp_path, text)
    message = error_of(TestOptions, "--name exp", tmp_path)
    assert "train_opt.json" in message and "delete" in message and "--ignore_train_opt" in message
    assert parse(TestOptions, "--name exp --ignore_train_opt", tmp_path).ngf == 64


def test_invalid_values_in_the_training_file_fail_as_on_the_command_line(tmp_path):
    write_training_file(tmp_path, json.dumps({"model": "insta_gan", "norm": "weird", "ngf": 0}))
    message = error_of(TestOptions, "--name exp --ngf 8", tmp_path)
    assert "train_opt.json" in message and "--norm" in message and "weird" in message
    message = error_of(TestOptions, "--name exp --norm instance", tmp_path)
    assert "--ngf must be at least 1" in message and "train_opt.json" in message
    opt = parse(TestOptions, "--name exp --norm instance --ngf 8", tmp_path)  # flags replace the bad values
    assert (opt.norm, opt.ngf) == ("instance", 8)


def test_validation_touches_no_files(tmp_path):
    opt = parse(TrainOptions, f"--name exp --dataroot {tmp_path / 'missing'}", tmp_path)
    assert opt.dataroot.endswith("missing") and not (tmp_path / "ck").exists()


def test_testing_on_the_train_split_keeps_the_training_option_files(tmp_path):
    train_run(tmp_path)
    before = {name: (tmp_path / "ck" / "exp" / name).read_text() for name in ("train_opt.txt", "train_opt.json")}
    parse(TestOptions, "--name exp --phase train", tmp_path, save=True)
    for name, text in before.items():
        assert (tmp_path / "ck" / "exp" / name).read_text() == text
    assert (tmp_path / "ck" / "exp" / "test_opt.txt").is_file()
