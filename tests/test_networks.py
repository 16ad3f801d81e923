"""Networks: the documented sizes and layouts, set semantics (per-sample sums, permutations, empty slots), D depth,
spectral norm and initialisation."""

import pytest
import torch
from torch import nn

from models import networks
from models.networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    SetPatchDiscriminator,
    SetResnetGenerator,
    count_parameters,
    define_D,
    define_G,
    instance_presence,
)

torch.set_num_threads(1)


def random_masks(generator: torch.Generator, counts: list[int], slots: int, size: int = 32) -> torch.Tensor:
    """Masks with counts[b] instances in random slots of sample b, the other slots empty (-1)."""
    masks = torch.full((len(counts), slots, size, size), -1.0, dtype=torch.float64)
    for b, count in enumerate(counts):
        for slot in torch.randperm(slots, generator=generator)[:count].tolist():
            blob = torch.rand(size, size, generator=generator, dtype=torch.float64) > 0.6
            masks[b, slot] = blob.double() * 2 - 1
    return masks


def random_image(generator: torch.Generator, batch: int, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=generator, dtype=torch.float64) * 2 - 1


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def small_G() -> SetResnetGenerator:
    torch.manual_seed(0)
    return define_G("set_resnet", ngf=4, n_blocks=1).double().eval()


@pytest.fixture
def small_D() -> SetPatchDiscriminator:
    torch.manual_seed(0)
    return define_D("set_patch", ndf=4, n_layers=2).double().eval()


# ---------------------------------------------------------------------------------------------- sizes and layout
def test_generator_parameter_counts_match_spec():
    net = define_G("set_resnet")
    parts = {name: count_parameters(getattr(net, name))
             for name in ("encoder_img", "encoder_seg", "decoder_img", "decoder_seg")}
    assert parts == {"encoder_img": 10_999_936, "encoder_seg": 10_993_664,
                     "decoder_img": 1_493_763, "decoder_seg": 3_327_745}
    assert count_parameters(net) == 26_815_108


def test_discriminator_parameter_count_matches_spec():
    assert count_parameters(define_D("set_patch", ndf=64)) == 9_721_729


def test_cycle_gan_baselines_have_the_classic_sizes():
    assert count_parameters(define_G("resnet")) == 11_378_179
    assert count_parameters(define_D("patch", spectral_norm=False)) == 2_764_737


def test_generator_keys_follow_the_authors_layout():
    keys = set(SetResnetGenerator(ngf=4, n_blocks=2).state_dict())
    expected = set()
    for encoder in ("encoder_img", "encoder_seg"):
        layers = ["1", "4", "7"] + [f"{block}.conv_block.{conv}" for block in (10, 11) for conv in (1, 5)]
        expected |= {f"{encoder}.{layer}.{kind}" for layer in layers for kind in ("weight", "bias")}
    for decoder in ("decoder_img", "decoder_seg"):
        expected |= {f"{decoder}.{layer}.{kind}" for layer in (0, 3, 7) for kind in ("weight", "bias")}
    assert keys == expected
    net = SetResnetGenerator(ngf=4, n_blocks=2)
    assert isinstance(net.decoder_seg[0], nn.ConvTranspose2d) and isinstance(net.decoder_seg[8], nn.Tanh)
    assert net.decoder_seg[0].in_channels == 48 and net.decoder_img[0].in_channels == 32


def test_discriminator_layer_indices_follow_the_authors_layout():
    net = SetPatchDiscriminator(ndf=4, n_layers=3)
    conv_indices = {name: [i for i, m in enumerate(getattr(net, name)) if isinstance(m, nn.Conv2d)]
                    for name in ("feature_img", "feature_seg", "classifier")}
    assert conv_indices == {"feature_img": [0, 2, 5], "feature_seg": [0, 2, 5], "classifier": [0, 3]}
    assert [net.feature_img[i].out_channels for i in (0, 2, 5)] == [4, 8, 16]
    assert (net.classifier[0].in_channels, net.classifier[0].out_channels) == (32, 64)
    batch_norm = SetPatchDiscriminator(ndf=4, n_layers=3, norm="batch")
    assert batch_norm.feature_img[2].bias is None and batch_norm.classifier[0].bias is not None  # as the authors'


# ---------------------------------------------------------------------------------------------- generator semantics
def test_generator_output_shapes_and_range(small_G, rng):
    image, masks = random_image(rng, 2), random_masks(rng, [2, 1], slots=3)
    fake_image, fake_masks = small_G(image, masks)
    assert fake_image.shape == (2, 3, 32, 32) and fake_masks.shape == (2, 3, 32, 32)
    assert fake_image.abs().max() <= 1 and fake_masks.abs().max() <= 1


