"""InstaGAN and CycleGAN models: sequential mini-batch, per-sample skipping, losses and updates (CPU, tiny)."""

import shlex

import pytest
import torch
from torch.nn.utils import parametrize

from models import create_model
from models.insta_gan_model import select_instances, translate_sequential
from models.losses import context_preserving_loss, merge_masks, reconstruction_loss
from options.test_options import TestOptions
from options.train_options import TrainOptions

TINY = "--ngf 4 --ndf 4 --n_blocks_G 1 --n_layers_D 2 --load_size 32 --crop_size 32 --gpu_ids -1"
SIZE = 32


def make_opt(tmp_path, extra: str = "", train: bool = True):
    cls = TrainOptions if train else TestOptions
    extra = f"--pool_size 2 {extra}" if train else extra
    argv = shlex.split(f"{TINY} --checkpoints_dir {tmp_path} --name m {extra}")
    return cls().parse(argv, save=False)


def masks_with_counts(counts: list[int], slots: int = 20) -> torch.Tensor:
    """Disjoint square instances of growing size; sample i has counts[i] of them."""
    masks = torch.full((len(counts), slots, SIZE, SIZE), -1.0)
    for sample, count in enumerate(counts):
        for k in range(count):
            top = 2 + 7 * (k % 4)
            side = 3 + k % 4
            masks[sample, k, top:top + side, 2 + sample: 2 + sample + side] = 1.0
    return masks


def make_batch(counts_a: list[int], counts_b: list[int]) -> dict:
    torch.manual_seed(0)
    batch = len(counts_a)
    return {"A": torch.rand(batch, 3, SIZE, SIZE) * 2 - 1, "A_seg": masks_with_counts(counts_a),
            "B": torch.rand(batch, 3, SIZE, SIZE) * 2 - 1, "B_seg": masks_with_counts(counts_b),
            "A_paths": [f"a{i}.png" for i in range(batch)], "B_paths": [f"b{i}.png" for i in range(batch)]}


def snapshot(model) -> dict:
    return {f"{net_name}.{name}": p.detach().clone() for net_name, net in model.networks().items()
            for name, p in net.named_parameters()}


def test_select_instances_keeps_largest_first_and_pads():
    masks = torch.full((1, 5, 8, 8), -1.0)
    masks[0, 1, :2, :2] = 1   # area 4
    masks[0, 3, :4, :4] = 1   # area 16
    masks[0, 4, :3, :3] = 1   # area 9
    kept, index = select_instances(masks, 4, "decreasing")
    areas = ((kept + 1) / 2).sum((2, 3))[0].tolist()
    assert areas == [16, 9, 4, 0]
    assert index[0].tolist() == [3, 4, 1, -1]
    assert torch.all(kept[0, 3] == -1)


def test_random_order_shuffles_the_largest_instances_and_never_picks_smaller_ones():
    """As the authors' code: the ins_max largest instances, in a random order (not a random subset)."""
    masks = torch.full((1, 6, 12, 12), -1.0)
    for slot, side in enumerate([2, 6, 3, 5, 4, 1]):   # areas 4, 36, 9, 25, 16, 1
        masks[0, slot, :side, :side] = 1
    orders = set()
    for seed in range(40):
        torch.manual_seed(seed)
        kept, index = select_instances(masks, 3, "random")
        assert sorted(index[0].tolist()) == [1, 3, 4], "random order must keep the three largest"
        assert torch.equal(kept[0], masks[0, index[0]])
        orders.add(tuple(index[0].tolist()))
    assert len(orders) == 6, "all orders of the kept instances should occur"
    few = torch.full((1, 4, 8, 8), -1.0)
    few[0, 2, :2, :2] = 1
    kept, index = select_instances(few, 3, "random")
    assert index[0].tolist() == [2, -1, -1] and torch.all(kept[0, 1:] == -1)

