"""OP-GAN: patches and pairs as the paper draws them, the two self-supervised tasks, S's place in the
alternating updates, CycleGAN exactly at --lambda_ss 0, and the errors for grids that do not fit."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from datasets.make_shapes_dataset import make_shapes_dataset
from models import create_model
from models.op_gan_model import (
    BOTH_A,
    BOTH_B,
    ONE_EACH,
    OpGanModel,
    PairDraw,
    from_grid,
    grid_patches,
    nce_registration_loss,
    pick,
    registration_loss,
)
from options.base_options import OptionsError
from options.train_options import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1 --load_size 32 --crop_size 32 "
        "--ss_nf 8 --ss_layers 2")


def make_model(tmp_path, extra: str = "") -> OpGanModel:
    argv = shlex.split(f"--model op_gan {TINY} --ss_grid 2 --checkpoints_dir {tmp_path} --name o {extra}")
    opt = TrainOptions().parse(argv, save=False, show=False)
    model = create_model(opt)
    model.setup(opt)
    return model


def set_images(model: OpGanModel, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    model.set_input({"A": torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1,
                     "B": torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1, "A_paths": ["a0", "a1"]})


def test_grid_patches_cut_row_by_row_and_join_back():
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    patches = grid_patches(images, 3)
    assert patches.shape == (2, 9, 3, 2, 2)
    assert torch.equal(patches[1, 5], images[1, :, 2:4, 4:6])          # row 1, column 2
    assert torch.equal(from_grid(patches, 3), images)
    chosen = pick(patches, torch.tensor([[5, 0], [8, 8]]))
    assert torch.equal(chosen[0], patches[0, 5]) and torch.equal(chosen[3], patches[1, 8])


def test_pair_classes_follow_where_the_patches_came_from():
    kind = torch.tensor([[0, 1, 2]])
    assert OpGanModel.pair_labels("A", kind).tolist() == [[BOTH_A, BOTH_B, ONE_EACH]]
    assert OpGanModel.pair_labels("B", kind).tolist() == [[BOTH_B, BOTH_A, ONE_EACH]]
    torch.manual_seed(0)
    draw = PairDraw.sample(64, 8, 9, torch.device("cpu"))
    cross = draw.kind == 2
    share = float((draw.first[cross] == draw.second[cross]).float().mean())
    assert 0.45 < share < 0.65     # half forced to one position, plus chance (1/9 of the rest)
    assert torch.equal(draw.registered(), cross & (draw.first == draw.second))


def test_registration_counts_only_same_position_source_translation_pairs(tmp_path):
    model = make_model(tmp_path)
    set_images(model)
    ones = torch.ones(2, 4, dtype=torch.long)
    other = torch.rand_like(model.real_A_img)
    elsewhere = PairDraw(kind=2 * ones, first=0 * ones, second=ones)       # one of each, other positions
    assert model.self_supervised_losses("A", other, elsewhere)[0] == 0
    same = PairDraw(kind=2 * ones, first=ones, second=ones)
    assert model.self_supervised_losses("A", model.real_A_img, same)[0] == 0   # identical content: maps agree
    assert model.self_supervised_losses("A", other, same)[0] > 0
    one_image = PairDraw(kind=0 * ones, first=ones, second=ones)             # both from the source
    assert model.self_supervised_losses("A", other, one_image)[0] == 0


def test_contrastive_registration_pushes_displaced_maps_apart(tmp_path):
    """Maps that ignore content score zero under the paper's registration, but not under the contrastive one,
    whose displaced pairs cost max(0, margin - MSE) until their maps differ by the margin."""
    kind = torch.tensor([[2, 2, 2, 0]])
    draw = PairDraw(kind=kind, first=torch.tensor([[0, 0, 1, 0]]), second=torch.tensor([[0, 1, 0, 1]]))
    flat = torch.full((4, 1, 8, 8), 0.5)
    assert registration_loss(flat, flat, draw, None) == 0
    assert registration_loss(flat, flat, draw, 0.1).item() == pytest.approx(0.1 * 2 / 4)   # two displaced pairs
    apart = flat.clone()
    apart[1:3] = 0.9                                       # displaced maps 0.4 apart: MSE 0.16 > margin
    assert registration_loss(flat, apart, draw, 0.1).item() == pytest.approx(0.0)
    apart[0] = 0.7                                         # the same-position pair now disagrees: MSE 0.04
    assert registration_loss(flat, apart, draw, 0.1).item() == pytest.approx(0.04 / 4)
    model = make_model(tmp_path, "--ss_registration contrastive --ss_margin 1")
    set_images(model)
    ones = torch.ones(2, 4, dtype=torch.long)
    elsewhere = PairDraw(kind=2 * ones, first=0 * ones, second=ones)
    assert model.self_supervised_losses("A", torch.rand_like(model.real_A_img), elsewhere)[0] > 0


def test_nce_registration_asks_each_translated_location_to_find_its_source_location(tmp_path):
    """Features that keep every location's identity score near zero, features whose locations are shuffled
    score high, and only same-position source/translation pairs count."""
    kind, first = torch.tensor([[2, 2, 1]]), torch.tensor([[0, 0, 1]])
    draw = PairDraw(kind=kind, first=first, second=torch.tensor([[0, 1, 1]]))     # pair 0 registered only
    places = torch.eye(16).reshape(16, 4, 4)[None].repeat(3, 1, 1, 1)             # one direction per location
    kept = nce_registration_loss(places, places.clone(), draw)
    shuffled = places.clone()
    shuffled[0] = places[0].flip(-1)                                                # the same, mirrored
    assert kept.item() < 1e-3 and nce_registration_loss(places, shuffled, draw) > 4   # about (1 / 0.07) / 3 pairs
    others = places.clone()
    others[1:] = torch.rand(2, 16, 4, 4)                                            # unregistered pairs change
    assert torch.allclose(nce_registration_loss(places, others, draw), kept)
    model = make_model(tmp_path, "--ss_registration nce")
    set_images(model)
    ones = torch.ones(2, 4, dtype=torch.long)
    same = PairDraw(kind=2 * ones, first=ones, second=ones)
    assert model.self_supervised_losses("A", torch.rand_like(model.real_A_img), same)[0] > 1   # ~log 16, no MSE
    update = next(model.training_updates())
    update.losses["ss_A"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.netG_A.parameters())


def test_tasks_option_keeps_one_task(tmp_path):
    draw = PairDraw(kind=torch.full((2, 4), 2), first=torch.ones(2, 4, dtype=torch.long),
                    second=torch.ones(2, 4, dtype=torch.long))
    for tasks, (reg_on, cls_on) in (("registration", (True, False)), ("classification", (False, True))):
        model = make_model(tmp_path / tasks, f"--ss_tasks {tasks}")
        set_images(model)
        reg, cls = model.self_supervised_losses("A", torch.rand_like(model.real_A_img), draw)
        assert (reg > 0) == reg_on and (cls > 0) == cls_on


def test_generators_learn_from_S_and_S_from_its_own_update(tmp_path):
    """L_s reaches G in G's update (S fixed), and S changes only in its own update (G fixed)."""
    model = make_model(tmp_path)
    set_images(model)
    updates = model.training_updates()
    first = next(updates)
    assert first.optimizer is model.optimizer_G and {"ss_A", "ss_B"} <= set(first.losses)
    first.losses["ss_A"].backward(retain_graph=True)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.netG_A.parameters())
    model.optimizer_G.zero_grad()
    for net in (model.netS, model.netD_A):
        net.zero_grad(set_to_none=True)
    before = [p.detach().clone() for p in model.netS.parameters()]
    model.apply_update(first)
    assert all(torch.equal(a, b) for a, b in zip(before, model.netS.parameters(), strict=True))
    model.apply_update(next(updates))                     # D
    s_update = next(updates)
    assert s_update.optimizer is model.optimizer_S and set(s_update.losses) == {"S_reg", "S_cls"}
    g_before = [p.detach().clone() for p in model.netG_A.parameters()]
    model.apply_update(s_update)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.netS.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.netG_A.parameters(), strict=True))
    visuals = model.get_current_visuals()
    assert visuals["attention_A"].shape == (2, 3, 32, 32) and visuals["grid_A"][0, :, 16, :].eq(1).all()


