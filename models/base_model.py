"""The model contract every model file implements.

A model declares what it has and what it minimises; this class does the rest:

- ``model_names``: networks, as attributes ``net<name>``; saved, loaded and compiled here.
- ``visual_names``: ``{name: IMAGE or MASKS}``, the tensors shown on the dashboard and the result pages.
- ``result_roles``: per translation direction it supports at test time (``AtoB``: folder A -> B, ``BtoA``),
  which visuals evaluation compares: ``input_image`` and ``output_image`` (the translation), and for mask
  models ``input_masks`` and ``output_masks`` (test.py writes them to ``visuals.json``). A mask model may
  fill ``instance_ids[visual]`` with each slot's mask-file number k, so per-instance files are named after
  the input mask ``<name>_<k>.png`` they came from.
- ``loss_names``: the losses it reports.
- ``optimizers``: the optimisers it built (a list, as in CycleGAN).
- ``set_input(batch)`` and ``forward()`` (test-time translation, run without gradients by ``test()``).
- ``training_updates()``: a generator that yields one :class:`Update` (an optimiser and the named losses
  whose sum it minimises) per optimiser step. The code between two ``yield``\\ s runs under ``--amp``
  autocast, and ``optimize_parameters`` applies each update before the generator resumes: finite check
  (agreed across torchrun ranks), loss scaling for fp16, backward into that optimiser's parameters only,
  gradient averaging across ranks, stepping, zeroing. A model never calls ``backward`` or ``step``.

Saving, loading, schedulers and the full training state for exact resume (the fp16 loss scalers
included) live here too. ``docs/writing_a_model.md`` walks through the smallest complete model.
"""

from __future__ import annotations

import argparse
import itertools
import math
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import lr_scheduler
from torch.profiler import record_function

from util import distributed
from util.checkpoint import CheckpointError, load_weights_only, save_atomic
from util.image_pool import ImagePool
from util.util import IMAGE, MASKS, VISUAL_KINDS  # models declare their visuals' kinds with these

