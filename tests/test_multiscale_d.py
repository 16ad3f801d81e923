"""--num_D (pix2pixHD's multi-scale discriminator) and --lambda_feat (mean-feature matching) of insta_gan and
cycle_gan: defaults unchanged, scales, masks, loss definitions, exact resume, option errors (CPU, tiny)."""

import shlex

import pytest
import torch
from torch.nn import functional as F

import train
from datasets.make_shapes_dataset import make_shapes_dataset
from models import create_model, networks
from models.base_model import Update
from options.base_options import OptionsError
from options.test_options import TestOptions
from options.train_options import TrainOptions

TINY = "--ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --gpu_ids -1"
INSTAGAN = "--ins_max 2 --ins_per 1"
MODELS = ("insta_gan", "cycle_gan")


def tiny(model: str) -> str:
    return f"{TINY} {INSTAGAN}" if model == "insta_gan" else TINY


def make_opt(tmp_path, model: str, extra: str = "", size: int = 32):
    argv = shlex.split(f"{tiny(model)} --pool_size 2 --model {model} --load_size {size} --crop_size {size} "
                       f"--checkpoints_dir {tmp_path} --name m {extra}")
    return TrainOptions().parse(argv, save=False, show=False)


def make_model(tmp_path, model: str, extra: str = "", size: int = 32, seed: int = 0):
    torch.manual_seed(seed)
    opt = make_opt(tmp_path, model, extra, size)
    built = create_model(opt)
    built.setup(opt)
    return built


def make_masks(batch: int, slots: int, size: int, counts: list[int]) -> torch.Tensor:
    """Square instances (the first of each sample a single pixel), the remaining slots empty (-1)."""
    masks = torch.full((batch, slots, size, size), -1.0)
    for sample, count in enumerate(counts):
        for k in range(count):
            side = 1 if k == 0 else 3 + 2 * k
            top = 1 + 9 * k
            masks[sample, k, top:top + side, 2 + sample:2 + sample + side] = 1.0
    return masks


def make_batch(model: str, size: int = 32, batch: int = 2, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    data = {"A": torch.rand(batch, 3, size, size, generator=generator) * 2 - 1,
            "B": torch.rand(batch, 3, size, size, generator=generator) * 2 - 1,
            "A_paths": [f"a{i}.png" for i in range(batch)], "B_paths": [f"b{i}.png" for i in range(batch)]}
    if model == "insta_gan":
        data["A_seg"] = make_masks(batch, 4, size, [2, 1][:batch])
        data["B_seg"] = make_masks(batch, 4, size, [1, 2][:batch])
    return data


def train_step(model, batch: dict, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)   # the image pools draw from torch's generator
    model.set_input(batch)
    model.optimize_parameters()
    return dict(model.get_current_losses())


def state(model) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value.clone() for name, net in model.networks().items()
            for key, value in net.state_dict().items()}


def plain_discriminator(opt) -> torch.nn.Module:
    """The discriminator each model built before --num_D existed, from the same factory call."""
    if opt.model == "insta_gan":
        return networks.define_D("set_patch", opt.output_nc, opt.ndf, opt.n_layers_D, opt.norm, opt.init_type,
                                 opt.init_gain, spectral_norm=True, init_D=opt.init_D)
    return networks.define_D("patch", opt.output_nc, opt.ndf, opt.n_layers_D, opt.norm, opt.init_type,
                             opt.init_gain, spectral_norm=False, init_D="same_as_G")


def translation(model) -> tuple[torch.Tensor, ...]:
    """D_A's inputs for a translation A -> B with its graph to G_A (InstaGAN's forward() runs without one)."""
    if model.opt.model == "insta_gan":
        return model.netG_A(model.real_A_img, model.real_A_seg, model.instance_present["A"])
    return (model.netG_A(model.real_A_img),)


