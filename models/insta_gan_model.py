"""InstaGAN: instance-aware unpaired translation with sequential mini-batch training (docs/method.md).

Naming follows CycleGAN: G_A maps A -> B and D_A judges domain B; G_B maps B -> A and D_B judges A.
Each data batch is translated in groups of ``ins_per`` instances (``ins_max / ins_per`` steps), with one
G and one D update per step. Aggregation is per sample, so any batch size works.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from util import distributed

from . import networks
from .base_model import IMAGE, MASKS, TwoDomainGANModel, Update, validate_loss_weights
from .losses import context_preserving_loss, reconstruction_loss


def select_instances(masks: Tensor, ins_max: int, order: str) -> tuple[Tensor, Tensor]:
    """Keep the ``ins_max`` largest instances of each sample, largest first (``decreasing``) or in a random
    order (``random``, as the authors' code: the same largest instances, shuffled); empty slots last (-1).

    Returns the kept masks (B, ins_max, H, W) and, per kept slot, the input slot it came from (-1 when empty).
    """
    batch, _, height, width = masks.shape
    present = networks.instance_presence(masks)
    area = (masks + 1).sum((2, 3)).masked_fill(~present, float("-inf"))
    index = area.argsort(dim=1, descending=True, stable=True)[:, :ins_max]
    kept_present = torch.gather(present, 1, index)
    if order == "random":
        shuffle = torch.rand(index.shape).to(masks.device).masked_fill(~kept_present, float("-inf"))
        permutation = shuffle.argsort(dim=1, descending=True, stable=True)
        index, kept_present = torch.gather(index, 1, permutation), torch.gather(kept_present, 1, permutation)
    kept = torch.gather(masks, 1, index[:, :, None, None].expand(-1, -1, height, width))
    kept = kept.masked_fill(~kept_present[:, :, None, None], -1.0)
    index = index.masked_fill(~kept_present, -1)
    if kept.shape[1] < ins_max:
        missing = ins_max - kept.shape[1]
        kept = torch.cat([kept, kept.new_full((batch, missing, height, width), -1.0)], 1)
        index = torch.cat([index, index.new_full((batch, missing), -1)], 1)
    return kept, index


def instance_ids(index: Tensor, slot_ids: Tensor | None) -> Tensor:
    """The mask-file number k (``<name>_<k>.png``) of each kept slot, -1 for empty slots; without the
    dataset's ids (``<X>_seg_ids``) the input slot number stands in."""
    if slot_ids is None:
        return index.clone()
    ids = torch.gather(slot_ids.to(index.device), 1, index.clamp(min=0))
    return ids.masked_fill(index < 0, -1)


def instance_groups(num_slots: int, ins_per: int) -> list[slice]:
    """Consecutive slot groups translated one step each: [0:ins_per], [ins_per:2*ins_per], ..."""
    return [slice(start, min(start + ins_per, num_slots)) for start in range(0, num_slots, ins_per)]


def active_samples(group_present: Tensor, step: int) -> Tensor:
    """Indices of samples translated in this step, from the (B, slots) presence of the group's instances: all
    at step 0 (so images without instances are still translated), afterwards only those with an instance in
    the group. Given a host tensor, it runs on the host: no device synchronisation."""
    if step == 0:
        return torch.arange(group_present.shape[0], device=group_present.device)
    return group_present.any(1).nonzero().squeeze(1)


def compose_through_masks(image: Tensor, fake_image: Tensor, masks: Tensor, fake_masks: Tensor) -> Tensor:
    """``--compose_output``: out = m * G(x) + (1 - m) * x, m = 1 where any input or translated mask is above
    its half-way value 0 (masks in [-1, 1]): the generator paints only where objects are or become. m is hard,
    so the input is kept exactly elsewhere (a soft tanh mask is never exactly -1) and the image losses do not
    train the masks."""
    region = (torch.cat([masks, fake_masks], 1) > 0).any(1, keepdim=True)
    return torch.where(region, fake_image, image.to(fake_image.dtype))


@torch.no_grad()
def translate_sequential(generator: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], image: Tensor, masks: Tensor, ins_per: int) -> tuple[Tensor, Tensor]:
    """Test-time sequential translation (any number of slots): returns the final image and all masks."""
    image = image.clone()
    translated = torch.full_like(masks, -1.0)
    for step, group in enumerate(instance_groups(masks.shape[1], ins_per)):
        active = active_samples(networks.instance_presence(masks[:, group]), step)
        if active.numel() == 0:
            break
        fake_image, fake_masks = generator(image[active], masks[active, group])
        image[active] = fake_image.to(image.dtype)
        translated[active, group] = fake_masks.to(translated.dtype)
    return image, translated


