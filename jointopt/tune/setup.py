"""What a study is built from: the device, the data set, the model, the warm-up's key and the quickstart config."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..config import Config
from ..errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but CUDA is not available here; use --device cpu")
    return torch.device(name)


def load_dataset(config: Config):
    from ..data import get_dataset

    return get_dataset(config.data.name, config.data.root, val_fraction=config.data.val_fraction, seed=config.seed,
                       limit_train=config.data.limit_train)


def build_model(config: Config, input_shape=None, num_classes=None) -> torch.nn.Module:
    """The configured model, sized for the data set when its factory takes ``input_shape``/``num_classes``."""
    from ..registry import accepted_kwargs
    from ..zoo import create_model, model_factory

    name = config.model.name
    factory = model_factory(name)  # an unknown name: the registry's error, with the close matches
    offered = {k: v for k, v in (("input_shape", None if input_shape is None else tuple(input_shape)),
                                 ("num_classes", None if num_classes is None else int(num_classes))) if v is not None}
    kwargs = {**accepted_kwargs(factory, offered, named_only=True), **config.model.kwargs}
    return create_model(name, **kwargs)


def warmup_key(config: Config) -> str:
    """What determines the warm-up network: model, data, warm-up schedule, seed."""
    data = {k: v for k, v in config.to_dict()["data"].items() if k != "eval_batch_size"}
    blob = json.dumps({"model": config.to_dict()["model"], "data": data, "warmup": config.to_dict()["warmup"],
                       "seed": config.seed, "version": config.version,
                       **({"amp": True} if config.amp else {})}, sort_keys=True)  # keys without amp unchanged
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def quickstart_config() -> Config:
    path = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"
    return Config.from_yaml(path) if path.exists() else Config()
