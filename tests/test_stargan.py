"""StarGAN and MatchGAN: the conditional generator, the triplets, the update schedule, MatchGAN = StarGAN at
--lambda_mch 0, exact resume, and a test page with one column per attribute."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train
from datasets.make_shapes_dataset import main as make_shapes
from models import create_model
from models.match_gan_model import cross_triplets, triplets
from models.stargan_model import ConditionalGenerator
from options.base_options import OptionsError
from options.train_options import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
ATTRIBUTES = "rectangle,red,large"
TINY = "--ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 3 --load_size 32 --crop_size 32 --gpu_ids -1"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("attributes") / "data"
    assert make_shapes(f"--attributes --out {root} --size 32 --n_train 16 --n_test 3".split()) == 0
    return root


def run(shapes, checkpoints: Path, model: str, steps: int, extra: str = "") -> None:
    argv = (f"--dataroot {shapes} --checkpoints_dir {checkpoints} --name run --model {model} {TINY} "
            f"--attributes {ATTRIBUTES} --batch_size 4 --n_critic 2 --display_id 0 --num_threads 0 --print_freq 1 "
            f"--seed 5 --max_steps {steps} --labelled_fraction 0.5 {extra}")
    assert train.main(argv.split()) == 0


def weights(checkpoints: Path, name: str) -> dict:
    return torch.load(checkpoints / "run" / f"latest_net_{name}.pth", weights_only=True)


def test_generator_reads_the_target_labels():
    torch.manual_seed(0)
    net = ConditionalGenerator(3, 3, 3, 4, "instance", 1)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    one, other = net(image, torch.tensor([[1.0, 0, 0]])), net(image, torch.tensor([[0.0, 1, 0]]))
    # a clear difference: instance norm after reflect padding erased constant label planes (difference ~1e-7)
    assert one.shape == (1, 3, 32, 32) and (one - other).abs().mean() > 1e-3


def test_triplets_pair_identical_labels_against_different_ones():
    labels = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1], [1, 1]])
    allowed = torch.tensor([True, True, True, False, True])      # sample 3 is unlabelled
    anchors, positives, negatives = triplets(labels, allowed)
    assert anchors.tolist() == [0, 1]                           # 2 has no allowed partner with its labels
    assert positives.tolist() == [1, 0]
    assert all(not torch.equal(labels[a], labels[n]) and bool(allowed[n]) for a, n in zip(anchors, negatives))


def test_cross_triplets_pair_each_anchor_with_real_images_of_its_labels_and_of_others():
    anchors_labels = torch.tensor([[1.0, 0], [0, 1], [1, 1]])
    pool = torch.tensor([[0.0, 1], [1, 0], [0, 1], [1, 0]])
    anchors, positives, negatives = cross_triplets(anchors_labels, pool)
    assert anchors.tolist() == [0, 1]                           # no real image has anchor 2's labels
    assert all(torch.equal(anchors_labels[a], pool[p]) for a, p in zip(anchors, positives))
    assert all(not torch.equal(anchors_labels[a], pool[n]) for a, n in zip(anchors, negatives))


def match_gan_on_unlabelled_batch(shapes, tmp_path, flags: str, stream: torch.Tensor):
    """A MatchGAN model with ``flags``, given a batch of 4 unlabelled images beside a labelled stream with
    ``stream`` labels."""
    opt = TrainOptions().parse(shlex.split(f"--model match_gan --dataroot {shapes} {TINY} --attributes {ATTRIBUTES} "
                                           f"--checkpoints_dir {tmp_path} --name s --batch_size 4 {flags}"),
                               save=False, show=False)
    model = create_model(opt)
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    model.set_input({"A": images, "A_label": torch.zeros(4, 3), "A_labelled": torch.zeros(4, dtype=torch.bool),
                     "A_paths": ["a", "b", "c", "d"], "L": images.flip(0), "L_label": stream})
    return model


def generator_update(shapes, tmp_path, flag: str, stream: torch.Tensor, targets: torch.Tensor):
    """A MatchGAN model with ``flag``, after its D update on a batch of 4 unlabelled images beside a labelled
    stream with ``stream`` labels, and the G update that follows with ``targets`` as the translations' labels."""
    model = match_gan_on_unlabelled_batch(shapes, tmp_path, f"--n_critic 1 {flag}", stream)
    updates = model.training_updates()
    next(updates)
    model.targets = targets
    update = next(updates)
    assert update.optimizer is model.optimizer_G
    return model, update


def test_generator_matches_against_real_groups_with_mch_G_pairs_real(shapes, tmp_path):
    stream = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1]])
    targets = torch.tensor([[1.0, 0, 0], [0, 1, 1], [1, 0, 1], [0, 0, 0]])   # no two translations share them
    model, update = generator_update(shapes, tmp_path, "--mch_G_pairs real", stream, targets)
    # anchors 0 and 1 find real images of their targets; among the translations alone there is no triplet
    assert update.losses["G_mch"] > 0 and model.matching_loss(model.fake_features, model.targets) == 0
    update.losses["G_mch"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.netG.parameters())


def test_mch_G_terms_positive_drops_only_the_different_label_term(shapes, tmp_path):
    targets = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1]])     # two groups of two
    model, update = generator_update(shapes, tmp_path, "--mch_G_terms positive", torch.zeros(4, 3), targets)
    features, head = model.fake_features, model.matching_head
    same = head(features[[0, 1, 2, 3]], features[[1, 0, 3, 2]]).float()        # each with its partner
    expected = torch.nn.functional.binary_cross_entropy_with_logits(same, torch.ones_like(same))
    assert torch.allclose(update.losses["G_mch"], expected, atol=1e-6)
    both = model.matching_loss(features, model.targets)
    assert both > update.losses["G_mch"]          # the method's loss adds the different-label term on top