def test_context_loss_is_zero_when_background_agrees_and_positive_when_it_changes():
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    masks = torch.full((2, 2, 16, 16), -1.0)
    masks[:, 0, 4:8, 4:8] = 1
    changed_inside = image.clone()
    changed_inside[:, :, 4:8, 4:8] = -image[:, :, 4:8, 4:8]
    assert context_preserving_loss(image, changed_inside, masks, masks).item() == 0.0
    changed_background = image.clone()
    changed_background[:, :, 10:, 10:] += 0.5
    assert context_preserving_loss(image, changed_background, masks, masks).item() > 0.0
    # a pixel that is instance in the OUTPUT masks only is not background either
    grown = masks.clone()
    grown[:, 0, 10:, 10:] = 1
    assert context_preserving_loss(image, changed_background, masks, grown).item() == 0.0
    assert merge_masks(masks).shape == (2, 1, 16, 16)


def test_one_step_updates_every_weight_and_keeps_spectral_norm_consistent(tmp_path):
    model = create_model(make_opt(tmp_path))
    before = snapshot(model)
    model.set_input(make_batch([2, 1], [1, 2]))
    model.optimize_parameters()
    after = snapshot(model)
    unchanged = [name for name in before if name.endswith(("weight", "original"))
                 and torch.equal(before[name], after[name])]
    assert not unchanged, unchanged
    assert {n.split(".")[0] for n in before} == {"G_A", "G_B", "D_A", "D_B"}
    for net in (model.netD_A, model.netD_B):
        convs = [m for m in net.modules() if parametrize.is_parametrized(m, "weight")]
        assert convs
        net.eval()
        for conv in convs:
            sn = conv.parametrizations.weight[0]
            u, v, original = sn._u, sn._v, conv.parametrizations.weight.original
            assert torch.isfinite(u).all() and torch.isfinite(v).all()
            assert torch.allclose(u.norm(), torch.tensor(1.0), atol=1e-4)
            assert torch.allclose(v.norm(), torch.tensor(1.0), atol=1e-4)
            sigma = torch.dot(u, original.flatten(1) @ v)
            assert torch.allclose(conv.weight * sigma, original, atol=1e-5)
    for net in model.networks().values():
        assert not any(parametrize.is_parametrized(m) for m in net.modules()) or net in (model.netD_A, model.netD_B)
    assert all(torch.isfinite(torch.tensor(v)) for v in model.get_current_losses().values())


def count_generator_calls(model) -> list[tuple[str, int]]:
    calls = []
    for name in ("G_A", "G_B"):
        net = getattr(model, f"net{name}")
        net.register_forward_hook(lambda m, args, out, name=name: calls.append((name, args[0].shape[0])))
    return calls


def test_sequential_ins_per_1_ins_max_4_makes_4_generator_updates(tmp_path):
    model = create_model(make_opt(tmp_path, "--ins_max 4 --ins_per 1"))
    model.set_input(make_batch([4, 4], [5, 4]))
    model.optimize_parameters()
    assert model.num_G_updates == 4
    one_step = create_model(make_opt(tmp_path, "--ins_max 4 --ins_per 4"))
    one_step.set_input(make_batch([4, 4], [5, 4]))
    one_step.optimize_parameters()
    assert one_step.num_G_updates == 1


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_empty_groups_are_skipped_per_sample_not_per_batch(tmp_path, norm):
    model = create_model(make_opt(tmp_path, f"--ins_max 4 --ins_per 1 --norm {norm}"))
    calls = count_generator_calls(model)
    model.set_input(make_batch([3, 1, 0], [1, 1, 1]))
    # which slots hold instances is known on the host, so choosing each step's samples never waits for a GPU
    assert model.instance_present["A"].device.type == "cpu"
    assert model.instance_present["A"].tolist() == [[True] * 3 + [False], [True] + [False] * 3, [False] * 4]
    model.optimize_parameters()
    # A-inputs: step 0 all 3 samples, step 1-2 only sample 0; B-inputs: only step 0; no step 3 at all
    assert model.num_G_updates == 3
    if norm == "instance":
        # each generator runs once on its translations + the other direction's identities, once on the
        # reconstructions: step 0 G_A(A, B), G_B(B, A), G_B(fake B), G_A(fake A); later only A's samples
        assert calls[:4] == [("G_A", 6), ("G_B", 6), ("G_B", 3), ("G_A", 3)]
    else:
        # batch norm: every call alone, so each normalises over its own inputs
        assert [size for _, size in calls[:6]] == [3] * 6
    assert calls[len(calls) - 6:] == [("G_A", 1), ("G_B", 1), ("G_B", 1)] * 2