def d_inputs(model, letter: str, image: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """The inputs the model's discriminators take for the real images of domain ``letter``."""
    image = getattr(model, f"real_{letter}_img") if image is None else image
    if model.opt.model == "insta_gan":
        return image, getattr(model, f"real_{letter}_seg"), model.instance_present[letter]
    return (image,)


# ---------------------------------------------------------------------------------------------- defaults
@pytest.mark.parametrize("model_name", MODELS)
def test_default_is_the_plain_model_same_keys_losses_and_weights(tmp_path, model_name):
    default = make_model(tmp_path, model_name)
    explicit = make_model(tmp_path, model_name, "--num_D 1 --lambda_feat 0")
    assert default.opt.num_D == 1 and default.opt.lambda_feat == 0
    assert not any(name.endswith("_feat") for name in default.loss_names)
    plain_keys = list(plain_discriminator(default.opt).state_dict())
    for name in ("D_A", "D_B"):
        net = getattr(default, f"net{name}")
        assert type(net) is type(plain_discriminator(default.opt))
        assert list(net.state_dict()) == plain_keys
    assert state(default).keys() == state(explicit).keys()
    for step in range(2):
        batch = make_batch(model_name, seed=step)
        assert train_step(default, batch, step) == train_step(explicit, batch, step)
    after_default, after_explicit = state(default), state(explicit)
    for key, value in after_default.items():
        assert torch.equal(value, after_explicit[key]), key


def test_default_cycle_gan_generator_losses_and_gradients_equal_the_plain_formula(tmp_path):
    """The code path before --num_D: criterion(D(fake), True) per direction, summed with the cycle/identity terms."""
    model = make_model(tmp_path, "cycle_gan")
    model.set_input(make_batch("cycle_gan"))
    model.forward()
    params = [p for g in model.optimizer_G.param_groups for p in g["params"]]
    losses = model.generator_losses()
    new_grads = torch.autograd.grad(sum(losses.values()), params, allow_unused=True, retain_graph=True)
    old = {"G_A": model.criterion_gan(model.netD_A(model.fake_B_img), True),
           "G_B": model.criterion_gan(model.netD_B(model.fake_A_img), True)}
    assert list(losses)[:2] == ["G_A", "G_B"]
    for name, value in old.items():
        assert torch.equal(losses[name], value)
    old_losses = {**losses, **old}
    old_grads = torch.autograd.grad(sum(old_losses.values()), params, allow_unused=True)
    for new, previous in zip(new_grads, old_grads, strict=True):
        assert (new is None and previous is None) or torch.equal(new, previous)


@pytest.mark.parametrize("model_name", MODELS)
def test_checkpoint_of_the_default_model_loads(tmp_path, model_name):
    model = make_model(tmp_path, model_name)
    train_step(model, make_batch(model_name))
    model.save_networks("saved")
    again = make_model(tmp_path, model_name, "--num_D 1", seed=5)
    again.load_networks("saved")
    for key, value in state(model).items():
        assert torch.equal(value, state(again)[key]), key
    test_opt = TestOptions().parse(shlex.split(f"--checkpoints_dir {tmp_path} --name m --model {model_name} {tiny(model_name)} "
                                               f"--load_size 32 --crop_size 32 --epoch saved"), save=False, show=False)
    assert test_opt.num_D == 1
    create_model(test_opt).setup(test_opt)   # the test-time model loads the generators


# ---------------------------------------------------------------------------------------------- scales
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("num_D", [2, 3])
def test_num_D_builds_that_many_discriminators_judging_halving_sizes(tmp_path, model_name, num_D):
    model = make_model(tmp_path, model_name, f"--num_D {num_D}", size=64)
    plain = type(plain_discriminator(model.opt))
    for name in ("D_A", "D_B"):
        net = getattr(model, f"net{name}")
        assert isinstance(net, networks.MultiscaleDiscriminators) and len(net.scales) == num_D
        assert all(type(d) is plain for d in net.scales)
        assert next(iter(net.state_dict())).startswith("scales.0.")
        # independent copies, each initialised on its own
        weights = [next(iter(d.parameters())) for d in net.scales]
        assert all(w.data_ptr() != weights[0].data_ptr() for w in weights[1:])
        assert not torch.equal(weights[0], weights[1])
    seen: list[list[tuple[int, ...]]] = []
    hooks = [d.register_forward_pre_hook(lambda _, args: seen.append([tuple(a.shape[2:]) for a in args[:2]]))
             for d in model.netD_A.scales]
    model.set_input(make_batch(model_name, size=64))
    model.forward()
    prediction = model.netD_A(*d_inputs(model, "B"))
    for hook in hooks:
        hook.remove()
    assert len(prediction) == num_D
    assert [shapes[0] for shapes in seen] == [(64 >> k, 64 >> k) for k in range(num_D)]
    if model_name == "insta_gan":   # the masks go with the image
        assert all(shapes[1] == shapes[0] for shapes in seen)
    assert prediction[0].shape[-1] > prediction[1].shape[-1]


def test_downsampled_masks_stay_in_range_and_empty_slots_stay_exactly_empty():
    torch.manual_seed(0)
    nets = [networks.define_D("set_patch", 3, 4, 2) for _ in range(3)]
    multiscale = networks.MultiscaleDiscriminators(nets, n_layers=2)
    masks = make_masks(2, 4, 64, [3, 1])
    masks[1, 2] = torch.rand(64, 64) * 2 - 1        # a soft mask, as the generator outputs
    masks[1, 2, 0, 0] = 1.0
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    present = networks.instance_presence(masks)
    assert present.tolist() == [[True, True, True, False], [True, False, True, False]]
    inputs = multiscale.scale_inputs(image, masks)
    for scale, (scaled_image, scaled_masks, scaled_present) in enumerate(inputs):
        assert scaled_masks.shape[2:] == scaled_image.shape[2:] == (64 >> scale, 64 >> scale)
        assert scaled_masks.min() >= -1 and scaled_masks.max() <= 1
        assert torch.equal(scaled_present, present)   # decided once, at full resolution
        assert torch.all(scaled_masks[~present] == -1.0)
        assert torch.all(scaled_masks[present].flatten(1).max(1).values > -1)
        if scale:
            previous_image, previous_masks, _ = inputs[scale - 1]
            pool = {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}
            assert torch.equal(scaled_image, F.avg_pool2d(previous_image, **pool))
            assert torch.equal(scaled_masks[present], F.avg_pool2d(previous_masks, **pool)[present])
    # the wrapper gives each scale's discriminator exactly these inputs
    multiscale.eval()   # no spectral-norm power iteration between the calls compared
    predictions = multiscale(image, masks)
    for net, prediction, scale_input in zip(nets, predictions, inputs, strict=True):
        assert torch.equal(prediction, net(*scale_input))


@pytest.mark.parametrize("model_name", MODELS)
def test_gan_losses_are_summed_over_scales(tmp_path, model_name):
    model = make_model(tmp_path, model_name, "--num_D 2")
    model.set_input(make_batch(model_name))
    model.forward()
    netD = model.netD_A
    scale_inputs = netD.scale_inputs(*d_inputs(model, "B"))
    per_scale = [model.criterion_gan(d(*inputs), True) for d, inputs in zip(netD.scales, scale_inputs)]
    assert torch.allclose(model.gan_loss(netD(*d_inputs(model, "B")), True), per_scale[0] + per_scale[1])
    if model_name == "cycle_gan":
        real, fake = model.real_B_img, model.fake_B_img
        expected = 0.5 * sum(model.criterion_gan(d(x), target)
                             for x, target in ((real, True), (fake, False))
                             for d, (x,) in zip(netD.scales, netD.scale_inputs(x)))
        assert torch.allclose(model.discriminator_loss(netD, real, fake), expected)
        generator_losses = model.generator_losses()
        expected_g = sum(model.criterion_gan(d(x), True) for d, (x,) in zip(netD.scales, netD.scale_inputs(fake)))
        assert torch.allclose(generator_losses["G_A"], expected_g)


# ---------------------------------------------------------------------------------------------- feature matching
@pytest.mark.parametrize("kind", ["patch", "set_patch"])
def test_feature_path_ends_in_the_discriminators_own_prediction(kind):
    torch.manual_seed(0)
    net = networks.define_D(kind, 3, 4, 3, spectral_norm=kind == "set_patch")
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    inputs = (image,) if kind == "patch" else (image, make_masks(2, 3, 64, [2, 0]))
    net.eval()   # no spectral-norm power iteration between the two calls
    [features] = networks.discriminator_features(net, *inputs)
    assert len(features) == 3 + 2   # n_layers + 1 intermediate features, then the prediction
    assert torch.equal(features[-1], net(*inputs))


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("num_D", [1, 2])
def test_feature_matching_loss_definition_zero_when_features_match(tmp_path, model_name, num_D):
    model = make_model(tmp_path, model_name, f"--num_D {num_D} --lambda_feat 10")
    assert model.loss_names.index("G_A_feat") == model.loss_names.index("G_A") + 1 and "G_B_feat" in model.loss_names
    model.set_input(make_batch(model_name))
    model.forward()
    real = d_inputs(model, "B")
    same = model.adversarial_losses("G_A", model.netD_A, real, real)
    assert same["G_A_feat"].item() == 0.0
    # unpaired: the features are matched in distribution, so a reordered batch of the real images matches too
    reordered = tuple(x.flip(0) for x in real)
    assert model.adversarial_losses("G_A", model.netD_A, reordered, real)["G_A_feat"].item() == pytest.approx(0, abs=1e-6)
    fake = (model.fake_B_img, *(real[1:]))
    model.netD_A.eval()   # the same spectrally normalised weights in every call below
    losses = model.adversarial_losses("G_A", model.netD_A, fake, real)
    assert losses["G_A_feat"].item() > 0
    # lambda_feat * sum_k sum_i 4 / (n_layers_D + 1) / num_D * mean_c |mean f(fake) - mean f(real)|
    fake_features = networks.discriminator_features(model.netD_A, *fake)
    real_features = networks.discriminator_features(model.netD_A, *real)
    assert len(fake_features) == num_D and all(len(scale) == 2 + 2 for scale in fake_features)
    expected = sum(10 * 4 / (2 + 1) / num_D * (f.mean((0, 2, 3)) - r.mean((0, 2, 3))).abs().mean()
                   for fs, rs in zip(fake_features, real_features) for f, r in zip(fs[:-1], rs[:-1]))
    assert torch.allclose(losses["G_A_feat"], expected, rtol=1e-4)
    expected_gan = sum(model.criterion_gan(scale[-1], True) for scale in fake_features)
    assert torch.allclose(losses["G_A"], expected_gan)


@pytest.mark.parametrize("model_name", MODELS)
def test_generator_update_with_feature_matching_leaves_the_discriminators_alone(tmp_path, model_name):
    model = make_model(tmp_path, model_name, "--num_D 2 --lambda_feat 10")
    model.set_input(make_batch(model_name))
    model.forward()
    d_params = {n: p.detach().clone() for n, p in model.netD_A.named_parameters()}
    g_params = {n: p.detach().clone() for n, p in model.netG_A.named_parameters()}
    losses = model.adversarial_losses("G_A", model.netD_A, translation(model), d_inputs(model, "B"))
    assert losses["G_A_feat"].requires_grad
    real_features = networks.discriminator_features(model.netD_A, *d_inputs(model, "B"))
    assert all(f.requires_grad for scale in real_features for f in scale)   # they would, were they not detached
    model.apply_update(Update(model.optimizer_G, losses))
    assert all(p.grad is None for net in (model.netD_A, model.netD_B) for p in net.parameters())
    for name, param in model.netD_A.named_parameters():
        assert torch.equal(param, d_params[name]), name
    assert any(not torch.equal(p, g_params[n]) for n, p in model.netG_A.named_parameters())


@pytest.mark.parametrize("model_name", MODELS)
def test_training_step_with_both_options_reports_the_new_losses(tmp_path, model_name):
    model = make_model(tmp_path, model_name, "--num_D 2 --lambda_feat 1")
    losses = train_step(model, make_batch(model_name))
    assert losses["G_A_feat"] > 0 and losses["G_B_feat"] > 0
    assert all(torch.isfinite(torch.tensor(value)) for value in losses.values())


# ---------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize("model_name", MODELS)
def test_too_many_scales_for_the_image_size_names_num_D_and_what_works(tmp_path, model_name):
    with pytest.raises(OptionsError) as error:
        make_opt(tmp_path, model_name, "--num_D 3")   # 32 -> 16 -> 8 pixels; --n_layers_D 2 needs 12
    message = str(error.value)
    assert "--num_D 3" in message and "--num_D 2 or less" in message and "8 pixels" in message
    assert "at least 48 pixels" in message   # 45 would do for D, and a multiple of 4 for G
    make_opt(tmp_path, model_name, "--num_D 2")
    make_opt(tmp_path, model_name, "--num_D 3", size=48)
    for bad in ("--num_D 0", "--lambda_feat -1"):
        with pytest.raises(OptionsError, match=bad.split()[0]):
            make_opt(tmp_path, model_name, bad)
    multiscale = networks.MultiscaleDiscriminators([networks.define_D("patch", 3, 4, 2) for _ in range(3)], 2)
    with pytest.raises(ValueError, match="--num_D 3"):
        multiscale(torch.zeros(1, 3, 32, 32))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(root, size=32, n_train=4, n_test=2, seed=0, min_objects=1, max_objects=2)
    return root


def test_resume_with_num_D_2_is_exact_and_test_inherits_num_D(shapes, tmp_path):
    def run(ck, steps: int, extra: str = "") -> None:
        argv = (f"--dataroot {shapes} --checkpoints_dir {ck} --name run {tiny('insta_gan')} --pool_size 2 "
                f"--load_size 32 --crop_size 32 "
                f"--display_id 0 --num_threads 0 --print_freq 1 --batch_size 2 --niter 1 --niter_decay 1 --seed 3 "
                f"--num_D 2 --lambda_feat 1 --max_steps {steps} {extra}")
        assert train.main(argv.split()) == 0

    once, halves = tmp_path / "once", tmp_path / "halves"
    run(once, 4)
    run(halves, 3)
    run(halves, 4, "--continue_train")
    for name in ("G_A", "G_B", "D_A", "D_B"):
        left = torch.load(once / "run" / f"latest_net_{name}.pth", weights_only=True)
        right = torch.load(halves / "run" / f"latest_net_{name}.pth", weights_only=True)
        assert left.keys() == right.keys()
        assert all(torch.equal(value, right[key]) for key, value in left.items()), name
    assert any(key.startswith("scales.1.") for key in left)
    test_opt = TestOptions().parse(f"--checkpoints_dir {once} --name run".split(), save=False, show=False)
    assert test_opt.num_D == 2 and test_opt.model == "insta_gan"