def test_generator_returns_empty_slots_as_exactly_minus_one(small_G, rng):
    masks = random_masks(rng, [2, 1], slots=4)
    _, fake_masks = small_G(random_image(rng, 2), masks)
    empty = ~instance_presence(masks)
    assert empty.sum() == 5
    assert torch.equal(fake_masks[empty], torch.full_like(fake_masks[empty], -1.0))
    assert (fake_masks[~empty] != -1).any(dim=(1, 2)).all()


def test_generator_is_permutation_invariant_for_image_and_equivariant_for_masks(small_G, rng):
    image, masks = random_image(rng, 2), random_masks(rng, [3, 2], slots=4)
    order = torch.tensor([2, 0, 3, 1])
    fake_image, fake_masks = small_G(image, masks)
    perm_image, perm_masks = small_G(image, masks[:, order])
    torch.testing.assert_close(perm_image, fake_image)
    torch.testing.assert_close(perm_masks, fake_masks[:, order])


def test_generator_batched_equals_one_sample_at_a_time(small_G, rng):
    image, masks = random_image(rng, 3), random_masks(rng, [2, 0, 3], slots=3)
    fake_image, fake_masks = small_G(image, masks)
    for b in range(3):
        one_image, one_masks = small_G(image[b:b + 1], masks[b:b + 1])
        torch.testing.assert_close(fake_image[b:b + 1], one_image)
        torch.testing.assert_close(fake_masks[b:b + 1], one_masks)


def test_generator_instance_sum_is_per_sample_not_per_batch(small_G, rng):
    """The authors summed over the whole batch: another sample's instances must not change my output."""
    image, masks = random_image(rng, 2), random_masks(rng, [1, 2], slots=2)
    other = masks.clone()
    other[1] = random_masks(rng, [1], slots=2)[0]
    first, _ = small_G(image, masks)
    second, _ = small_G(image, other)
    torch.testing.assert_close(first[0], second[0])
    assert not torch.allclose(first[1], second[1])


def test_generator_with_no_instance_in_the_batch(small_G, rng):
    calls = []
    small_G.decoder_seg.register_forward_hook(lambda *args: calls.append(1))
    image = random_image(rng, 2)
    for slots in (3, 0):
        masks = torch.full((2, slots, 32, 32), -1.0, dtype=torch.float64)
        fake_image, fake_masks = small_G(image, masks)
        assert fake_image.shape == (2, 3, 32, 32) and torch.isfinite(fake_image).all()
        assert fake_masks.shape == (2, slots, 32, 32) and (fake_masks == -1).all()
    assert calls == []


def test_generator_gradients_reach_both_encoders_through_the_masks(rng):
    net = define_G("set_resnet", ngf=4, n_blocks=1)
    _, fake_masks = net(random_image(rng, 2).float(), random_masks(rng, [1, 2], slots=3).float())
    fake_masks.sum().backward()
    assert net.encoder_seg[1].weight.grad.abs().sum() > 0
    assert net.encoder_img[1].weight.grad.abs().sum() > 0


def test_discriminator_gradients_reach_both_extractors_under_spectral_norm(rng):
    net = define_D("set_patch", ndf=4, n_layers=2)
    net(random_image(rng, 2).float(), random_masks(rng, [2, 0], slots=3).float()).mean().backward()
    for extractor in (net.feature_img, net.feature_seg):
        assert extractor[0].parametrizations.weight.original.grad.abs().sum() > 0


def test_generator_rejects_sizes_not_divisible_by_four(small_G):
    with pytest.raises(ValueError, match="divisible by 4.*--crop_size_h"):
        small_G(torch.zeros(1, 3, 30, 32, dtype=torch.float64), torch.full((1, 1, 30, 32), -1.0, dtype=torch.float64))


def test_nets_reject_mismatched_image_and_masks(small_G, small_D):
    image, masks = torch.zeros(2, 3, 32, 32, dtype=torch.float64), torch.zeros(1, 2, 32, 32, dtype=torch.float64)
    for net in (small_G, small_D):
        with pytest.raises(ValueError, match="must share batch size"):
            net(image, masks)


def test_batch_norm_generator_trains_on_a_batch(rng):
    net = define_G("set_resnet", ngf=4, n_blocks=1, norm="batch")
    fake_image, fake_masks = net(random_image(rng, 2).float(), random_masks(rng, [1, 1], slots=2).float())
    assert fake_image.shape == (2, 3, 32, 32) and fake_masks.shape == (2, 2, 32, 32)