@dataclass
class Direction:
    """Per-direction state of one sequential pass (``src`` -> ``dst``)."""

    src: str                 # "A" or "B": the input domain
    real_image: Tensor       # original input images (B, C, H, W)
    real_masks: Tensor       # selected input masks (B, ins_max, H, W)
    present: Tensor          # (B, ins_max) bool on the host: which selected slots hold an instance
    current_image: Tensor    # image carried over between steps (detached)
    fake_masks: Tensor       # translated masks so far, -1 where not yet translated
    rec_image: Tensor        # latest reconstruction of each sample (for the visuals)
    rec_masks: Tensor        # reconstructed masks so far


class InstaGanModel(TwoDomainGANModel):
    inherited_from_training = ("compose_output", "num_D")

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(dataset_mode="unaligned_seg" if is_train else "single_seg")
        g = parser.add_argument_group("instagan")
        g.add_argument("--ins_max", type=int, default=4, help="instances per image used (largest first)")
        g.add_argument("--ins_per", type=int, default=2, help="instances translated per sequential step")
        g.add_argument("--set_order", default="decreasing", choices=["decreasing", "random"],
                       help="order of instances: largest area first, or shuffled")
        g.add_argument("--compose_output", action="store_true",
                       help="not in the paper: keep the input outside the input and translated masks, "
                            "out = m * G(x) + (1 - m) * x (test.py takes it from the training run)")
        TwoDomainGANModel.add_multiscale_options(parser, is_train)
        if is_train:
            g.add_argument("--lambda_A", type=float, default=10.0, help="weight of cycle loss A -> B -> A")
            g.add_argument("--lambda_B", type=float, default=10.0, help="weight of cycle loss B -> A -> B")
            g.add_argument("--lambda_idt", type=float, default=1.0, help="identity weight, times lambda_A/B")
            g.add_argument("--idt_mask_weight", type=float, default=1.0,
                           help="not in the paper: scales the mask channels' part of the identity loss "
                                "(1: the paper's L1 over image and masks alike; e.g. 0.1 with --lambda_idt 10 "
                                "keeps the masks' identity at the paper's weight)")
            g.add_argument("--lambda_ctx", type=float, default=1.0, help="context-preserving weight, times lambda_A/B")
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        if opt.ins_max < 1 or opt.ins_per < 1:
            raise ValueError(f"--ins_max {opt.ins_max} and --ins_per {opt.ins_per} must be at least 1")
        if opt.ins_max % opt.ins_per:
            raise ValueError(f"--ins_per {opt.ins_per} must divide --ins_max {opt.ins_max} "
                             f"(e.g. --ins_per 2 --ins_max 4); --ins_per equal to --ins_max is the one-step variant")
        if opt.ins_max > opt.max_instances:
            raise ValueError(f"--ins_max {opt.ins_max} exceeds --max_instances {opt.max_instances}, the mask slots "
                             f"loaded per image; raise --max_instances")
        if opt.dataset_mode not in ("unaligned_seg", "single_seg"):
            raise ValueError(f"--model insta_gan needs masks: use --dataset_mode unaligned_seg (or single_seg "
                             f"at test time), not {opt.dataset_mode}")
        validate_loss_weights(opt, ("lambda_A", "lambda_B", "lambda_idt", "lambda_ctx", "idt_mask_weight"))
        TwoDomainGANModel.validate_multiscale_options(opt)

    def __init__(self, opt: argparse.Namespace):
        super().__init__(opt)
        self.loss_names = self.multiscale_loss_names(["D_A", "G_A", "cycle_A", "idt_A", "ctx_A", "D_B", "G_B",
                                                      "cycle_B", "idt_B", "ctx_B"])
        self.visual_names = {
            "real_A_img": IMAGE, "real_A_seg": MASKS, "fake_B_img": IMAGE, "fake_B_seg": MASKS,
            "rec_A_img": IMAGE, "rec_A_seg": MASKS, "real_B_img": IMAGE, "real_B_seg": MASKS,
            "fake_A_img": IMAGE, "fake_A_seg": MASKS, "rec_B_img": IMAGE, "rec_B_seg": MASKS}
        self.result_roles = self.both_directions_roles(with_masks=True)
        self.build_networks(self._make_generator, self._make_discriminator)
        self.num_G_updates = 0
        self.with_reconstructions = self.isTrain or getattr(opt, "save_reconstructions", False)
        self.batch_generator_calls = opt.norm != "batch"   # see _generate_all
        self.instance_present: dict[str, Tensor] = {}      # per domain, set by set_input

    def _make_generator(self, input_nc: int, output_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_G("set_resnet", input_nc, output_nc, opt.ngf, opt.n_blocks_G, opt.norm,
                                 opt.init_type, opt.init_gain)

    def _make_discriminator(self, input_nc: int) -> torch.nn.Module:
        opt = self.opt
        return networks.define_D("set_patch", input_nc, opt.ndf, opt.n_layers_D, opt.norm, opt.init_type,
                                 opt.init_gain, spectral_norm=True, init_D=opt.init_D)

    # ------------------------------------------------------------------ input
    def set_input(self, batch: dict) -> None:
        """Training (``unaligned_seg``): both domains, keys ``A``/``B``. Testing (``single_seg``): one folder,
        named by ``batch["domain"]``, so its visuals are ``real_B_img``, ``fake_A_img``, ... for folder B."""
        self.clear_visuals()
        select = self.opt.set_order if self.isTrain else "decreasing"
        self.image_paths = batch["A_paths"]
        self.has_B = "B" in batch
        self.source = "A" if self.has_B else batch.get("domain", ["A"])[0]
        self._load_domain(self.source, batch, "A", select)
        if self.has_B:
            self._load_domain("B", batch, "B", select)

    def _load_domain(self, letter: str, batch: dict, key: str, select: str) -> None:
        """Select instances where the loader put the masks (the host), so that which samples take part in each
        sequential step is known there without waiting for the device."""
        masks, index = select_instances(batch[f"{key}_seg"], self.opt.ins_max, select)
        setattr(self, f"real_{letter}_img", self.to_device(batch[key]))
        setattr(self, f"real_{letter}_seg", self.to_device(masks))
        self.instance_present[letter] = (index >= 0).cpu()
        self.instance_ids[f"real_{letter}_seg"] = instance_ids(index, batch.get(f"{key}_seg_ids"))

    # ------------------------------------------------------------------ test-time translation
    def forward(self) -> None:
        """Translate every instance sequentially without gradients (test.py), in each loaded domain."""
        ins_per = self.opt.ins_per
        for src in ("A", "B") if self.has_B else (self.source,):
            dst = "B" if src == "A" else "A"
            forward_G, backward_G = (partial(self._generate, net) for net in self.test_generators(src))
            image, masks = getattr(self, f"real_{src}_img"), getattr(self, f"real_{src}_seg")
            fake_image, fake_masks = translate_sequential(forward_G, image, masks, ins_per)
            setattr(self, f"fake_{dst}_img", fake_image)
            setattr(self, f"fake_{dst}_seg", fake_masks)
            self.instance_ids[f"fake_{dst}_seg"] = self.instance_ids[f"real_{src}_seg"]
            if self.with_reconstructions:
                rec_image, rec_masks = translate_sequential(backward_G, fake_image, fake_masks, ins_per)
                setattr(self, f"rec_{src}_img", rec_image)
                setattr(self, f"rec_{src}_seg", rec_masks)

    # ------------------------------------------------------------------ training
    def training_updates(self) -> Iterator[Update]:
        """Sequential mini-batch (docs/method.md): per instance group, translate both directions, update G on
        their losses, then D; the translated image and masks carry over to the next group."""
        directions = [self._start_direction(src, getattr(self, f"real_{src}_img"), getattr(self, f"real_{src}_seg"),
                                            self.instance_present[src]) for src in ("A", "B")]
        groups = instance_groups(self.opt.ins_max, self.opt.ins_per)
        for step, group in enumerate(groups[:self._steps_to_run(directions, groups)]):
            steps = [s for s in (self._start_group(d, step, group) for d in directions) if s is not None]
            self._translate_groups(steps)
            generator_losses = {name: loss for s in steps for name, loss in self._generator_losses(s).items()}
            yield Update(self.optimizer_G, generator_losses)
            self.num_G_updates += 1
            yield Update(self.optimizer_D, {self._d_loss_name(s): self._discriminator_loss(s) for s in steps})
            for s in steps:
                self._carry_over(s)
        self._store_visuals(directions)

    def _steps_to_run(self, directions: list[Direction], groups: list[slice]) -> int:
        """Sequential steps until no sample of any direction (on any torchrun rank) has an instance left: the
        selected slots hold instances first, so later groups are empty too. One agreement per batch; a rank
        with nothing left in a step still joins its updates with empty losses."""
        steps = 1 + max((step for step, group in enumerate(groups) for d in directions
                         if bool(d.present[:, group].any())), default=0)
        return distributed.max_over_ranks(steps, self.device)

    @staticmethod
    def _start_direction(src: str, image: Tensor, masks: Tensor, present: Tensor) -> Direction:
        empty = torch.full_like(masks, -1.0)
        return Direction(src, image, masks, present, image.detach().clone(), empty, image.detach().clone(),
                         empty.clone())

    def _generate(self, generator: torch.nn.Module, image: Tensor, masks: Tensor,
                  present: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One generator call: translated image and masks (composed through the masks with --compose_output).
        ``present``: the host's (B, K) presence of the input masks where known (real masks), so that the
        generator does not ask the device which slots hold instances."""
        fake_image, fake_masks = generator(image, masks) if present is None else generator(image, masks, present)
        if self.opt.compose_output:
            fake_image = compose_through_masks(image, fake_image, masks, fake_masks)
        return fake_image, fake_masks

    def _generators(self, src: str) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(forward generator, backward generator) for inputs of domain ``src``."""
        return (self.netG_A, self.netG_B) if src == "A" else (self.netG_B, self.netG_A)

    def _start_group(self, d: Direction, step: int, group: slice) -> dict | None:
        """The inputs of one group for one direction; None when no sample has an instance left."""
        active_on_host = active_samples(d.present[:, group], step)
        if active_on_host.numel() == 0:
            return None
        active = active_on_host.to(self.device, non_blocking=True)
        return {"direction": d, "active": active, "group": group, "image": d.current_image[active],
                "masks": d.real_masks[active, group], "present": d.present[active_on_host][:, group]}

    def _translate_groups(self, steps: list[dict]) -> None:
        """Forward passes of one group for every direction that has one, in two rounds of generator calls:
        the translations and identities (independent inputs), then the reconstructions of the translations.
        So each generator runs at most twice per step (see :meth:`_generate_all`)."""
        identity = self.opt.lambda_idt > 0
        first_round = []
        for s in steps:
            forward_G, backward_G = self._generators(s["direction"].src)
            first_round.append((forward_G, s["image"], s["masks"], s["present"]))
            if identity:   # the generator INTO src's domain should leave src inputs unchanged
                first_round.append((backward_G, s["image"], s["masks"], s["present"]))
        outputs = iter(self._generate_all(first_round))
        for s in steps:
            s["fake_image"], s["fake_masks"] = next(outputs)
            s["idt_image"], s["idt_masks"] = next(outputs) if identity else (None, None)
        # which translated masks are empty depends on the generator's output (a saturated mask counts as empty)
        second_round = [(self._generators(s["direction"].src)[1], s["fake_image"], s["fake_masks"], None)
                        for s in steps]
        for s, (rec_image, rec_masks) in zip(steps, self._generate_all(second_round), strict=True):
            s["rec_image"], s["rec_masks"] = rec_image, rec_masks
            s["masks_for_D"] = s["direction"].fake_masks[s["active"]].clone()
            s["masks_for_D"][:, s["group"]] = s["fake_masks"]

    def _generate_all(self, calls: list[tuple[torch.nn.Module, Tensor, Tensor, Tensor | None]]
                      ) -> list[tuple[Tensor, Tensor]]:
        """``_generate`` for each (generator, image, masks, presence or None). With ``batch_generator_calls``
        the calls to one generator run as one call on their inputs concatenated along the batch: exact, because
        instance norm (or none) and the instance sums work per sample, and faster where small batches leave a GPU
        idle. Batch norm would mix the calls' statistics, so with ``--norm batch`` every call runs on its own."""
        if not self.batch_generator_calls:
            return [self._generate(*call) for call in calls]
        outputs: list[tuple[Tensor, Tensor]] = [None] * len(calls)  # type: ignore[list-item]
        for generator in dict.fromkeys(call[0] for call in calls):
            indices = [i for i, call in enumerate(calls) if call[0] is generator]
            if len(indices) == 1:
                outputs[indices[0]] = self._generate(*calls[indices[0]])
                continue
            sizes = [calls[i][1].shape[0] for i in indices]
            presents = [calls[i][3] for i in indices]
            present = None if any(p is None for p in presents) else torch.cat(presents)
            fake_images, fake_masks = self._generate(generator, torch.cat([calls[i][1] for i in indices]),
                                                     torch.cat([calls[i][2] for i in indices]), present)
            for i, image, masks in zip(indices, fake_images.split(sizes), fake_masks.split(sizes), strict=True):
                outputs[i] = (image, masks)
        return outputs

    def _discriminator_for(self, src: str) -> torch.nn.Module:
        """D judging the translation of domain-``src`` inputs (D_A judges B, CycleGAN's naming)."""
        return self.netD_A if src == "A" else self.netD_B

    @staticmethod
    def _d_loss_name(s: dict) -> str:
        return "D_A" if s["direction"].src == "A" else "D_B"

    def _generator_losses(self, s: dict) -> dict[str, Tensor]:
        """Adversarial (+ feature matching with --lambda_feat) + cycle + identity + context losses of one
        direction's current group. The real side of the feature matching: the target domain's images of the batch
        with all their masks, as D sees them in its own update."""
        opt = self.opt
        src = s["direction"].src
        dst = "B" if src == "A" else "A"
        lam = opt.lambda_A if src == "A" else opt.lambda_B
        netD = self._discriminator_for(src)
        real = (getattr(self, f"real_{dst}_img"), getattr(self, f"real_{dst}_seg"), self.instance_present[dst])
        losses = {
            **self.adversarial_losses(f"G_{src}", netD, (s["fake_image"], s["masks_for_D"]), real),
            f"cycle_{src}": lam * reconstruction_loss(s["rec_image"], s["rec_masks"], s["image"], s["masks"]),
        }
        if s["idt_image"] is not None:   # identity: the generator INTO src's domain leaves src inputs unchanged
            losses[f"idt_{dst}"] = lam * opt.lambda_idt * reconstruction_loss(
                s["idt_image"], s["idt_masks"], s["image"], s["masks"], mask_weight=opt.idt_mask_weight)
        losses[f"ctx_{src}"] = lam * opt.lambda_ctx * context_preserving_loss(s["image"], s["fake_image"],
                                                                              s["masks"], s["fake_masks"])
        return losses

    def _discriminator_loss(self, s: dict) -> Tensor:
        """0.5 * (MSE(D(real), 1) + MSE(D(pooled fake), 0)); real = target-domain images with all their masks.
        With --num_D each term is summed over the scales."""
        src = s["direction"].src
        netD = self._discriminator_for(src)
        real_image, real_masks = (self.real_B_img, self.real_B_seg) if src == "A" else (self.real_A_img, self.real_A_seg)
        pool = self.fake_B_pool if src == "A" else self.fake_A_pool
        fake = pool.query(torch.cat([s["fake_image"], s["masks_for_D"]], 1).detach())
        channels = s["fake_image"].shape[1]
        real_present = self.instance_present["B" if src == "A" else "A"]
        loss_real = self.gan_loss(netD(real_image, real_masks, real_present), True)
        loss_fake = self.gan_loss(netD(fake[:, :channels], fake[:, channels:]), False)
        return 0.5 * (loss_real + loss_fake)

    @staticmethod
    def _carry_over(s: dict) -> None:
        """The translated image feeds the next step; translated masks accumulate for D (both detached)."""
        d, active, group = s["direction"], s["active"], s["group"]
        dtype = d.current_image.dtype  # under --amp the networks' outputs are bf16/fp16
        d.current_image[active] = s["fake_image"].detach().to(dtype)
        d.fake_masks[active, group] = s["fake_masks"].detach().to(dtype)
        d.rec_masks[active, group] = s["rec_masks"].detach().to(dtype)
        d.rec_image[active] = s["rec_image"].detach().to(dtype)

    def _store_visuals(self, directions: list[Direction]) -> None:
        for d in directions:
            dst = "B" if d.src == "A" else "A"
            setattr(self, f"fake_{dst}_img", d.current_image)
            setattr(self, f"fake_{dst}_seg", d.fake_masks)
            setattr(self, f"rec_{d.src}_img", d.rec_image)
            setattr(self, f"rec_{d.src}_seg", d.rec_masks)

    # ------------------------------------------------------------------ resume
    def extra_state(self) -> dict:
        return {**super().extra_state(), "num_G_updates": self.num_G_updates}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.num_G_updates = state["num_G_updates"]
