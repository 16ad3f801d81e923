"""pix2pixHD networks and losses: the reference's parameter counts, shapes at 64 px, instance-wise pooling, the
label / boundary maps, feature matching weights and the VGG loss from a local weights file."""

import pytest
import torch
from torch import nn

from models.hd_networks import (
    Encoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    define_hd_D,
    define_hd_encoder,
    define_hd_G,
    instance_boundary_map,
    instance_mean,
    one_hot_labels,
)
from models.losses import MultiscaleGANLoss, VGGPerceptualLoss, feature_matching_loss
from models.networks import count_parameters

torch.set_num_threads(1)


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------------------------------------- sizes
def test_parameter_counts_equal_the_reference():
    # Cityscapes setup: 35 labels + instance boundary in, RGB out; D sees label, boundary and image (39 channels).
    assert count_parameters(GlobalGenerator(36, 3, ngf=64, n_downsampling=4, n_blocks=9)) == 182_546_755
    local = LocalEnhancer(36, 3, ngf=32, n_downsample_global=4, n_blocks_global=9, n_local_enhancers=1,
                          n_blocks_local=3)
    assert count_parameters(local) == 182_857_059
    assert count_parameters(MultiscaleDiscriminator(39, 64, 3, num_D=2)) == 5_603_202
    assert count_parameters(MultiscaleDiscriminator(39, 64, 3, num_D=3)) == 8_404_803
    assert count_parameters(Encoder(3, 3, ngf=16, n_downsampling=4)) == 788_803


def test_factories_build_the_same_nets_and_initialise_them():
    torch.manual_seed(0)
    g = define_hd_G("local", 5, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=2,
                    n_blocks_local=1)
    assert isinstance(g, LocalEnhancer) and isinstance(define_hd_G("global", 5, 3, ngf=4), GlobalGenerator)
    d = define_hd_D(8, ndf=4, n_layers_D=2, norm="batch", num_D=2)
    e = define_hd_encoder(3, feat_num=3, nef=4, n_downsampling=2)
    for net in (g, d, e):
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        assert all(m.bias is not None and not m.bias.any() for m in convs)  # every conv has a bias (as the ref)
        weights = torch.cat([m.weight.flatten() for m in convs])
        assert abs(weights.mean()) < 0.005 and 0.015 < weights.std() < 0.025
    batch_norms = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert batch_norms and all((m.weight - 1).abs().max() < 0.2 for m in batch_norms)
    with pytest.raises(ValueError, match="--netG"):
        define_hd_G("encoder")


# ---------------------------------------------------------------------------------------------- shapes at 64 px
def test_generators_keep_the_input_size(rng):
    x = torch.rand(2, 5, 64, 64, generator=rng) * 2 - 1
    nets = [define_hd_G("global", 5, 3, ngf=4, n_downsample_global=3, n_blocks_global=1),
            define_hd_G("local", 5, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=1,
                        n_blocks_local=1),
            define_hd_G("local", 5, 3, ngf=2, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=2,
                        n_blocks_local=1)]
    for net in nets:
        with torch.no_grad():
            y = net(x)
        assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1


def test_generators_reject_sizes_that_do_not_divide():
    net = define_hd_G("local", 5, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.zeros(1, 5, 60, 64))


def test_local_enhancer_layout_follows_the_reference():
    net = LocalEnhancer(5, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=2, n_blocks_local=1)
    assert net.model[1].out_channels == 16  # global width ngf * 2 ** n_local_enhancers
    assert isinstance(net.model[-1], nn.ReLU)  # the global part ends on a feature map
    assert (net.model1_1[1].out_channels, net.model1_1[4].out_channels) == (8, 16)
    assert (net.model2_1[1].out_channels, net.model2_1[4].out_channels) == (4, 8)
    assert not isinstance(net.model1_2[-1], nn.Tanh) and isinstance(net.model2_2[-1], nn.Tanh)
    assert net.downsample.count_include_pad is False


def test_enhancer_parameters_hold_no_global_parameter():
    net = LocalEnhancer(5, 3, ngf=4, n_downsample_global=2, n_blocks_global=1, n_local_enhancers=2, n_blocks_local=1)
    enhancers = {id(p) for p in net.enhancer_parameters()}
    global_ = {id(p) for p in net.global_parameters()}
    assert enhancers and not enhancers & global_
    assert enhancers | global_ == {id(p) for p in net.parameters()}
    finest = {id(p) for p in net.enhancer_parameters(finest_only=True)}
    assert finest == {id(p) for p in [*net.model2_1.parameters(), *net.model2_2.parameters()]}


def test_multiscale_discriminator_returns_every_layer_per_scale_finest_first(rng):
    net = define_hd_D(8, ndf=4, n_layers_D=3, num_D=3)
    outputs = net(torch.rand(2, 8, 64, 64, generator=rng))
    assert len(outputs) == 3 and all(len(scale) == 5 for scale in outputs)
    assert [f.shape[1] for f in outputs[0]] == [4, 8, 16, 32, 1]
    sizes = [scale[-1].shape[-1] for scale in outputs]
    assert sizes == [11, 7, 5]  # 64 -> 33 -> 17 -> 9 (stride 2), -> 10 -> 11 (stride 1, padding 2: +1 each)
    assert [scale[0].shape[-1] for scale in outputs] == [33, 17, 9]