def test_real_masks_come_with_their_host_presence_and_translated_masks_without(tmp_path):
    """Generator calls on real masks and D on real images get the host's (B, K) presence, so no device is asked
    which slots hold instances; calls on translated masks (which can saturate to empty) work it out themselves."""
    model = create_model(make_opt(tmp_path, "--batch_size 2 --ins_max 4 --ins_per 2"))
    model.set_input(make_batch([3, 1], [2, 2]))
    seen = {name: [] for name in ("G_A", "G_B", "D_A", "D_B")}
    for name, calls in seen.items():
        getattr(model, f"net{name}").register_forward_pre_hook(
            lambda module, args, calls=calls: calls.append(args[2] if len(args) > 2 else None))
    model.optimize_parameters()
    first_round, second_round = seen["G_A"][0], seen["G_A"][1]
    assert first_round.device.type == "cpu" and first_round.dtype == torch.bool
    # G_A's first call: A's translation inputs, then B's identity inputs (step 0: every sample, slots 0-1)
    assert first_round.tolist() == [[True, True], [True, False], [True, True], [True, True]]
    assert second_round is None
    # D_A per step: G's adversarial term (translated masks), then real B with its presence, then pooled fakes
    assert seen["D_A"][0] is None and seen["D_A"][2] is None
    assert seen["D_A"][1].tolist() == [[True, True, False, False]] * 2


def first_update(model, batch: dict) -> tuple[dict, dict]:
    """Losses and generator gradients of the first update (the generators') of one training step."""
    model.set_input(batch)
    update = next(model.training_updates())
    sum(update.losses.values()).backward()
    grads = {f"{net}.{name}": p.grad.clone() for net in ("G_A", "G_B")
             for name, p in getattr(model, f"net{net}").named_parameters()}
    return {name: loss.detach() for name, loss in update.losses.items()}, grads


def test_batched_generator_calls_equal_separate_calls(tmp_path):
    """Each generator runs once on concatenated independent inputs; losses, gradients and the weights after a
    whole step equal those of one call per input (instance norm and the instance sums work per sample)."""
    models = []
    for batched in (True, False):
        torch.manual_seed(0)
        model = create_model(make_opt(tmp_path, "--batch_size 3 --ins_max 4 --ins_per 2 --compose_output"))
        model.batch_generator_calls = batched
        models.append(model)
    batch = make_batch([3, 1, 0], [2, 2, 4])
    (losses, grads), (separate_losses, separate_grads) = (first_update(m, batch) for m in models)
    assert losses.keys() == separate_losses.keys()
    for name in losses:
        assert torch.allclose(losses[name], separate_losses[name], rtol=1e-5, atol=1e-7), name
    # summation order differs with the batch layout; biases before instance norm get only rounding noise
    flat, separate_flat = (torch.cat([g.flatten() for g in gs.values()]) for gs in (grads, separate_grads))
    assert (flat - separate_flat).norm() < 1e-5 * separate_flat.norm()
    scale = separate_flat.abs().max()
    for name in grads:
        assert torch.allclose(grads[name], separate_grads[name], rtol=1e-3, atol=1e-5 * scale), name
    start = snapshot(models[0])
    for model in models:
        for net in model.networks().values():
            net.zero_grad(set_to_none=True)
        model.set_input(batch)
        torch.manual_seed(1)   # the same image-pool draws
        model.optimize_parameters()
    # a whole step (two G and two D updates), compared as one vector of weight changes. Adam's first steps are
    # about lr * sign(gradient), so the biases before instance norm, whose gradient is rounding noise, move by
    # +-lr either way: left out
    noise = {name for name, grad in separate_grads.items() if grad.abs().max() < 1e-4 * scale}
    assert noise and all(name.endswith(".bias") for name in noise)
    change, separate_change = (torch.cat([(w - start[name]).flatten() for name, w in snapshot(m).items()
                                          if name not in noise]) for m in models)
    # (the rest of Adam's division by sqrt(v) turns fp32 noise into about 1%; a mixed-up output would be ~100%)
    assert (change - separate_change).norm() < 0.05 * separate_change.norm()
    assert torch.allclose(models[0].fake_B_img, models[1].fake_B_img, atol=1e-5)


