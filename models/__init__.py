"""Model registry: ``--model NAME`` finds the BaseModel subclass in ``models/NAME_model.py``.

A new model is one file: ``models/my_gan_model.py`` with ``class MyGanModel(BaseModel)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

_MODEL_DIR = Path(__file__).resolve().parent


def available_models() -> list[str]:
    return sorted(p.name[: -len("_model.py")] for p in _MODEL_DIR.glob("*_model.py") if p.name != "base_model.py")


def find_model_using_name(name: str) -> type:
    """Import ``models.<name>_model`` and return its class named like ``<Name>Model`` (underscores ignored)."""
    from .base_model import BaseModel

    if name not in available_models():
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(available_models())}")
    module = importlib.import_module(f"models.{name}_model")
    wanted = name.replace("_", "").lower() + "model"
    for attr, cls in vars(module).items():
        if attr.lower() == wanted and isinstance(cls, type) and issubclass(cls, BaseModel):
            return cls
    raise ValueError(f"models/{name}_model.py defines no BaseModel subclass named like {wanted!r}")


def get_option_setter(name: str) -> Callable:
    return find_model_using_name(name).modify_commandline_options


def create_model(opt):
    """Instantiate the model named by ``opt.model`` and check its declarations (see models/base_model.py)."""
    model = find_model_using_name(opt.model)(opt)
    model.check_declarations()
    return model