def test_grid_that_does_not_fit_names_the_option_and_what_works(tmp_path):
    with pytest.raises(OptionsError, match=r"--ss_grid 3 does not divide the 32x32 crop.*--ss_grid 2 or 4.*30 or 33"):
        make_model(tmp_path, "--ss_grid 3")
    with pytest.raises(OptionsError, match=r"--ss_grid 8 leaves 4-pixel patches.*--ss_layers 2 --ss_stride 2"):
        make_model(tmp_path, "--ss_grid 8")


def test_stride_1_keeps_S_maps_at_the_patch_resolution(tmp_path):
    coarse = make_model(tmp_path)                                  # --ss_layers 2: a quarter of the patch
    assert coarse.netS(torch.rand(5, 3, 16, 16))[0].shape == (5, 8, 4, 4)
    fine = make_model(tmp_path, "--ss_stride 1 --ss_grid 8")       # 4-pixel patches, too small for stride 2
    content, domain = fine.netS(torch.rand(5, 3, 4, 4))
    assert content.shape == domain.shape == (5, 8, 4, 4)
    set_images(fine)
    fine.optimize_parameters()
    assert fine.get_current_visuals()["attention_A"].shape == (2, 3, 32, 32)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("style")
    make_shapes_dataset(root, size=32, n_train=4, n_test=2, seed=0, min_objects=1, max_objects=2)
    return root