def test_training_with_batch_size_3_and_different_instance_counts(tmp_path):
    model = create_model(make_opt(tmp_path, "--batch_size 3 --set_order random"))
    model.set_input(make_batch([1, 3, 0], [2, 0, 4]))
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    visuals = model.get_current_visuals()
    assert visuals["fake_B_img"].shape == (3, 3, SIZE, SIZE)
    assert visuals["fake_B_seg"].shape == (3, 4, SIZE, SIZE)
    # sample 2 of A has no instance: its translated masks stay empty
    assert torch.all(visuals["fake_B_seg"][2] == -1)


def test_test_time_translation_handles_more_instances_than_training(tmp_path):
    opt = make_opt(tmp_path, "--ins_max 20 --ins_per 2", train=False)
    model = create_model(opt)
    model.set_input({k: v for k, v in make_batch([7, 0], [1, 1]).items() if k.startswith("A")})
    model.test()
    assert model.fake_B_seg.shape == (2, 20, SIZE, SIZE)
    present = (model.fake_B_seg > -1).flatten(2).any(2)
    assert present[0].sum() == 7 and present[1].sum() == 0


def test_one_group_sequential_equals_one_generator_call(tmp_path):
    model = create_model(make_opt(tmp_path))
    model.netG_A.eval()
    masks, _ = select_instances(masks_with_counts([3, 1]), 4, "decreasing")
    image = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        direct = model.netG_A(image, masks)
    sequential = translate_sequential(model.netG_A, image, masks, ins_per=4)
    assert torch.allclose(direct[0], sequential[0]) and torch.allclose(direct[1], sequential[1])


def test_cycle_gan_baseline_updates_with_batch_size_3(tmp_path):
    model = create_model(make_opt(tmp_path, "--model cycle_gan --batch_size 3"))
    before = snapshot(model)
    model.set_input(make_batch([1, 1, 1], [1, 1, 1]))
    model.optimize_parameters()
    after = snapshot(model)
    assert all(not torch.equal(before[n], after[n]) for n in before if n.endswith("weight"))
    assert set(model.get_current_losses()) == {"D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"}


@pytest.mark.parametrize("model_name", ["insta_gan", "cycle_gan"])
def test_save_and_load_networks_round_trip(tmp_path, model_name):
    model = create_model(make_opt(tmp_path, f"--model {model_name}"))
    model.save_networks("latest")
    fresh = create_model(make_opt(tmp_path, f"--model {model_name}"))
    fresh.load_networks("latest")
    for name, net in model.networks().items():
        theirs = fresh.networks()[name].state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in net.state_dict().items())


@pytest.mark.parametrize("model_name", ["insta_gan", "cycle_gan"])
def test_bf16_autocast_on_cpu_runs_a_step_with_finite_losses(tmp_path, model_name):
    model = create_model(make_opt(tmp_path, f"--model {model_name} --amp bf16 --channels_last --batch_size 2"))
    model.setup(model.opt)
    before = snapshot(model)
    model.set_input(make_batch([2, 1], [1, 2]))
    model.optimize_parameters()
    assert all(torch.isfinite(torch.tensor(v)) for v in model.get_current_losses().values())
    after = snapshot(model)
    assert all(torch.isfinite(p).all() for p in after.values())
    assert sum(not torch.equal(before[n], after[n]) for n in before) > len(before) // 2


def test_fp32_default_is_not_autocast(tmp_path):
    model = create_model(make_opt(tmp_path))
    with model.autocast():
        assert not torch.is_autocast_enabled("cpu")


# ---------------------------------------------------------------------- the model contract
def first_update_losses(tmp_path, extra: str) -> dict[str, float]:
    """Losses of the first generator update of a fresh, seeded model (nothing stepped yet)."""
    torch.manual_seed(0)
    model = create_model(make_opt(tmp_path, f"--batch_size 2 {extra}"))
    model.set_input(make_batch([3, 2], [2, 3]))
    update = next(model.training_updates())
    return {name: float(value.detach()) for name, value in update.losses.items()}