def test_instance_norm_removes_the_colour_of_a_flat_image_in_the_first_layer_and_batch_norm_in_eval_keeps_it():
    # Why the shapes backgrounds are pale and plain, and why a batch-norm model is tested with --eval.
    red, blue = torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)
    red[:, 0], blue[:, 2] = 0.8, 0.8
    first_layer = {}
    for norm in ("instance", "batch"):
        torch.manual_seed(0)
        net = define_G("set_resnet", ngf=4, n_blocks=1, norm=norm).double().eval()
        pad_conv_norm = net.encoder_img[:3]
        with torch.no_grad():
            first_layer[norm] = [pad_conv_norm(image.double()) for image in (red, blue)]
    assert all(features.abs().max() < 1e-6 for features in first_layer["instance"])  # nothing left to decode
    assert (first_layer["batch"][0] - first_layer["batch"][1]).abs().mean() > 1e-2


# ---------------------------------------------------------------------------------------------- discriminator
def test_discriminator_is_permutation_invariant_and_sees_the_masks(small_D, rng):
    image, masks = random_image(rng, 2), random_masks(rng, [3, 1], slots=4)
    score = small_D(image, masks)
    assert score.shape == (2, 1, 6, 6)
    torch.testing.assert_close(small_D(image, masks[:, [3, 1, 0, 2]]), score)
    assert not torch.allclose(small_D(image, torch.full_like(masks, -1.0)), score)


def test_discriminator_batched_equals_one_sample_at_a_time(small_D, rng):
    image, masks = random_image(rng, 3), random_masks(rng, [0, 2, 1], slots=2)
    score = small_D(image, masks)
    for b in range(3):
        torch.testing.assert_close(score[b:b + 1], small_D(image[b:b + 1], masks[b:b + 1]))


def test_discriminator_with_no_instance_in_the_batch(small_D, rng):
    image = random_image(rng, 2)
    for slots in (2, 0):
        score = small_D(image, torch.full((2, slots, 32, 32), -1.0, dtype=torch.float64))
        assert score.shape == (2, 1, 6, 6) and torch.isfinite(score).all()


@pytest.mark.parametrize("n_layers, side", [(1, 30), (2, 14), (3, 6), (4, 2)])
def test_discriminator_depth_follows_n_layers(n_layers, side, rng):
    net = SetPatchDiscriminator(ndf=2, n_layers=n_layers).double().eval()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 * n_layers + 2
    assert net(random_image(rng, 1, 64), random_masks(rng, [1], 1, 64)).shape == (1, 1, side, side)
    classic = NLayerDiscriminator(ndf=2, n_layers=n_layers).double()
    assert classic(random_image(rng, 1, 64)).shape == (1, 1, side, side)


def test_discriminator_channels_are_capped_at_eight_ndf_per_extractor():
    net = SetPatchDiscriminator(ndf=2, n_layers=5)
    assert [m.out_channels for m in net.feature_img if isinstance(m, nn.Conv2d)] == [2, 4, 8, 16, 16]
    assert [m.out_channels for m in net.classifier if isinstance(m, nn.Conv2d)] == [32, 1]


def test_discriminators_give_30x30_scores_for_256_inputs():
    torch.manual_seed(0)
    image, masks = torch.zeros(1, 3, 256, 256), torch.full((1, 2, 256, 256), -1.0)
    masks[0, 0, 50:90, 40:120] = 1
    with torch.no_grad():
        assert define_D("set_patch", ndf=4)(image, masks).shape == (1, 1, 30, 30)
        assert define_D("patch", ndf=4, spectral_norm=False)(image).shape == (1, 1, 30, 30)


def test_spectral_norm_on_every_discriminator_conv_and_nowhere_in_the_generator():
    def conv_parametrized(net):
        return [networks.parametrize.is_parametrized(m, "weight") for m in net.modules()
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]

    assert all(conv_parametrized(define_D("set_patch", ndf=4)))
    assert len(conv_parametrized(define_D("set_patch", ndf=4))) == 8
    assert not any(conv_parametrized(define_G("set_resnet", ngf=4, n_blocks=1)))
    assert not any(conv_parametrized(define_D("patch", ndf=4, spectral_norm=False)))
    assert all(conv_parametrized(define_D("patch", ndf=4, spectral_norm=True)))


# ---------------------------------------------------------------------------------------------- init
def raw_conv_weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.parametrizations.weight.original if networks.parametrize.is_parametrized(m, "weight") else m.weight
            for m in net.modules() if isinstance(m, nn.Conv2d)]


def test_init_D_same_as_G_reaches_the_raw_weight_under_spectral_norm():
    torch.manual_seed(0)
    net = define_D("set_patch", ndf=8, init_type="normal", init_gain=0.02, init_D="same_as_G")
    weights = torch.cat([w.flatten() for w in raw_conv_weights(net)])
    assert abs(weights.std().item() - 0.02) < 0.002
    assert all((m.bias == 0).all() for m in net.modules() if isinstance(m, nn.Conv2d))