def train_run(shapes, checkpoints: Path, model: str, extra: str = "", steps: int = 3) -> None:
    argv = (f"--dataroot {shapes} --checkpoints_dir {checkpoints} --name run --model {model} {TINY} "
            f"--ss_grid 2 --display_id 0 --num_threads 0 --print_freq 1 --batch_size 2 --seed 3 --max_steps {steps} "
            f"--lambda_idt 1 {extra}")
    if model == "cycle_gan":
        argv = argv.replace("--ss_nf 8 --ss_layers 2 ", "").replace("--ss_grid 2 ", "")
    assert train.main(argv.split()) == 0


def weights(run_dir: Path, name: str) -> dict:
    return torch.load(run_dir / "run" / f"latest_net_{name}.pth", weights_only=True)


def test_lambda_ss_0_is_cyclegan_exactly(shapes, tmp_path):
    train_run(shapes, tmp_path / "cycle", "cycle_gan")
    train_run(shapes, tmp_path / "op", "op_gan", "--lambda_ss 0")
    for name in ("G_A", "G_B", "D_A", "D_B"):
        left, right = weights(tmp_path / "cycle", name), weights(tmp_path / "op", name)
        assert all(torch.equal(value, right[key]) for key, value in left.items()), name
    assert not (tmp_path / "op" / "run" / "latest_net_S.pth").exists()
    losses = [line.split(")", 1)[1] for line in (tmp_path / "cycle" / "run" / "loss_log.txt").read_text().splitlines()
              if line.startswith("(")]
    op_losses = [line.split(")", 1)[1] for line in (tmp_path / "op" / "run" / "loss_log.txt").read_text().splitlines()
                 if line.startswith("(")]
    assert losses == op_losses and losses


def test_resume_is_exact_and_test_translates_like_cyclegan(shapes, tmp_path):
    train_run(shapes, tmp_path / "once", "op_gan", "--amp bf16", steps=4)     # visuals shown every step, in bf16
    train_run(shapes, tmp_path / "halves", "op_gan", "--amp bf16", steps=2)
    train_run(shapes, tmp_path / "halves", "op_gan", "--amp bf16 --continue_train", steps=4)
    for name in ("G_A", "S"):
        left, right = weights(tmp_path / "once", name), weights(tmp_path / "halves", name)
        assert all(torch.equal(value, right[key]) for key, value in left.items()), name
    done = subprocess.run([sys.executable, "test.py", "--name", "run", "--checkpoints_dir", str(tmp_path / "once"),
                           "--results_dir", str(tmp_path / "results"), "--num_threads", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "results" / "run" / "test_latest" / "images").glob("*_fake_B_img.png"))) == 2