def test_instagan_loss_weights_scale_each_term_as_documented(tmp_path):
    base = first_update_losses(tmp_path, "--lambda_A 10 --lambda_B 10 --lambda_idt 1 --lambda_ctx 1")
    double_a = first_update_losses(tmp_path, "--lambda_A 20 --lambda_B 10 --lambda_idt 1 --lambda_ctx 1")
    triple_ctx = first_update_losses(tmp_path, "--lambda_A 10 --lambda_B 10 --lambda_idt 1 --lambda_ctx 3")
    half_idt = first_update_losses(tmp_path, "--lambda_A 10 --lambda_B 10 --lambda_idt 0.5 --lambda_ctx 1")
    # lambda_A weighs the A-input terms: cycle_A, ctx_A and idt_B (G_B leaving A inputs unchanged)
    for name in ("cycle_A", "ctx_A", "idt_B"):
        assert double_a[name] == pytest.approx(2 * base[name], rel=1e-5), name
    for name in ("G_A", "G_B", "cycle_B", "ctx_B", "idt_A"):
        assert double_a[name] == pytest.approx(base[name], rel=1e-6), name
    for name in ("ctx_A", "ctx_B"):
        assert triple_ctx[name] == pytest.approx(3 * base[name], rel=1e-5), name
    assert triple_ctx["cycle_A"] == pytest.approx(base["cycle_A"], rel=1e-6)
    for name in ("idt_A", "idt_B"):
        assert half_idt[name] == pytest.approx(0.5 * base[name], rel=1e-5), name
    assert base["ctx_A"] > 0 and base["idt_B"] > 0 and base["cycle_A"] > 0


def test_idt_mask_weight_scales_only_the_mask_part_of_the_identity_loss(tmp_path):
    image, masks = torch.rand(2, 3, 8, 8), torch.rand(2, 2, 8, 8)
    target_image, target_masks = torch.rand(2, 3, 8, 8), torch.rand(2, 2, 8, 8)
    paper = reconstruction_loss(image, masks, target_image, target_masks)
    assert reconstruction_loss(image, masks, target_image, target_masks, mask_weight=1.0 + 1e-12) == \
        pytest.approx(float(paper), rel=1e-6)
    image_only = reconstruction_loss(image, masks, target_image, target_masks, mask_weight=0.0)
    assert image_only == pytest.approx(3 / 5 * float((image - target_image).abs().mean()), rel=1e-6)
    base = first_update_losses(tmp_path, "--lambda_idt 1")
    light_masks = first_update_losses(tmp_path, "--lambda_idt 1 --idt_mask_weight 0.1")
    for name in ("idt_A", "idt_B"):
        assert 0 < light_masks[name] < base[name], name
    for name in ("cycle_A", "cycle_B", "ctx_A", "G_A"):
        assert light_masks[name] == pytest.approx(base[name], rel=1e-6), name


def test_cycle_gan_identity_is_weighted_by_the_other_domains_lambda(tmp_path):
    base = first_update_losses(tmp_path, "--model cycle_gan --lambda_A 10 --lambda_B 10 --lambda_idt 0.5")
    double_b = first_update_losses(tmp_path, "--model cycle_gan --lambda_A 10 --lambda_B 20 --lambda_idt 0.5")
    assert double_b["idt_A"] == pytest.approx(2 * base["idt_A"], rel=1e-5)      # |G_A(b) - b| * lambda_B
    assert double_b["cycle_B"] == pytest.approx(2 * base["cycle_B"], rel=1e-5)
    assert double_b["idt_B"] == pytest.approx(base["idt_B"], rel=1e-6)


def record_calls(net: torch.nn.Module) -> list[tuple]:
    calls: list[tuple] = []
    net.register_forward_hook(lambda module, inputs, output: calls.append(
        ([x.detach().clone() for x in inputs], [y.detach().clone() for y in output]
         if isinstance(output, tuple) else output.detach().clone())))
    return calls


