"""pix2pixHD as a model of the framework: its input, losses, the coarse-to-fine schedule, the feature encoder
and resume (tiny CPU networks; the networks' own tests are in tests/test_hd_networks.py)."""

import shlex

import numpy as np
import pytest
import torch
import torchvision

from models import create_model
from options.base_options import OptionsError
from options.train_options import TrainOptions

TINY = ("--model pix2pixhd --dataset_mode aligned --label_nc 3 --ngf 4 --ndf 4 --n_layers_D 2 --num_D 2 "
        "--n_downsample_global 2 --n_blocks_global 1 --n_blocks_local 1 --nef 4 --n_downsample_E 2 "
        "--load_size 32 --crop_size 32 --gpu_ids -1")


def make_model(tmp_path, extra: str = ""):
    argv = shlex.split(f"{TINY} --checkpoints_dir {tmp_path} --name hd {extra}")
    return create_model(TrainOptions().parse(argv, save=False))


def batch() -> dict:
    torch.manual_seed(0)
    label = torch.zeros(2, 1, 32, 32, dtype=torch.int64)
    label[:, :, 4:14, 4:20] = 1
    label[:, :, 16:30, 8:28] = 2
    inst = torch.zeros_like(label)
    inst[:, :, 4:14, 4:12], inst[:, :, 4:14, 12:20], inst[:, :, 16:30, 8:28] = 1, 2, 3
    return {"label": label, "inst": inst, "image": torch.rand(2, 3, 32, 32) * 2 - 1, "paths": ["a.png", "b.png"]}


def weights(net: torch.nn.Module) -> dict:
    return {name: p.detach().clone() for name, p in net.named_parameters()}


def changed(before: dict, net: torch.nn.Module) -> set:
    return {name for name, p in net.named_parameters() if not torch.equal(before[name], p)}


def test_global_generator_sees_labels_and_boundaries_and_d_sees_the_pair(tmp_path):
    model = make_model(tmp_path)
    model.set_input(batch())
    assert model.label_input.shape[1] == 4                       # 3 one-hot planes + the boundary map
    assert next(model.netG.parameters()).shape[1] == 4
    assert model.netD.scale_blocks(0)[0][0].in_channels == 7     # the label input beside the image
    with torch.no_grad():   # D's real term: D before its own step on (labels, real image), halved
        expected_d_real = 0.5 * model.criterion_gan(model.netD(torch.cat([model.label_input, model.real_B], 1)),
                                                    True).item()
    model.optimize_parameters()
    assert model.get_current_losses()["D_real"] == pytest.approx(expected_d_real, rel=1e-5)
    losses = model.get_current_losses()
    assert list(losses) == ["G_GAN", "G_GAN_Feat", "D_real", "D_fake"]   # no VGG without --vgg_weights
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert losses["G_GAN_Feat"] > 0
    without = make_model(tmp_path, "--no_ganFeat_loss --no_instance")
    assert "G_GAN_Feat" not in without.loss_names and next(without.netG.parameters()).shape[1] == 3


def test_local_enhancer_trains_alone_for_niter_fix_global_epochs_then_everything(tmp_path):
    model = make_model(tmp_path, "--netG local --niter_fix_global 1")
    model.set_input(batch())
    before = weights(model.netG)
    model.optimize_parameters()
    moved = changed(before, model.netG)
    global_names = {name for name, p in model.netG.named_parameters()
                    if any(p is q for q in model.netG.global_parameters())}
    assert moved and not moved & global_names                     # only the enhancer learnt
    state = model.extra_state()
    model.update_learning_rate()                                  # end of epoch 1 = --niter_fix_global
    before = weights(model.netG)
    model.optimize_parameters()
    assert changed(before, model.netG) & global_names             # now the global generator learns too

    resumed = make_model(tmp_path, "--netG local --niter_fix_global 1")
    resumed.load_extra_state(state)                               # resuming inside the fixed phase keeps it
    assert all(not p.requires_grad for p in resumed.netG.global_parameters())


def test_feature_encoder_gives_one_style_per_instance_and_learns_with_g(tmp_path):
    model = make_model(tmp_path, "--instance_feat")
    assert next(model.netG.parameters()).shape[1] == 4 + 3
    model.set_input(batch())
    before = weights(model.netE)
    model.optimize_parameters()
    feat, inst = model.feat.detach(), model.inst
    for sample in range(2):
        for instance in inst[sample].unique():
            inside = feat[sample][:, inst[sample, 0] == instance]
            assert torch.allclose(inside, inside[:, :1].expand_as(inside), atol=1e-6)
    assert changed(before, model.netE)                             # E is trained jointly with G
    assert "feat" in model.visual_names
    with pytest.raises(OptionsError, match="--no_instance"):
        make_model(tmp_path, "--instance_feat --no_instance")