from . import networks
from .losses import GANLoss, feature_matching_loss

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; raised before the optimiser step, so the weights are still finite.
    Under torchrun every rank raises at the same update (``name`` says where it happened)."""

    def __init__(self, name: str, value: float, limit: float | None = None):
        diverged = f", above --max_loss {limit:g}: training diverged" if limit is not None else ""
        super().__init__(f"loss {name} is {value:g}{diverged}")
        self.name = name
        self.value = value


class ModelContractError(TypeError):
    """A model file breaks the contract above; the message names the model and the fix."""


@dataclass
class Update:
    """One optimiser step: ``optimizer`` minimises the sum of ``losses`` (already weighted).

    Empty ``losses`` mean this process has nothing to learn from at this step; under torchrun it still
    joins the gradient average so the other ranks do not wait for it.
    """

    optimizer: torch.optim.Optimizer
    losses: dict[str, Tensor] = field(default_factory=dict)


class BaseModel(ABC):
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "optimize_parameters" in vars(cls):
            raise ModelContractError(
                f"{cls.__name__} overrides optimize_parameters; yield Update(optimizer, losses) from "
                f"training_updates() instead, so that autocast, loss scaling, gradient averaging across ranks and "
                f"the NaN check are applied (see docs/writing_a_model.md)")

    def __init__(self, opt: argparse.Namespace):
        self.opt = opt
        self.isTrain = opt.isTrain
        self.device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        self.loss_names: list[str] = []
        self.model_names: list[str] = []
        self.visual_names: dict[str, str] = {}
        self.result_roles: dict[str, dict[str, str]] = {}
        self.instance_ids: dict[str, Tensor] = {}
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[Any] = []
        self.image_paths: list[str] = []
        self.amp_dtype = AMP_DTYPES[getattr(opt, "amp", "none")]
        self.memory_format = torch.channels_last if getattr(opt, "channels_last", False) else torch.contiguous_format
        self.grad_scalers: list[torch.amp.GradScaler] = []
        self.loss_totals: dict[str, list[Tensor]] = {}
        if self.device.type == "cuda":
            # fixed input sizes: let cuDNN pick the fastest kernels; TF32 matmuls/convs on Ampere and newer
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Add model options or change defaults; called by the options code with the model's name."""
        return parser

    @staticmethod
    def validate_options(opt: argparse.Namespace) -> None:
        """Raise ValueError naming the option when a combination cannot work."""

    @abstractmethod
    def set_input(self, batch: dict) -> None: ...

    @abstractmethod
    def forward(self) -> None:
        """Test-time translation of the current input into the visuals."""

    @abstractmethod
    def training_updates(self) -> Iterator[Update]:
        """Yield the updates of one training step in order (see the module docstring)."""

    def check_declarations(self) -> None:
        """Fail at construction, naming the model and the fix, when its declarations are incomplete."""
        model = type(self).__name__
        if not isinstance(self.visual_names, dict):
            raise ModelContractError(f"{model}.visual_names must map each visual to its kind, e.g. "
                                     f"{{'real_A': IMAGE, 'real_A_seg': MASKS}} (from models.base_model)")
        wrong = {name: kind for name, kind in self.visual_names.items() if kind not in VISUAL_KINDS}
        if wrong:
            raise ModelContractError(f"{model}.visual_names: kinds {wrong} are neither IMAGE ({IMAGE!r}) nor "
                                     f"MASKS ({MASKS!r})")
        missing = [name for name in self.model_names if not hasattr(self, f"net{name}")]
        if missing:
            raise ModelContractError(f"{model}: model_names lists {missing} but there is no net{missing[0]}")
        for direction, roles in self.result_roles.items():
            unknown = {role: name for role, name in roles.items() if name not in self.visual_names}
            if direction not in ("AtoB", "BtoA") or unknown or not {"input_image", "output_image"} <= set(roles):
                raise ModelContractError(f"{model}.result_roles[{direction!r}] = {roles}: keys must be AtoB/BtoA, "
                                         f"each with input_image and output_image naming declared visuals")
        if self.isTrain and not self.optimizers:
            raise ModelContractError(f"{model}: no optimiser in self.optimizers; training needs at least one")

    # ------------------------------------------------------------------ set-up
    def setup(self, opt: argparse.Namespace) -> None:
        """Create schedulers when training; load weights when testing; memory format, torch.compile and
        (under torchrun) the same starting weights on every rank."""
        if self.isTrain:
            self.schedulers = [make_scheduler(optimizer, opt) for optimizer in self.optimizers]
        if not self.isTrain:
            self.load_networks(opt.epoch)
        self.print_networks(opt.verbose)
        distributed.broadcast_parameters(self.networks().values())
        for name, net in self.networks().items():
            net.to(memory_format=self.memory_format)
            if getattr(opt, "compile", False):
                setattr(self, f"net{name}", CompiledOrEager(net, name))

    # ------------------------------------------------------------------ the update, owned here
    def optimize_parameters(self) -> None:
        """One training step: run ``training_updates`` under autocast and apply every update it yields."""
        self.loss_totals = {}
        updates = self.training_updates()
        while True:
            with self.autocast(), record_function("model: forward and losses"):
                update = next(updates, None)
            if update is None:
                return
            self.apply_update(update)

    def apply_update(self, update: Update) -> None:
        """Finite check, backward (scaled for fp16) into the optimiser's parameters only, gradient average
        over ranks, step, zero."""
        optimizer = update.optimizer
        scaler = self._grad_scaler(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        if any(p.grad is not None for p in params):
            raise ModelContractError(f"{type(self).__name__}: gradients were already set before the update was "
                                     f"applied; do not call backward() in training_updates, yield the losses")
        undeclared = [name for name in update.losses if name not in self.loss_names]
        if undeclared:
            raise ModelContractError(f"{type(self).__name__} yielded loss {undeclared[0]!r}, which is not in its "
                                     f"loss_names {self.loss_names}; declare it there")
        with record_function("update: finite check"):
            self.check_finite(update.losses)
        with record_function("update: backward"):
            if update.losses:
                scaler.scale(sum(update.losses.values())).backward(inputs=params)
        with record_function("update: gradient average"):
            distributed.average_gradients(params)
        with record_function("update: optimiser step"):
            if getattr(self.opt, "step_idle_params", False):
                for param in params:   # PyTorch < 2's zero_grad() left zeros, so Adam's momentum moved idle weights
                    if param.grad is None:
                        param.grad = torch.zeros_like(param)
            if any(p.grad is not None for p in params):
                scaler.step(optimizer)
                scaler.update()
            optimizer.zero_grad(set_to_none=True)
        distributed.broadcast_buffers(self.networks().values())
        for name, value in update.losses.items():
            self.loss_totals.setdefault(name, []).append(value.detach())

    def check_finite(self, losses: dict[str, Tensor]) -> None:
        """Raise NonFiniteLossError naming the first NaN/Inf loss, or one above ``--max_loss`` (divergence), on
        every rank when any rank has one."""
        bad_name, bad_value = None, 0.0
        limit = getattr(self.opt, "max_loss", 0) or None
        if losses:
            values = torch.stack([value.detach().float().sum() for value in losses.values()])
            good = torch.isfinite(values) & (values.abs() <= limit if limit else True)
            if not bool(good.all()):  # one device sync for all losses
                index = int((~good).nonzero()[0])
                bad_name, bad_value = list(losses)[index], float(values[index])
        if distributed.any_rank(bad_name is not None, self.device):
            if bad_name is None:
                raise NonFiniteLossError("(on another rank)", float("nan"))
            raise NonFiniteLossError(bad_name, bad_value, limit if math.isfinite(bad_value) else None)

    def _grad_scaler(self, optimizer: torch.optim.Optimizer) -> torch.amp.GradScaler:
        """The optimiser's loss scaler (active for ``--amp fp16`` only), in the order of ``self.optimizers``."""
        index = next((i for i, o in enumerate(self.optimizers) if o is optimizer), None)
        if index is None:
            raise ModelContractError(f"{type(self).__name__}: an Update names an optimiser that is not in "
                                     f"self.optimizers; append every optimiser there")
        enabled = self.amp_dtype == torch.float16
        while len(self.grad_scalers) < len(self.optimizers):
            self.grad_scalers.append(torch.amp.GradScaler(self.device.type, enabled=enabled))
        return self.grad_scalers[index]

    def make_adam(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Adam:
        """Adam with ``--lr``, ``--beta1`` and ``--beta2``; the fused implementation on CPU and CUDA (the same
        update in one kernel per step: 4x faster than the per-tensor loop on a CPU)."""
        return torch.optim.Adam(parameters, lr=self.opt.lr, betas=(self.opt.beta1, self.opt.beta2),
                                fused=self.device.type in ("cpu", "cuda"))

    def autocast(self) -> torch.autocast:
        """Mixed precision per ``--amp`` (bf16 or fp16, on CPU or GPU); a no-op for ``--amp none``."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def to_device(self, tensor: Tensor) -> Tensor:
        return tensor.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def networks(self) -> dict[str, nn.Module]:
        return {name: getattr(self, f"net{name}") for name in self.model_names}

    def eval(self) -> None:
        for net in self.networks().values():
            net.eval()

    def train(self) -> None:
        for net in self.networks().values():
            net.train()

    def test(self) -> None:
        """Forward pass without gradients, under ``--amp`` autocast (test.py)."""
        with torch.no_grad(), self.autocast():
            self.forward()

    # ------------------------------------------------------------------ reporting
    def clear_visuals(self) -> None:
        """Forget the previous input's visuals (a test pass over folder B must not show folder A's)."""
        for name in self.visual_names:
            self.__dict__.pop(name, None)
        self.instance_ids = {}

    def get_current_visuals(self) -> OrderedDict:
        """``{name: tensor}`` of the declared visuals that exist now (``visual_names`` says their kinds)."""
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names if hasattr(self, name))

    def get_current_losses(self) -> OrderedDict:
        """Each declared loss averaged over the updates of the last step (0.0 when it was not computed)."""
        return OrderedDict((name, float(torch.stack(self.loss_totals[name]).float().mean())
                            if name in self.loss_totals else 0.0) for name in self.loss_names)

    def get_image_paths(self) -> list[str]:
        return self.image_paths

    def update_learning_rate(self) -> float:
        for scheduler in self.schedulers:
            scheduler.step()
        return self.optimizers[0].param_groups[0]["lr"] if self.optimizers else 0.0

    def print_networks(self, verbose: bool) -> None:
        if not distributed.is_main_process():
            return
        for name, net in self.networks().items():
            count = sum(p.numel() for p in net.parameters() if p.requires_grad)
            if verbose:
                print(net)
            print(f"[Network {name}] {count / 1e6:.3f} M trainable parameters")

    # ------------------------------------------------------------------ weights
    def network_path(self, epoch: int | str, name: str) -> Path:
        return self.save_dir / f"{epoch}_net_{name}.pth"

    def save_networks(self, epoch: int | str) -> None:
        """Write ``<epoch>_net_<name>.pth`` per network (weights only), atomically."""
        for name, net in self.networks().items():
            save_atomic(unwrap(net).state_dict(), self.network_path(epoch, name))

    def load_networks(self, epoch: int | str) -> None:
        for name, net in self.networks().items():
            path = self.network_path(epoch, name)
            load_state_checked(unwrap(net), load_weights_only(path, self.device), path, self.opt)

    # ------------------------------------------------------------------ full training state
    def training_state(self) -> dict:
        """Weights plus everything else exact resume needs (optimisers, schedulers, fp16 loss scalers, extra
        state), in one file so that a crash between two files can never pair new weights with old optimiser
        state."""
        return {
            "networks": {name: unwrap(net).state_dict() for name, net in self.networks().items()},
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "grad_scalers": [self._grad_scaler(o).state_dict() for o in self.optimizers],
            "extra": self.extra_state(),
        }

    def load_training_state(self, state: dict, path: Path) -> None:
        missing = [name for name in self.networks() if name not in state.get("networks", {})]
        saved_optimizers = len(state.get("optimizers", []))
        if missing or saved_optimizers != len(self.optimizers):
            what = f"no network {missing[0]}" if missing else f"{saved_optimizers} optimisers, not {len(self.optimizers)}"
            raise CheckpointError(f"{path} is the training state of another model ({what}): resume with the --model "
                                  f"it was trained with (see {path.parent}/train_opt.txt)")
        for name, net in self.networks().items():
            load_state_checked(unwrap(net), state["networks"][name], path, self.opt)
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        for optimizer, saved in zip(self.optimizers, state.get("grad_scalers", [])):  # older files have none
            if saved:
                self._grad_scaler(optimizer).load_state_dict(saved)
        self.load_extra_state(state["extra"])

    def extra_state(self) -> dict:
        """Model-specific state to resume exactly (image pools, counters); override as needed."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


class CompiledOrEager(nn.Module):
    """``torch.compile`` of a network that falls back to eager mode, with one warning, where compiling fails."""

    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        self.module = module
        self.name = name
        # dynamic shapes from the start: instance batches, active samples and masks per image change every step,
        # and specialising on each new shape recompiled 38 times in 60 steps of the CPU demo (minutes each time)
        object.__setattr__(self, "compiled", torch.compile(module, dynamic=True))  # not a registered submodule
        self.failed = False

    def forward(self, *args):
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
                self.failed = True
                print(f"warning: --compile failed for net{self.name} ({type(err).__name__}: "
                      f"{str(err).splitlines()[0] if str(err) else ''}); running it without compiling")
        return self.module(*args)


class TwoDomainGANModel(BaseModel):
    """CycleGAN's arrangement, shared by InstaGAN and the CycleGAN baseline: G_A maps A -> B and D_A judges
    domain B (G_B, D_B the reverse); image pools of fakes; one Adam for both Gs and one for both Ds.

    pix2pixHD's multi-scale discriminator and feature matching are options of both models (docs/method.md,
    "Multi-scale discriminator and feature matching"): ``--num_D N`` makes each D N copies of the model's own
    discriminator judging the input at full, 1/2, ... resolution (GAN losses summed over the scales, see
    :meth:`gan_loss`); ``--lambda_feat`` adds a mean-feature-matching loss ``G_<X>_feat`` to the generators (see
    :meth:`adversarial_losses`). ``--num_D 1 --lambda_feat 0`` (the defaults) is the plain model, unchanged."""

    # ------------------------------------------------------------------ multi-scale D options
    @staticmethod
    def add_multiscale_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """``--num_D`` (train and test, so that test.py inherits it) and ``--lambda_feat`` (training)."""
        g = parser.add_argument_group("multi-scale discriminator (pix2pixHD)")
        g.add_argument("--num_D", type=int, default=1,
                       help="discriminators per domain, judging the input at full, 1/2, 1/4, ... resolution "
                            "(pix2pixHD); 1: the single discriminator")
        if is_train:
            g.add_argument("--lambda_feat", type=float, default=0.0,
                           help="weight of the discriminator mean-feature-matching loss of the generators "
                                "(0: off; pix2pixHD uses 10 with paired features, see docs/method.md)")
        return parser

    @staticmethod
    def validate_multiscale_options(opt: argparse.Namespace) -> None:
        """--num_D at least 1 and, when training on a known input size, small enough that the coarsest scale still
        fits the discriminator (--n_layers_D halvings leaving at least 3 pixels); --lambda_feat non-negative."""
        num_D = getattr(opt, "num_D", 1)
        if num_D < 1:
            raise ValueError(f"--num_D must be at least 1 (got {num_D})")
        validate_loss_weights(opt, ("lambda_feat",))
        if not getattr(opt, "isTrain", False) or num_D == 1 or opt.preprocess == "none":
            return
        side = min((opt.load_size_h, opt.load_size_w) if opt.preprocess == "resize"
                   else (opt.crop_size_h, opt.crop_size_w))
        need = 3 * 2 ** opt.n_layers_D   # the side a discriminator needs (see validate_discriminator_depth)
        coarsest = networks.multiscale_side(side, num_D - 1)
        if coarsest < need:
            fits = max(n for n in range(1, num_D) if networks.multiscale_side(side, n - 1) >= need)
            smallest = -(-((need - 1) * 2 ** (num_D - 1) + 1) // 4) * 4   # and a multiple of 4, for the generators
            raise ValueError(f"--num_D {num_D} is too many for {side}-pixel inputs: the coarsest scale (1/"
                             f"{2 ** (num_D - 1)}) would be {coarsest} pixels, and a discriminator with --n_layers_D "
                             f"{opt.n_layers_D} needs at least {need}; use --num_D {fits} or less, or inputs of at "
                             f"least {smallest} pixels for --num_D {num_D}")

    def multiscale_loss_names(self, names: list[str]) -> list[str]:
        """``names`` with ``G_<X>_feat`` after each ``G_<X>`` when the feature-matching loss is on."""
        if self.lambda_feat <= 0:
            return names
        return [added for name in names
                for added in ((name, f"{name}_feat") if name in ("G_A", "G_B") else (name,))]

    @property
    def lambda_feat(self) -> float:
        return (getattr(self.opt, "lambda_feat", 0.0) or 0.0) if self.isTrain else 0.0

    # ------------------------------------------------------------------ networks
    def build_networks(self, make_generator, make_discriminator) -> None:
        """``make_generator(input_nc, output_nc)`` and ``make_discriminator(input_nc)`` build one network; with
        ``--num_D N > 1`` each D is :class:`~models.networks.MultiscaleDiscriminators` of N of them."""
        opt = self.opt
        self.model_names = ["G_A", "G_B", "D_A", "D_B"] if self.isTrain else ["G_A", "G_B"]
        self.netG_A = make_generator(opt.input_nc, opt.output_nc).to(self.device)
        self.netG_B = make_generator(opt.output_nc, opt.input_nc).to(self.device)
        if not self.isTrain:
            return
        num_D = getattr(opt, "num_D", 1)

        def make_D(input_nc: int) -> nn.Module:   # --num_D 1: the model's discriminator itself, same keys
            if num_D == 1:
                return make_discriminator(input_nc)
            return networks.MultiscaleDiscriminators([make_discriminator(input_nc) for _ in range(num_D)],
                                                     opt.n_layers_D)
        self.netD_A = make_D(opt.output_nc).to(self.device)
        self.netD_B = make_D(opt.input_nc).to(self.device)
        self.fake_A_pool = ImagePool(opt.pool_size)
        self.fake_B_pool = ImagePool(opt.pool_size)
        self.criterion_gan = GANLoss(opt.gan_mode)
        self.optimizer_G = self.make_adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()))
        self.optimizer_D = self.make_adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()))
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def test_generators(self, src: str) -> tuple[nn.Module, nn.Module]:
        """(translating, reconstructing) generator for test inputs of folder ``src``. G_A learned the training's
        source side: folder A after ``--direction AtoB``, folder B after ``BtoA`` (``opt.train_direction``)."""
        a_side = "A" if self.has_B or getattr(self.opt, "train_direction", "AtoB") == "AtoB" else "B"
        return (self.netG_A, self.netG_B) if src == a_side else (self.netG_B, self.netG_A)

    @staticmethod
    def both_directions_roles(with_masks: bool) -> dict[str, dict[str, str]]:
        """Result roles of a model translating either folder: ``real_A_img -> fake_B_img`` and back."""
        roles = {}
        for src, dst in (("A", "B"), ("B", "A")):
            roles[f"{src}to{dst}"] = {"input_image": f"real_{src}_img", "output_image": f"fake_{dst}_img"}
            if with_masks:
                roles[f"{src}to{dst}"].update(input_masks=f"real_{src}_seg", output_masks=f"fake_{dst}_seg")
        return roles

    # ------------------------------------------------------------------ adversarial losses
    def gan_loss(self, prediction: Tensor | list[Tensor], target_is_real: bool) -> Tensor:
        """The GAN loss of a discriminator's prediction; of a multi-scale one's, the sum over its scales
        (pix2pixHD)."""
        if isinstance(prediction, Tensor):
            return self.criterion_gan(prediction, target_is_real)
        loss = self.criterion_gan(prediction[0], target_is_real)
        for scale in prediction[1:]:
            loss = loss + self.criterion_gan(scale, target_is_real)
        return loss

    def adversarial_losses(self, name: str, netD: nn.Module, fake: tuple[Tensor, ...],
                           real: tuple[Tensor, ...]) -> dict[str, Tensor]:
        """The generator's adversarial losses against ``netD`` for the translation ``fake`` (D's inputs):
        ``{name: GAN(D(fake), real)}`` and, with ``--lambda_feat``, ``{name_feat: ...}``, the mean-feature matching

            lambda_feat * sum_k sum_i (4 / (n_layers_D + 1)) (1 / num_D) |mean f_k^(i)(fake) - mean f_k^(i)(real)|_1

        where f_k^(i) is D's i-th intermediate feature at scale k and the means run over the batch and the
        positions: the translation and the real target-domain images of the batch (``real``) are unpaired, so
        their features are matched in distribution (Salimans et al. 2016), not position by position as in
        pix2pixHD (docs/method.md). The real side runs without gradient and with the weights of the fake side (no
        second spectral-norm power iteration); the G update steps only the generators."""
        lambda_feat = self.lambda_feat
        if lambda_feat <= 0:
            return {name: self.gan_loss(netD(*fake), True)}
        net = unwrap(netD)
        fake_features = networks.discriminator_features(net, *fake)   # its last output is D's prediction
        with torch.no_grad(), networks.spectral_norm_frozen(net):
            real_features = networks.discriminator_features(net, *real)
        return {name: self.gan_loss([scale[-1] for scale in fake_features], True),
                f"{name}_feat": lambda_feat * feature_matching_loss(
                    self.mean_features(fake_features), self.mean_features(real_features), self.opt.n_layers_D,
                    len(fake_features))}

    @staticmethod
    def mean_features(features: list[list[Tensor]]) -> list[list[Tensor]]:
        """Each (B, C, h, w) feature averaged over the batch and the positions: one (C,) vector per feature."""
        return [[feature.mean(dim=(0, 2, 3)) for feature in scale] for scale in features]

    # ------------------------------------------------------------------ resume
    def extra_state(self) -> dict:
        return {"fake_A_pool": self.fake_A_pool.state_dict(), "fake_B_pool": self.fake_B_pool.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.fake_A_pool.load_state_dict(state["fake_A_pool"], self.device)
        self.fake_B_pool.load_state_dict(state["fake_B_pool"], self.device)


def validate_loss_weights(opt: argparse.Namespace, names: tuple[str, ...]) -> None:
    """Loss weights are finite and non-negative; an identity loss needs inputs and outputs of the same channels
    (the generator into a domain is fed that domain's own images)."""
    for name in names:
        value = getattr(opt, name, 0)
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ValueError(f"--{name} must be a non-negative number (got {value})")
    if (getattr(opt, "lambda_idt", 0) or 0) > 0 and opt.input_nc != opt.output_nc:
        raise ValueError(f"the identity loss feeds each generator images of its own output domain, so it needs "
                         f"--input_nc {opt.input_nc} == --output_nc {opt.output_nc}; pass --lambda_idt 0 to train "
                         f"without it")


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module under a DistributedDataParallel or torch.compile wrapper."""
    while True:
        inner = getattr(net, "module", None) or getattr(net, "_orig_mod", None)
        if inner is None:
            return net
        net = inner


def load_state_checked(net: nn.Module, state: dict, path: Path, opt: argparse.Namespace) -> None:
    """Load a state dict; on mismatch name the file and the likely option difference, not every key."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        detail = []
        if wrong:
            key, theirs, ours = wrong[0]
            detail.append(f"{len(wrong)} tensor(s) differ in shape, e.g. {key}: file {theirs} vs model {ours} "
                          f"(different --ngf/--ndf/--input_nc?)")
        if missing or unexpected:
            detail.append(f"{len(missing)} missing and {len(unexpected)} unexpected key(s), e.g. "
                          f"{(missing or unexpected)[0]} (different --n_blocks_G/--n_layers_D/--norm/--model?)")
        raise CheckpointError(f"{path} does not fit the network built from the options: {'; '.join(detail)}. "
                              f"Use the options the checkpoint was trained with (see {path.parent}/train_opt.txt)")
    net.load_state_dict(state)


def make_scheduler(optimizer: torch.optim.Optimizer, opt: argparse.Namespace):
    """Linear: constant for ``niter`` epochs, then linearly to zero over ``niter_decay`` epochs."""
    if opt.lr_policy == "linear":
        def linear_decay(epoch: int) -> float:
            return 1.0 - max(0, epoch + opt.epoch_count - opt.niter) / float(opt.niter_decay + 1)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=linear_decay)
    if opt.lr_policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=opt.lr_decay_iters, gamma=0.1)
    if opt.lr_policy == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=opt.niter + opt.niter_decay, eta_min=0)
    raise ValueError(f"--lr_policy {opt.lr_policy} is not implemented")