def test_translated_image_feeds_the_next_step_and_translated_masks_accumulate_for_d(tmp_path):
    model = create_model(make_opt(tmp_path, "--batch_size 2 --ins_max 4 --ins_per 2"))
    model.set_input(make_batch([4, 4], [4, 4]))
    g_calls, d_calls = record_calls(model.netG_A), record_calls(model.netD_A)
    model.optimize_parameters()
    # G_A per step: [translate A, identity of B] in one call, then reconstruct B's translation -> calls 0 and 2
    # translate A in their first two samples
    step0_in, step0_out = [x[:2] for x in g_calls[0][0]], [y[:2] for y in g_calls[0][1]]
    step1_in, step1_out = [x[:2] for x in g_calls[2][0]], [y[:2] for y in g_calls[2][1]]
    assert torch.equal(step0_in[0], model.real_A_img)
    assert torch.equal(g_calls[0][0][0][2:], model.real_B_img)
    assert torch.equal(step1_in[0], step0_out[0]), "step 1 must translate the image step 0 produced"
    assert torch.equal(step1_in[1], model.real_A_seg[:, 2:4])
    assert torch.equal(model.fake_B_img, step1_out[0])
    # D_A per step: G's adversarial term on [fake image, all masks translated so far], then real, then fake
    step0_masks, step1_masks = d_calls[0][0][1], d_calls[3][0][1]
    assert torch.equal(step0_masks[:, :2], step0_out[1]) and torch.all(step0_masks[:, 2:] == -1)
    assert torch.equal(step1_masks[:, :2], step0_out[1]), "step 0's translated masks must stay in D's input"
    assert torch.equal(step1_masks[:, 2:], step1_out[1])
    assert torch.equal(model.fake_B_seg, torch.cat([step0_out[1], step1_out[1]], 1))


def test_each_update_steps_only_its_own_optimiser_and_leaves_no_gradients(tmp_path):
    model = create_model(make_opt(tmp_path, "--model template --batch_size 2"))
    model.set_input(make_batch([1, 1], [1, 1]))
    updates = model.training_updates()
    before = snapshot(model)
    model.apply_update(next(updates))
    after_g = snapshot(model)
    changed = {name for name in before if not torch.equal(before[name], after_g[name])}
    assert changed and all(name.startswith("G.") for name in changed)
    assert all(p.grad is None for net in model.networks().values() for p in net.parameters())
    model.apply_update(next(updates))
    after_d = snapshot(model)
    changed = {name for name in before if not torch.equal(after_g[name], after_d[name])}
    assert changed and all(name.startswith("D.") for name in changed)


def test_a_model_that_overrides_optimize_parameters_is_refused():
    from models.base_model import BaseModel, ModelContractError

    with pytest.raises(ModelContractError, match="training_updates"):
        class HandRolled(BaseModel):
            def optimize_parameters(self):
                pass


def test_a_model_that_calls_backward_itself_is_stopped_before_stepping(tmp_path):
    from models.base_model import ModelContractError, Update

    model = create_model(make_opt(tmp_path, "--model template"))
    model.set_input(make_batch([1], [1]))
    model.forward()
    loss = model.netG(model.real_A).mean()
    loss.backward()
    with pytest.raises(ModelContractError, match="backward"):
        model.apply_update(Update(model.optimizer_G, {"G_l1": loss}))


def test_an_undeclared_loss_or_optimiser_is_named(tmp_path):
    from models.base_model import ModelContractError, Update

    model = create_model(make_opt(tmp_path, "--model template"))
    model.set_input(make_batch([1], [1]))
    model.forward()
    before = snapshot(model)
    with pytest.raises(ModelContractError, match="'G_extra'.*loss_names"):
        model.apply_update(Update(model.optimizer_G, {"G_extra": model.fake_B.abs().mean()}))
    assert all(torch.equal(value, snapshot(model)[name]) for name, value in before.items()), "stepped anyway"
    stray = torch.optim.SGD(model.netG.parameters(), lr=0.1)
    with pytest.raises(ModelContractError, match="self.optimizers"):
        model.apply_update(Update(stray, {"G_l1": model.fake_B.abs().mean()}))


