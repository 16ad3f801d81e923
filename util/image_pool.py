"""History of generated images for the discriminator updates (Shrivastava et al.; CycleGAN's pool)."""

from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """Returns, per image, the new fake or (half the time, once full) a stored older one it replaces.

    Randomness comes from torch's generator, so a seeded run, and a resumed one, draw the same.
    """

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        if self.pool_size == 0:
            return images
        chosen = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                chosen.append(image)
            elif torch.rand(()).item() > 0.5:
                index = int(torch.randint(0, self.pool_size, ()).item())
                chosen.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                chosen.append(image)
        return torch.cat(chosen, 0)

    def state_dict(self) -> dict:
        return {"images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.images = [image.to(device) for image in state["images"]]
