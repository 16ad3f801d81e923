"""What a training run needs around its loop: seeding, the random-generator state for exact resume, and
Ctrl-C / SIGTERM turned into a request checked between steps."""

from __future__ import annotations

import random
import signal
from typing import Self

import numpy as np
import torch

from util import distributed


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Python, numpy and torch generator states, in a form ``torch.load(weights_only=True)`` accepts."""
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


class StopRequest:
    """Turns Ctrl-C / SIGTERM into a flag checked between steps, so the saved state is consistent.
    A second Ctrl-C stops at once (KeyboardInterrupt)."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def __enter__(self) -> Self:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        print(f"\n{self.signal_name} received: finishing the current step, then saving 'latest' "
              f"(press Ctrl-C again to stop at once)", flush=True)

    def agreed(self, device: torch.device) -> bool:
        """True on every torchrun rank once any rank was signalled (a rank that was not calls it SIGTERM)."""
        if distributed.any_rank(self.signal_name is not None, device):
            self.signal_name = self.signal_name or "SIGTERM"
            return True
        return False

    @property
    def exit_status(self) -> int:
        return 130 if self.signal_name == "SIGINT" else 143