def discriminator_update(shapes, tmp_path, flag: str, stream: torch.Tensor, targets: torch.Tensor):
    """A MatchGAN model with ``flag`` and its D update on 4 unlabelled images translated to ``targets``, beside
    a labelled stream with ``stream`` labels."""
    model = match_gan_on_unlabelled_batch(shapes, tmp_path, flag, stream)
    model.draw_targets = lambda batch: targets
    update = next(model.training_updates())
    assert update.optimizer is model.optimizer_D
    return model, update


def test_mch_D_images_real_and_translations_also_teaches_D_the_translations_target_groups(shapes, tmp_path):
    stream = torch.ones(4, 3)                                                   # one label vector: no real triplet
    targets = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1]])     # two groups of two
    _, real_only = discriminator_update(shapes, tmp_path, "", stream, targets)
    assert real_only.losses["D_mch"] == 0
    model, update = discriminator_update(shapes, tmp_path, "--mch_D_images real_and_translations", stream, targets)
    assert update.losses["D_mch"] > 0                                          # all of it from the translations
    update.losses["D_mch"].backward()
    assert all(p.grad is None for p in model.netG.parameters())                # D's term: translations detached
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.matching_head.parameters())


def test_targets_are_shared_by_groups_of_target_group_size_consecutive_samples(shapes, tmp_path):
    stream = torch.eye(3)[[0, 1, 2, 0]]                                         # three label vectors seen
    for size, groups in ((2, [[0, 1], [2, 3]]), (4, [[0, 1, 2, 3]]), (1, [[0], [1], [2], [3]])):
        torch.manual_seed(0)
        model = match_gan_on_unlabelled_batch(shapes, tmp_path, f"--target_group_size {size}", stream)
        next(model.training_updates())
        targets = model.targets
        for group in groups:
            assert all(torch.equal(targets[group[0]], targets[i]) for i in group), (size, targets)
        assert all((targets[i] == stream).all(1).any() for i in range(4))     # drawn from the labelled vectors
    torch.manual_seed(0)
    grouped = match_gan_on_unlabelled_batch(shapes, tmp_path, "--target_group_size 4", stream).draw_targets(16)
    assert len({tuple(t.tolist()) for t in grouped[::4]}) > 1                  # groups draw their own targets
    with pytest.raises(OptionsError, match="--target_group_size must be between 1 and --batch_size 4"):
        match_gan_on_unlabelled_batch(shapes, tmp_path, "--target_group_size 5", stream)


def test_missing_attributes_option_says_what_to_give(tmp_path):
    with pytest.raises(OptionsError, match="--attributes"):
        TrainOptions().parse(shlex.split(f"--model stargan {TINY} --checkpoints_dir {tmp_path} --name s"),
                             save=False, show=False)


def test_discriminator_learns_labels_from_the_labelled_stream_even_when_the_batch_has_none(shapes, tmp_path):
    stream = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1]])
    model = match_gan_on_unlabelled_batch(shapes, tmp_path, "", stream)
    update = next(model.training_updates())
    assert update.optimizer is model.optimizer_D
    assert update.losses["D_cls"] > 0 and update.losses["D_mch"] > 0     # a triplet in every stream batch
    assert torch.equal(model.label_memory, stream)                         # targets come from labelled vectors


def test_lambda_mch_0_is_stargan_exactly(shapes, tmp_path):
    run(shapes, tmp_path / "star", "stargan", 4)
    run(shapes, tmp_path / "match", "match_gan", 4, "--lambda_mch 0")
    for name in ("G", "D"):
        left, right = weights(tmp_path / "star", name), weights(tmp_path / "match", name)
        assert left.keys() == right.keys(), name
        assert all(torch.equal(value, right[key]) for key, value in left.items()), name


def test_matchgan_trains_its_head_and_resumes_exactly(shapes, tmp_path):
    run(shapes, tmp_path / "once", "match_gan", 4)
    run(shapes, tmp_path / "halves", "match_gan", 2)
    run(shapes, tmp_path / "halves", "match_gan", 4, "--continue_train")
    for name in ("G", "D"):
        left, right = weights(tmp_path / "once", name), weights(tmp_path / "halves", name)
        assert all(torch.equal(value, right[key]) for key, value in left.items()), name
    assert any(key.startswith("matching.") for key in weights(tmp_path / "once", "D"))
    log = (tmp_path / "once" / "run" / "loss_log.txt").read_text()
    assert "D_mch" in log and "G_mch" in log
    state = torch.load(tmp_path / "once" / "run" / "latest_state.pth", weights_only=False)
    g_steps = {float(s["step"]) for s in state["model"]["optimizers"][0]["state"].values()}
    d_state = state["model"]["optimizers"][1]
    d_steps = {float(d_state["state"][i]["step"]) for i in d_state["param_groups"][0]["params"]}  # D without its head
    # --n_critic 2: G stepped once per two D steps
    assert g_steps == {2.0} and max(d_steps) == 4.0


def test_test_page_has_one_column_per_attribute(shapes, tmp_path):
    run(shapes, tmp_path, "stargan", 2)
    done = subprocess.run([sys.executable, "test.py", "--name", "run", "--checkpoints_dir", str(tmp_path),
                           "--results_dir", str(tmp_path / "results"), "--num_threads", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    images = tmp_path / "results" / "run" / "test_latest" / "images"
    for attribute in ATTRIBUTES.split(","):
        assert len(list(images.glob(f"*_fake_{attribute}.png"))) == 3
    recorded = json.loads((images.parent / "visuals.json").read_text())["options"]
    assert recorded["attributes"] == ATTRIBUTES.split(",")     # evaluate.py reads which attribute each flips
