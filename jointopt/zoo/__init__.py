"""The model zoo: reference networks of the field, built by name.

``create_model("resnet8")`` builds MLPerf Tiny's ResNet-8; ``list_models("resnet*")`` lists
names; ``model_info(name)`` gives the default input shape and class count; ``model_factory(name)`` the
callable ``create_model`` would call (registered or imported); ``register_model``
adds your own; ``create_model("mypackage.models:build")`` imports a factory without registering
it. Every model traces with ``torch.fx.symbolic_trace`` and keeps BatchNorm right after each
convolution, so the search can convert it as it is.
"""
from __future__ import annotations

from . import _digits_cnn, _dscnn, _mobilenet, _resnet  # noqa: F401  (register the built-ins)
from ._registry import ModelInfo, create_model, list_models, model_factory, model_info, register_model

__all__ = ["ModelInfo", "create_model", "list_models", "model_factory", "model_info", "register_model"]