def test_init_D_pytorch_keeps_the_default_initialisation():
    torch.manual_seed(0)
    net = define_D("set_patch", ndf=8, init_type="normal", init_gain=0.02, init_D="pytorch")
    first = net.feature_seg[0]
    bound = 1 / (first.in_channels * 16) ** 0.5  # PyTorch's default: uniform within 1/sqrt(fan_in)
    weight = first.parametrizations.weight.original
    assert weight.abs().max() <= bound and weight.std() > 0.3 * bound
    assert (first.bias != 0).any()


def test_init_refreshes_the_spectral_norm_estimate():
    torch.manual_seed(0)
    net = define_D("set_patch", ndf=8, init_D="same_as_G").eval()
    conv = net.feature_img[2]
    matrix = conv.weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(matrix, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_generator_init_is_normal_with_zero_bias():
    torch.manual_seed(0)
    net = define_G("set_resnet", ngf=8, n_blocks=1, init_type="normal", init_gain=0.02)
    weights = torch.cat([w.flatten() for w in raw_conv_weights(net)])
    assert abs(weights.std().item() - 0.02) < 0.002
    assert all((m.bias == 0).all() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_every_init_type_builds(init_type):
    net = define_G("resnet", ngf=4, n_blocks=1, init_type=init_type, norm="batch")
    assert all(torch.isfinite(p).all() for p in net.parameters())


# ---------------------------------------------------------------------------------------------- helpers and errors
def test_instance_presence_treats_all_minus_one_channels_as_empty():
    masks = torch.full((2, 3, 8, 8), -1.0)
    masks[0, 1, 3, 4] = 1.0
    masks[1, 2] = -1.0 + 1e-6  # numerical noise is still empty
    masks[1, 0, 0, 0] = -0.5
    expected = torch.tensor([[False, True, False], [True, False, False]])
    assert torch.equal(instance_presence(masks), expected)
    assert instance_presence(torch.zeros(2, 0, 8, 8)).shape == (2, 0)


def test_norm_layers():
    assert isinstance(networks.get_norm_layer("instance")(4), nn.InstanceNorm2d)
    assert not networks.get_norm_layer("instance")(4).affine
    assert networks.get_norm_layer("batch")(4).affine
    assert isinstance(networks.get_norm_layer("none")(4), nn.Identity)
    with pytest.raises(ValueError, match="--norm 'group'.*instance, batch, none"):
        networks.get_norm_layer("group")


@pytest.mark.parametrize("call, message", [
    (lambda: define_G("unet_256"), "unknown generator 'unet_256'"),
    (lambda: define_D("pixel"), "unknown discriminator 'pixel'"),
    (lambda: define_D("set_patch", ndf=4, init_D="xavier"), "--init_D 'xavier'"),
    (lambda: define_G("resnet", ngf=4, n_blocks=1, init_type="uniform"), "--init_type 'uniform'"),
    (lambda: define_D("set_patch", ndf=4, n_layers=0), "--n_layers_D must be at least 1"),
    (lambda: define_G("set_resnet", ngf=0), "--ngf must be at least 1"),
])
def test_bad_options_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_baseline_generator_output_shape(rng):
    net = ResnetGenerator(ngf=4, n_blocks=1).double()
    assert net(random_image(rng, 2)).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("padding_type", ["reflect", "replicate"])
def test_padding_keeps_bf16_under_cpu_autocast_and_pads_as_torch_does(padding_type, rng):
    """CPU autocast would run padding in fp32 (two casts of every padded activation under --amp bf16)."""
    torch.manual_seed(0)
    net = define_G("resnet", ngf=4, n_blocks=1, padding_type=padding_type)
    pads = [m for m in net.modules() if isinstance(m, (nn.ReflectionPad2d, nn.ReplicationPad2d))]
    dtypes = []
    for pad in pads:
        pad.register_forward_hook(lambda module, inputs, output: dtypes.append((inputs[0].dtype, output.dtype)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(random_image(rng, 2).float())
    assert len(dtypes) == len(pads) and all(out == inp for inp, out in dtypes), dtypes
    assert (torch.bfloat16, torch.bfloat16) in dtypes
    x = torch.randn(2, 3, 8, 8)
    reference = nn.ReflectionPad2d(2) if padding_type == "reflect" else nn.ReplicationPad2d(2)
    assert torch.equal(networks._padding_layer(padding_type, 2)(x), reference(x))


def test_nets_given_the_instance_presence_compute_what_they_compute_without_it(small_G, small_D, rng):
    """Callers that know which slots hold instances (on the host) pass it, so the device is not asked; the
    result is the same."""
    image, masks = random_image(rng, 3), random_masks(rng, [2, 0, 3], slots=4)
    present = instance_presence(masks)
    for with_present, without in ((small_G(image, masks, present), small_G(image, masks)),
                                  ((small_D(image, masks, present),), (small_D(image, masks),))):
        for a, b in zip(with_present, without, strict=True):
            assert torch.equal(a, b)