def test_vgg_loss_from_a_local_weights_file(tmp_path):
    path = tmp_path / "vgg19.pth"
    torch.save(torchvision.models.vgg19(weights=None).state_dict(), path)
    model = make_model(tmp_path, f"--vgg_weights {path}")
    model.set_input(batch())
    model.optimize_parameters()
    assert model.get_current_losses()["G_VGG"] > 0
    assert all(not p.requires_grad for p in model.criterion_vgg.parameters())


def test_crop_sizes_the_networks_cannot_take_are_refused(tmp_path):
    with pytest.raises(OptionsError, match="divisible by 8"):
        make_model(tmp_path, "--load_size 36 --crop_size 36 --n_downsample_global 3")
    with pytest.raises(OptionsError, match="divisible by 16"):   # one enhancer halves the input once more
        make_model(tmp_path, "--netG local --load_size 40 --crop_size 40 --n_downsample_global 3")


def test_kmeans_styles_per_label_and_the_style_map():
    from models.instance_styles import cluster_per_label, instance_features, style_feature_map

    inst = torch.tensor([[[[1, 1, 2, 2], [3, 3, 4, 4]]]])
    label = torch.tensor([[[[1, 1, 1, 1], [2, 2, 2, 2]]]])
    feat = torch.zeros(1, 2, 2, 4)
    feat[0, :, 0, :2], feat[0, :, 0, 2:] = 0.5, -0.5          # two instances of label 1, two looks
    feat[0, :, 1, :] = 0.25                                     # both instances of label 2 look alike
    samples = instance_features(feat, inst, label)
    assert sorted(label_id for label_id, _ in samples) == [1, 1, 2, 2]
    centres = cluster_per_label(samples, n_clusters=5)
    assert len(centres[1]) == 2 and len(centres[2]) == 1        # never more centres than distinct looks
    assert sorted(centres[1][:, 0].tolist()) == [-0.5, 0.5]
    first = style_feature_map(inst, label, centres, lambda label_id, count: 0)
    second = style_feature_map(inst, label, centres, lambda label_id, count: 1)
    assert torch.equal(first[0, :, 0, 0], first[0, :, 0, 3])   # one style: every label-1 instance alike
    assert not torch.equal(first[0, :, 0], second[0, :, 0])     # another style changes label 1's objects
    assert torch.equal(first[0, :, 1], second[0, :, 1])         # label 2 has one look only


def test_train_cluster_and_test_in_several_styles_end_to_end(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    root = Path(__file__).resolve().parents[1]

    def run(*args: str) -> None:
        done = subprocess.run([sys.executable, *args], check=False, cwd=root, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]

    data, ck = tmp_path / "paired", tmp_path / "ck"
    run("-m", "datasets.make_shapes_dataset", "--paired", "--out", str(data), "--size", "32", "--n_train", "6",
        "--n_test", "2")
    tiny = TINY.replace("--model pix2pixhd --dataset_mode aligned ", "").split()
    run("train.py", "--model", "pix2pixhd", "--dataroot", str(data), "--name", "hd", "--checkpoints_dir", str(ck),
        *tiny, "--instance_feat", "--max_steps", "3", "--batch_size", "2", "--display_id", "0", "--num_threads", "0")
    run("-m", "scripts.cluster_features", "--name", "hd", "--checkpoints_dir", str(ck), "--n_clusters", "3",
        "--gpu_ids", "-1")
    assert (ck / "hd" / "features_clustered.pt").is_file()
    run("test.py", "--name", "hd", "--checkpoints_dir", str(ck), "--results_dir", str(tmp_path / "res"),
        "--n_styles", "3", "--gpu_ids", "-1")
    images = tmp_path / "res" / "hd" / "test_latest" / "images"
    styles = [np.asarray(Image.open(images / f"00000_{name}.png"))
              for name in ("fake_B", "fake_B_style1", "fake_B_style2")]
    assert styles[0].shape == (32, 32, 3)
    assert not np.array_equal(styles[0], styles[1]) and not np.array_equal(styles[1], styles[2])
