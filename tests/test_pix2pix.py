"""pix2pix: the U-Net and conditional PatchGAN as the CycleGAN code base builds them, its losses and its input
(image pairs, or label maps with instance boundaries), trained and tested end to end on tiny data."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import create_model, networks
from models.label_input import colorize_labels
from options.train_options import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
TINY = "--ngf 4 --ndf 4 --n_layers_D 2 --load_size 32 --crop_size 32 --gpu_ids -1"


def make_opt(tmp_path, extra: str = ""):
    argv = shlex.split(f"--model pix2pix {TINY} --checkpoints_dir {tmp_path} --name p {extra}")
    return TrainOptions().parse(argv, save=False)


def test_unet_and_patchgan_have_the_pix2pix_parameter_counts():
    # unet_256 with batch norm, 3 -> 3 channels: 8 levels, summed layer by layer from the CycleGAN code base's
    # UnetSkipConnectionBlock (convolutions without bias under batch norm, the outermost ConvTranspose with one)
    unet = networks.define_G("unet", 3, 3, 64, norm="batch", num_downs=8, dropout=True)
    assert networks.count_parameters(unet) == 54_413_955
    patch = networks.define_D("patch", 6, 64, 3, "batch", spectral_norm=False, init_D="same_as_G")
    assert networks.count_parameters(patch) == 2_768_705   # pix2pix's D on (input, image) pairs


def test_unet_depth_follows_the_crop_size():
    assert networks.unet_depth(256, 256) == 8 and networks.unet_depth(64, 64) == 6
    assert networks.unet_depth(64, 128) == 6   # the shorter side reaches 1 px, the longer 2 px
    with pytest.raises(ValueError, match="--num_downs"):
        networks.unet_depth(48, 48)
    unet = networks.define_G("unet", 3, 3, 4, norm="batch", num_downs=networks.unet_depth(32, 64))
    assert unet(torch.rand(2, 3, 32, 64)).shape == (2, 3, 32, 64)


def test_dropout_is_the_only_randomness_and_no_dropout_removes_it():
    torch.manual_seed(0)
    unet = networks.define_G("unet", 3, 3, 4, norm="batch", num_downs=6, dropout=True).eval()
    x = torch.rand(1, 3, 64, 64)
    unet.model.train()   # pix2pix keeps dropout on at test time without --eval: two calls differ
    assert not torch.equal(unet(x), unet(x))
    plain = networks.define_G("unet", 3, 3, 4, norm="none", num_downs=6, dropout=False)
    assert torch.equal(plain(x), plain(x))


def test_pix2pix_losses_and_a_pair_it_learns(tmp_path):
    torch.manual_seed(0)
    model = create_model(make_opt(tmp_path, "--norm instance --no_dropout --lr 0.002"))
    assert model.opt.num_downs == 5 and model.opt.gan_mode == "vanilla"
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    model.set_input({"A": a, "B": -a, "A_paths": ["pair.png"], "B_paths": ["pair.png"]})
    with torch.no_grad():
        model.forward()
        before = torch.nn.functional.l1_loss(model.fake_B, model.real_B).item()
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert set(losses) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    assert losses["G_L1"] == pytest.approx(100 * before, rel=1e-5)   # lambda_L1 = 100, on G before its step
    for _ in range(30):
        model.optimize_parameters()
    with torch.no_grad():
        model.forward()
        after = torch.nn.functional.l1_loss(model.fake_B, model.real_B).item()
    assert after < 0.85 * before   # the L1 term pulls G towards the real image of the pair
    assert next(model.netD.parameters()).shape[1] == 6   # D is conditional: the input beside the image


def aligned_batch(label_nc: int = 3) -> dict:
    label = torch.zeros(2, 1, 32, 32, dtype=torch.int64)
    label[:, :, 4:14, 4:20] = 1
    label[:, :, 16:30, 8:28] = 2
    inst = torch.zeros_like(label)
    inst[:, :, 4:14, 4:12], inst[:, :, 4:14, 12:20] = 1, 2   # two touching objects of class 1
    inst[:, :, 16:30, 8:28] = 3
    return {"label": label, "inst": inst, "image": torch.rand(2, 3, 32, 32) * 2 - 1, "paths": ["a.png", "b.png"]}


def test_label_maps_become_one_hot_planes_with_the_boundary_map(tmp_path):
    model = create_model(make_opt(tmp_path, "--dataset_mode aligned --label_nc 3"))
    batch = aligned_batch()
    model.set_input(batch)
    assert model.net_input.shape == (2, 4, 32, 32)                        # 3 one-hot planes + boundary
    assert torch.equal(model.net_input[:, :3].argmax(1, keepdim=True), batch["label"])
    boundary = model.net_input[:, 3]
    assert boundary[0, 8, 11] == 1 and boundary[0, 8, 12] == 1           # both sides of the touching pair
    assert boundary[0, 8, 6] == -1                                        # inside an object
    assert next(model.netG.parameters()).shape[1] == 4 and next(model.netD.parameters()).shape[1] == 7
    assert set(model.visual_names) == {"real_A", "boundary", "fake_B", "real_B"}
    model.optimize_parameters()
    assert all(np.isfinite(v) for v in model.get_current_losses().values())

    without = create_model(make_opt(tmp_path, "--dataset_mode aligned --label_nc 3 --no_instance"))
    without.set_input({k: v for k, v in batch.items() if k != "inst"})
    assert without.net_input.shape[1] == 3 and "boundary" not in without.visual_names
    with pytest.raises(ValueError, match="--no_instance"):
        model.set_input({k: v for k, v in batch.items() if k != "inst"})


def test_label_colours_are_distinct_and_background_is_black():
    label = torch.arange(12).view(1, 1, 3, 4)
    colours = colorize_labels(label, 12)[0].reshape(3, -1).T
    assert torch.equal(colours[0], torch.full((3,), -1.0))
    assert len({tuple(c.round(decimals=3).tolist()) for c in colours}) == 12


def write_ab_pairs(root: Path, phase: str, count: int) -> None:
    """Side-by-side 64x32 pairs: A a gradient, B its inverse (a mapping pix2pix can learn)."""
    folder = root / phase
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], 1)).save(folder / f"{i}.png")


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_train_and_test_end_to_end_on_side_by_side_pairs(tmp_path):
    data = tmp_path / "pairs"
    write_ab_pairs(data, "train", 4)
    write_ab_pairs(data, "test", 2)
    common = ["--model", "pix2pix", "--dataroot", str(data), "--name", "pairs", "--checkpoints_dir",
              str(tmp_path / "ck"), "--gpu_ids", "-1"]
    trained = run(["train.py", *common, *shlex.split(TINY.replace(" --gpu_ids -1", "")), "--max_steps", "3",
                   "--batch_size", "2", "--display_id", "0", "--num_threads", "0"])
    assert trained.returncode == 0, trained.stderr
    saved = json.loads((tmp_path / "ck" / "pairs" / "train_opt.json").read_text())
    assert saved["dataset_mode"] == "aligned_ab" and saved["num_downs"] == 5
    tested = run(["test.py", "--name", "pairs", "--checkpoints_dir", str(tmp_path / "ck"), "--results_dir",
                  str(tmp_path / "results"), "--num_threads", "0"])
    assert tested.returncode == 0, tested.stderr
    images = tmp_path / "results" / "pairs" / "test_latest" / "images"
    assert sorted(p.name for p in images.glob("*_fake_B.png")) == ["0_fake_B.png", "1_fake_B.png"]
    with Image.open(images / "0_fake_B.png") as fake:
        assert fake.size == (32, 32)