def test_visual_kinds_must_be_declared(tmp_path):
    from models.base_model import ModelContractError

    model = create_model(make_opt(tmp_path, "--model template"))
    model.visual_names = ["real_A", "fake_B"]
    with pytest.raises(ModelContractError, match="IMAGE"):
        model.check_declarations()
    model.visual_names = {"real_A": "picture"}
    with pytest.raises(ModelContractError, match="picture"):
        model.check_declarations()


def test_a_nan_loss_raises_before_any_weight_changes(tmp_path):
    from models.base_model import NonFiniteLossError

    model = create_model(make_opt(tmp_path, "--batch_size 2"))
    batch = make_batch([2, 1], [1, 2])
    batch["A"][0, 0, 0, 0] = float("nan")
    model.set_input(batch)
    before = snapshot(model)
    with pytest.raises(NonFiniteLossError, match="is nan"):
        model.optimize_parameters()
    after = snapshot(model)
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_fp16_scales_the_loss_and_the_scaler_state_is_resumed(tmp_path):
    model = create_model(make_opt(tmp_path, "--amp fp16 --batch_size 2"))
    model.setup(model.opt)
    model.set_input(make_batch([2, 1], [1, 2]))
    model.optimize_parameters()
    scalers = model.grad_scalers
    assert len(scalers) == 2 and all(s.is_enabled() and s.get_scale() > 1 for s in scalers)
    scalers[0].update(new_scale=1024.0)   # as after overflows had backed it off
    state = model.training_state()
    fresh = create_model(make_opt(tmp_path, "--amp fp16 --batch_size 2"))
    fresh.setup(fresh.opt)
    fresh.load_training_state(state, tmp_path / "state.pth")
    assert fresh.grad_scalers[0].get_scale() == 1024.0
    assert fresh.grad_scalers[1].get_scale() == scalers[1].get_scale()


def test_the_template_model_in_the_docs_is_the_file():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "writing_a_model.md").read_text()
    block = doc.split("```python\n", 1)[1].split("```", 1)[0]
    assert block == (root / "models" / "template_model.py").read_text()


# ---------------------------------------------------------------------- test-time directions and instance ids
def single_batch(domain: str, counts: list[int], seg_ids: torch.Tensor | None = None) -> dict:
    """What single_seg yields for folder ``domain`` (keys named A: the domain being translated)."""
    batch = {key.replace(domain, "A") if key.startswith(domain) else key: value
             for key, value in make_batch(counts, counts).items() if key.startswith(domain)}
    batch["domain"] = [domain] * len(counts)
    if seg_ids is not None:
        batch["A_seg_ids"] = seg_ids
    return batch


@pytest.mark.parametrize(("train_direction", "folder", "expected"),
                         [("AtoB", "A", "G_A"), ("AtoB", "B", "G_B"), ("BtoA", "B", "G_A"), ("BtoA", "A", "G_B")])
def test_test_time_uses_the_generator_trained_for_that_folder(tmp_path, train_direction, folder, expected):
    """G_A learned the training's source folder: folder B when trained with --direction BtoA."""
    opt = make_opt(tmp_path, "--ins_max 4", train=False)
    opt.train_direction = train_direction
    model = create_model(opt)
    calls = {name: record_calls(net) for name, net in (("G_A", model.netG_A), ("G_B", model.netG_B))}
    model.set_input(single_batch(folder, [2]))
    model.test()
    assert calls[expected] and not calls["G_B" if expected == "G_A" else "G_A"]
    other = "B" if folder == "A" else "A"
    visuals = model.get_current_visuals()
    assert {f"real_{folder}_img", f"fake_{other}_img", f"fake_{other}_seg"} <= set(visuals)
    assert not any(name.startswith((f"real_{other}", f"fake_{folder}")) for name in visuals)


def test_a_second_test_pass_shows_only_its_own_folders_visuals(tmp_path):
    model = create_model(make_opt(tmp_path, "--ins_max 4", train=False))
    model.set_input(single_batch("A", [1]))
    model.test()
    model.set_input(single_batch("B", [1]))
    model.test()
    assert set(model.get_current_visuals()) == {"real_B_img", "real_B_seg", "fake_A_img", "fake_A_seg"}


