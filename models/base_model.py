"""The model contract every model file implements (CycleGAN's, kept small).

A subclass sets ``loss_names``, ``visual_names`` and ``model_names`` (networks are attributes
``net<name>``), and implements ``set_input``, ``forward`` and ``optimize_parameters``. Saving,
loading, schedulers and the full training state for exact resume live here.
"""

from __future__ import annotations

import argparse
import itertools
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from util import distributed
from util.checkpoint import CheckpointError, load_weights_only, save_atomic
from util.image_pool import ImagePool

from .losses import GANLoss

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; raised before the optimiser step, so the weights are still finite."""

    def __init__(self, name: str, value: float):
        super().__init__(f"loss {name} is {value}")
        self.name = name
        self.value = value


class BaseModel(ABC):
    def __init__(self, opt: argparse.Namespace):
        self.opt = opt
        self.isTrain = opt.isTrain
        self.device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
        self.save_dir = Path(opt.checkpoints_dir) / opt.name
        self.loss_names: list[str] = []
        self.model_names: list[str] = []
        self.visual_names: list[str] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[Any] = []
        self.image_paths: list[str] = []
        self.amp_dtype = AMP_DTYPES[getattr(opt, "amp", "none")]
        self.memory_format = torch.channels_last if getattr(opt, "channels_last", False) else torch.contiguous_format
        self.grad_scalers: dict[int, torch.amp.GradScaler] = {}
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
    def forward(self) -> None: ...

    @abstractmethod
    def optimize_parameters(self) -> None: ...

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

    # ------------------------------------------------------------------ precision and updates
    def autocast(self) -> torch.autocast:
        """Mixed precision per ``--amp`` (bf16 or fp16, on CPU or GPU); a no-op for ``--amp none``."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    @staticmethod
    def check_finite(losses: dict[str, torch.Tensor]) -> None:
        """Raise NonFiniteLossError naming the first NaN/Inf loss (call before stepping)."""
        for name, value in losses.items():
            if not bool(torch.isfinite(value.detach()).all()):
                raise NonFiniteLossError(name, float(value.detach().float().sum()))

    def step_optimizer(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor | None) -> None:
        """Backward (loss scaled for fp16), average gradients over torchrun ranks, step.

        ``loss`` is None on a rank with nothing to learn from in this step; it still joins the all-reduce
        so the other ranks do not wait for it.
        """
        scaler = self.grad_scalers.setdefault(
            id(optimizer), torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16))
        if loss is not None:
            scaler.scale(loss).backward()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        distributed.average_gradients(params)
        if any(p.grad is not None for p in params):
            scaler.step(optimizer)
            scaler.update()
        distributed.broadcast_buffers(self.networks().values())

    def networks(self) -> dict[str, nn.Module]:
        return {name: getattr(self, f"net{name}") for name in self.model_names}

    def eval(self) -> None:
        for net in self.networks().values():
            net.eval()

    def train(self) -> None:
        for net in self.networks().values():
            net.train()

    def test(self) -> None:
        """Forward pass without gradients (test.py)."""
        with torch.no_grad():
            self.forward()

    # ------------------------------------------------------------------ reporting
    def get_current_visuals(self) -> OrderedDict:
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names if hasattr(self, name))

    def get_current_losses(self) -> OrderedDict:
        return OrderedDict((name, float(torch.as_tensor(getattr(self, f"loss_{name}")).detach()))
                           for name in self.loss_names)

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

    @staticmethod
    def set_requires_grad(nets: list[nn.Module], requires_grad: bool) -> None:
        for net in nets:
            for param in net.parameters():
                param.requires_grad_(requires_grad)

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
        """Weights plus everything else exact resume needs (optimisers, schedulers, extra state), in one
        file so that a crash between two files can never pair new weights with old optimiser state."""
        return {
            "networks": {name: unwrap(net).state_dict() for name, net in self.networks().items()},
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "extra": self.extra_state(),
        }

    def load_training_state(self, state: dict, path: Path) -> None:
        for name, net in self.networks().items():
            load_state_checked(unwrap(net), state["networks"][name], path, self.opt)
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
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
        object.__setattr__(self, "compiled", torch.compile(module))  # not a registered submodule
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
    domain B (G_B, D_B the reverse); image pools of fakes; one Adam for both Gs and one for both Ds."""

    def build_networks(self, make_generator, make_discriminator) -> None:
        """``make_generator(input_nc, output_nc)`` and ``make_discriminator(input_nc)`` build one network."""
        opt = self.opt
        self.model_names = ["G_A", "G_B", "D_A", "D_B"] if self.isTrain else ["G_A", "G_B"]
        self.netG_A = make_generator(opt.input_nc, opt.output_nc).to(self.device)
        self.netG_B = make_generator(opt.output_nc, opt.input_nc).to(self.device)
        if not self.isTrain:
            return
        self.netD_A = make_discriminator(opt.output_nc).to(self.device)
        self.netD_B = make_discriminator(opt.input_nc).to(self.device)
        self.fake_A_pool = ImagePool(opt.pool_size)
        self.fake_B_pool = ImagePool(opt.pool_size)
        self.criterion_gan = GANLoss(opt.gan_mode)
        betas = (opt.beta1, opt.beta2)
        self.optimizer_G = torch.optim.Adam(
            itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()), lr=opt.lr, betas=betas)
        self.optimizer_D = torch.optim.Adam(
            itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()), lr=opt.lr, betas=betas)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def extra_state(self) -> dict:
        return {"fake_A_pool": self.fake_A_pool.state_dict(), "fake_B_pool": self.fake_B_pool.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.fake_A_pool.load_state_dict(state["fake_A_pool"], self.device)
        self.fake_B_pool.load_state_dict(state["fake_B_pool"], self.device)


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