def test_multiscale_discriminator_scales_match_the_reference_names(rng):
    """Scale k of the reference sees the input downsampled num_D - 1 - k times; one PatchGAN run by hand."""
    net = define_hd_D(3, ndf=4, n_layers_D=2, num_D=2)
    x = torch.rand(1, 3, 32, 32, generator=rng)
    outputs = net(x)
    with torch.no_grad():
        h = x
        for j in range(4):
            h = getattr(net, f"scale1_layer{j}")(h)
        torch.testing.assert_close(outputs[0][-1], h)
    plain = MultiscaleDiscriminator(3, ndf=4, n_layers=2, num_D=2, get_intermediate_features=False)
    conv_index = [0, 2, 5, 8]  # block j's conv inside the reference's flat ``layer<k>`` Sequential
    plain.load_state_dict({f"layer{k}.{conv_index[j]}.{kind}": getattr(net, f"scale{k}_layer{j}")[0]
                           .state_dict()[kind] for k in range(2) for j in range(4) for kind in ("weight", "bias")})
    single = plain(x)
    assert [len(scale) for scale in single] == [1, 1]
    for scale in range(2):
        torch.testing.assert_close(single[scale][0], outputs[scale][-1])


def test_multiscale_gan_loss_sums_the_predictions_of_all_scales():
    prediction = [[torch.zeros(1, 2, 2, 2), torch.full((1, 1, 3, 3), 0.5)], [torch.ones(1, 2), torch.zeros(1, 1, 2, 2)]]
    loss = MultiscaleGANLoss("lsgan")
    torch.testing.assert_close(loss(prediction, True), torch.tensor(0.25 + 1.0))
    torch.testing.assert_close(loss(prediction, False), torch.tensor(0.25 + 0.0))
    torch.testing.assert_close(loss(prediction[0], True), torch.tensor(0.25))


# ---------------------------------------------------------------------------------------------- encoder
def test_encoder_output_is_the_instance_mean_of_its_raw_features(rng):
    torch.manual_seed(0)
    net = define_hd_encoder(3, feat_num=3, nef=4, n_downsampling=2).double()
    image = torch.rand(2, 3, 8, 8, generator=rng, dtype=torch.float64) * 2 - 1
    inst = torch.randint(0, 3, (2, 1, 8, 8), generator=rng) * 1000 + 7  # ids 7, 1007, 2007, as in Cityscapes
    inst[1, :, :4] = 5  # an id only the second sample has
    out = net(image, inst)
    raw = net.model(image)
    assert out.shape == (2, 3, 8, 8)
    for b in range(2):
        for instance in inst[b].unique():
            where = inst[b, 0] == instance
            for c in range(3):
                values = out[b, c][where]
                assert torch.all(values == values[0])  # constant inside the instance
                torch.testing.assert_close(values[0], raw[b, c][where].mean())


def test_instance_mean_is_per_sample_and_passes_gradients(rng):
    features = torch.rand(2, 2, 4, 4, generator=rng, dtype=torch.float64, requires_grad=True)
    inst = torch.zeros(2, 1, 4, 4, dtype=torch.long)  # same id 0 in both samples: two different instances
    out = instance_mean(features, inst)
    torch.testing.assert_close(out[0, :, 0, 0], features[0].mean((1, 2)))
    torch.testing.assert_close(out[1, :, 0, 0], features[1].mean((1, 2)))
    out[0, 0].sum().backward()
    torch.testing.assert_close(features.grad[0, 0], torch.ones(4, 4, dtype=torch.float64))
    assert not features.grad[1].any()
    with pytest.raises(ValueError, match="integer ids"):
        instance_mean(features, inst.double())


# ---------------------------------------------------------------------------------------------- input maps
def test_boundary_map_marks_both_sides_of_a_boundary_and_no_interior():
    inst = torch.zeros(1, 1, 6, 6, dtype=torch.long)
    inst[..., 3:] = 26001  # left half id 0, right half another id: the boundary runs between columns 2 and 3
    inst[..., 0, 0] = 0
    edges = instance_boundary_map(inst)
    expected = torch.zeros(1, 1, 6, 6)
    expected[..., 2:4] = 1
    assert edges.dtype == torch.float32 and torch.equal(edges, expected)
    inst[..., 4, 0] = 9  # a one-pixel instance inside the left half: it and its 4 neighbours are marked
    edges = instance_boundary_map(inst)
    expected[..., 4, 0] = expected[..., 3, 0] = expected[..., 5, 0] = expected[..., 4, 1] = 1
    assert torch.equal(edges, expected)
    assert not instance_boundary_map(torch.full((2, 1, 5, 5), 3)).any()