def test_translated_masks_carry_the_number_of_the_mask_file_they_came_from(tmp_path):
    model = create_model(make_opt(tmp_path, "--ins_max 4", train=False))
    masks = torch.full((1, 20, SIZE, SIZE), -1.0)
    masks[0, 0, :3, :3] = 1     # file _0: small
    masks[0, 1, :9, :9] = 1     # file _2: large
    masks[0, 2, 10:16, :6] = 1  # file _5: medium
    ids = torch.tensor([[0, 2, 5] + [-1] * 17])
    batch = single_batch("A", [0], ids)
    batch["A_seg"] = masks
    model.set_input(batch)
    model.test()
    assert model.instance_ids["real_A_seg"][0].tolist() == [2, 5, 0, -1]   # largest first, named by file
    assert torch.equal(model.instance_ids["fake_B_seg"], model.instance_ids["real_A_seg"])
    assert torch.equal(model.real_A_seg[0, 0], masks[0, 1])


def test_cycle_gan_variants_upstream_and_the_authors_runs(tmp_path):
    def has_spectral_norm(net: torch.nn.Module) -> bool:
        return any(parametrize.is_parametrized(m) or hasattr(m, "weight_orig") for m in net.modules())

    upstream = create_model(make_opt(tmp_path, "--model cycle_gan"))
    authors = create_model(make_opt(tmp_path, "--model cycle_gan --variant authors"))
    explicit = create_model(make_opt(tmp_path, "--model cycle_gan --variant authors --lambda_idt 0.25"))
    assert (upstream.opt.lambda_idt, authors.opt.lambda_idt, explicit.opt.lambda_idt) == (0.5, 1.0, 0.25)
    assert not has_spectral_norm(upstream.netD_A) and has_spectral_norm(authors.netD_A)
    assert not has_spectral_norm(authors.netG_A)


@pytest.mark.parametrize("step_idle", [False, True])
def test_an_idle_discriminator_moves_only_with_step_idle_params(tmp_path, step_idle):
    """The authors' code (old PyTorch's zero_grad) let Adam's momentum move a D that had no loss in a step."""
    from models.base_model import Update

    model = create_model(make_opt(tmp_path, "--batch_size 2"))
    model.opt.step_idle_params = step_idle
    model.set_input(make_batch([2, 2], [2, 2]))
    model.optimize_parameters()    # both Ds stepped once: Adam has momentum for them
    before = snapshot(model)
    loss = model.criterion_gan(model.netD_B(model.real_A_img, model.real_A_seg), True)
    model.apply_update(Update(model.optimizer_D, {"D_B": loss}))   # D_A idle in this update
    after = snapshot(model)
    moved = any(not torch.equal(before[n], after[n]) for n in before if n.startswith("D_A."))
    assert moved == step_idle
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("D_B."))


def test_compose_output_keeps_the_input_outside_the_input_and_translated_masks(tmp_path):
    """--compose_output (not in the paper): test and training translations change only pixels of objects."""
    batch = make_batch([2, 1], [1, 3])
    for train in (False, True):
        model = create_model(make_opt(tmp_path, "--ins_max 4 --compose_output", train=train))
        model.set_input(batch if train else single_batch("A", [2, 1]))
        if train:
            model.optimize_parameters()
        else:
            model.test()
        outside = ((model.real_A_seg > 0).any(1) | (model.fake_B_seg > 0).any(1))[:, None].logical_not()
        outside = outside.expand_as(model.real_A_img)
        assert outside.any() and torch.equal(model.fake_B_img[outside], model.real_A_img[outside].to(model.fake_B_img.dtype))
    plain = create_model(make_opt(tmp_path, "--ins_max 4", train=False))
    plain.set_input(single_batch("A", [2, 1]))
    plain.test()
    assert not torch.equal(plain.fake_B_img, plain.real_A_img)


def test_test_time_takes_compose_output_from_the_training_run(tmp_path):
    train_opt = TrainOptions().parse(shlex.split(f"{TINY} --checkpoints_dir {tmp_path} --name m --compose_output"))
    assert train_opt.compose_output
    assert make_opt(tmp_path, "", train=False).compose_output