def test_one_hot_labels_round_trip_and_out_of_range_ids(rng):
    label = torch.randint(0, 35, (2, 1, 8, 8), generator=rng)
    one_hot = one_hot_labels(label, 35)
    assert one_hot.shape == (2, 35, 8, 8) and one_hot.dtype == torch.float32
    assert torch.equal(one_hot.sum(1), torch.ones(2, 8, 8))
    assert torch.equal(one_hot.argmax(1, keepdim=True), label)
    with pytest.raises(ValueError, match="--label_nc"):
        one_hot_labels(torch.full((1, 1, 2, 2), 35), 35)
    with pytest.raises(ValueError, match="--label_nc"):
        one_hot_labels(torch.full((1, 1, 2, 2), -1), 35)


# ---------------------------------------------------------------------------------------------- feature matching
def _features(rng, scales: int, n_layers: int) -> list[list[torch.Tensor]]:
    return [[torch.rand(1, 2, 4, 4, generator=rng) for _ in range(n_layers + 2)] for _ in range(scales)]


def test_feature_matching_is_zero_for_identical_features(rng):
    real = _features(rng, 2, 3)
    fake = [[f.clone().requires_grad_() for f in scale] for scale in real]
    assert feature_matching_loss(fake, real, n_layers_D=3, num_D=2).item() == 0


def test_feature_matching_weights_layers_and_scales_as_the_reference(rng):
    n_layers, num_D = 3, 2
    real = _features(rng, num_D, n_layers)
    fake = [[f.clone() for f in scale] for scale in real]
    fake[1][2] = fake[1][2] + 1  # one intermediate layer of the second scale differs by 1 everywhere
    fake[0][-1] = fake[0][-1] + 5  # the prediction is not matched
    loss = feature_matching_loss(fake, real, n_layers, num_D)
    torch.testing.assert_close(loss, torch.tensor(4 / (n_layers + 1) / num_D * 1.0))


def test_feature_matching_sends_no_gradient_to_the_real_features(rng):
    real = [[f.requires_grad_() for f in scale] for scale in _features(rng, 2, 2)]
    fake = [[torch.rand(1, 2, 4, 4, generator=rng, requires_grad=True) for _ in scale] for scale in real]
    feature_matching_loss(fake, real, n_layers_D=2, num_D=2).backward()
    assert all(f.grad is None for scale in real for f in scale)
    assert all(f.grad is not None for scale in fake for f in scale[:-1]) and fake[0][-1].grad is None
    with pytest.raises(ValueError, match="--num_D"):
        feature_matching_loss(fake, real, n_layers_D=2, num_D=3)


# ---------------------------------------------------------------------------------------------- VGG loss
@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> str:
    """A random-weights VGG19 ``features`` state dict in torchvision's naming (never a download)."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    features = vgg19(weights=None).features
    path = tmp_path_factory.mktemp("vgg") / "vgg19_random.pth"
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()}, path)
    return str(path)


def test_vgg_loss_zero_for_identical_images_positive_otherwise_and_frozen(vgg_file, rng):
    loss = VGGPerceptualLoss(vgg_file)
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.slices.training
    real = torch.rand(1, 3, 32, 32, generator=rng) * 2 - 1
    assert loss(real.clone(), real).item() == 0
    fake = (torch.rand(1, 3, 32, 32, generator=rng) * 2 - 1).requires_grad_()
    value = loss(fake, real)
    assert value.item() > 0
    value.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert [f.shape[1] for f in loss.features(real)] == [64, 128, 256, 512, 512]
    reference_inputs = VGGPerceptualLoss(vgg_file, imagenet_normalize=False)
    assert reference_inputs(fake, real).item() != value.item()


def test_vgg_loss_names_the_option_for_a_missing_or_wrong_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="--vgg_weights"):
        VGGPerceptualLoss(str(tmp_path / "absent.pth"))
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(ValueError, match="--vgg_weights.*not a torchvision VGG19"):
        VGGPerceptualLoss(str(wrong))
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="--vgg_weights"):
        VGGPerceptualLoss(str(text))


def test_vgg_loss_reads_the_full_torchvision_layout_and_a_features_only_dict(vgg_file, tmp_path, rng):
    state = torch.load(vgg_file, weights_only=True)
    full = tmp_path / "vgg19_full.pth"  # as vgg19-dcbb9e9d.pth: features.* and classifier.* keys
    torch.save({**state, "classifier.6.bias": torch.zeros(1000)}, full)
    bare = tmp_path / "vgg19_features.pth"  # as vgg19().features.state_dict(): keys "0.weight", ...
    torch.save({key.removeprefix("features."): value for key, value in state.items()}, bare)
    image, other = torch.rand(2, 1, 3, 16, 16, generator=rng) * 2 - 1
    values = [VGGPerceptualLoss(str(path))(image, other) for path in (vgg_file, full, bare)]
    assert values[0] > 0 and values[0] == values[1] == values[2]
