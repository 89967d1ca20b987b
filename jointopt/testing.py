"""Conformance kit for cost models: check your own before you search with it.

::

    from jointopt.testing import check_cost_model
    check_cost_model(MyCost())                      # every zoo model
    check_cost_model("mine.py:MyCost", models=["resnet8", (my_net, torch.randn(1, 3, 32, 32))])

A conforming cost model is, on every network it is used with:

* **non-negative and finite** for any allocation, soft or hard;
* **differentiable in the allocation**: the expected cost is a tensor whose gradients reach the
  keep-gate and bit-selector logits and are finite;
* **monotone in kept channels**: removing (part of) an output channel at any width, or a kept
  input channel, never raises a layer's cost;
* **monotone in bits**: the same channels at a uniformly wider weight (or activation) width never
  cost less. Moving *one* channel to a wider width may legitimately lower a tiled model's cost
  (it can empty a tile), so that is not required;
* **exact when frozen**: the cost of the argmax (hard) allocation equals the cost of the frozen
  network, layer by layer;
* **one cost, two forms**: where the model has a vectorised form (``CostModel.batch_cost``), it
  equals the per-layer ``network_cost`` in value and in gradient.

Each check raises :class:`AssertionError` with a message naming the model, the network, the
layer and the numbers; :func:`check_cost_model` runs them all and returns what it measured.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Sequence, Tuple, Union

import torch
from torch import nn

from .cost import CostModel, LayerStats, get_cost_model

__all__ = ["ModelCheck", "check_cost_model", "check_attributes", "check_layer_costs", "check_monotone_channels",
           "check_monotone_bits", "check_differentiable", "check_hard_matches_frozen", "check_batch_cost",
           "randomize_selectors"]

ModelSpec = Union[str, Tuple[nn.Module, torch.Tensor], nn.Module]
_STEPS = (1.0, 0.5)  # whole and fractional channels: the search sees expected counts


@dataclass
class ModelCheck:
    """What :func:`check_cost_model` measured on one network (raw units of the cost model)."""

    model: str
    reference: float
    soft: float
    hard: float
    frozen: float


def _fail(message: str) -> None:
    raise AssertionError(message)


def _value(cost_model: CostModel, layer: LayerStats, where: str) -> float:
    value = torch.as_tensor(cost_model.layer_cost(layer)).detach()
    if value.numel() != 1:
        _fail(f"{where}: layer_cost returned shape {tuple(value.shape)}, expected a scalar")
    number = float(value.reshape(()))
    if not math.isfinite(number) or number < 0:
        _fail(f"{where}: layer cost {number} is {'negative' if number < 0 else 'not finite'}")
    return number


def _detached(layer: LayerStats, **changes) -> LayerStats:
    fields = {k: getattr(layer, k).detach().clone() for k in ("kept_in", "fan_in", "out_at_bits", "act_probs")}
    fields.update(changes)
    return dataclasses.replace(layer, **fields)


def _close_or_below(lower: float, upper: float) -> bool:
    return lower <= upper + 1e-6 * max(abs(lower), abs(upper)) + 1e-9


# -- checks on the cost model alone ---------------------------------------------------------------
def check_attributes(cost_model: CostModel) -> None:
    """``name``, ``unit``, ``description`` are non-empty strings; ``display_scale`` is positive."""
    label = f"cost model {getattr(cost_model, 'name', type(cost_model).__name__)!r}"
    for attr in ("name", "unit", "description"):
        value = getattr(cost_model, attr, None)
        if not isinstance(value, str) or not value.strip():
            _fail(f"{label}: set the class attribute {attr!r} to a non-empty string (got {value!r})")
    scale = getattr(cost_model, "display_scale", 1.0)
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        _fail(f"{label}: display_scale must be a positive number (got {scale!r})")
    if not isinstance(getattr(cost_model, "display_unit", ""), str):
        _fail(f"{label}: display_unit must be a string")
    if not callable(getattr(cost_model, "layer_cost", None)):
        _fail(f"{label}: define layer_cost(stats) -> tensor")


def check_layer_costs(cost_model: CostModel, layers: Sequence[LayerStats], where: str = "") -> None:
    """Every layer's cost is a finite, non-negative scalar, also with nothing kept."""
    for layer in layers:
        _value(cost_model, _detached(layer), f"{where}layer {layer.name}")
        empty = _detached(layer, out_at_bits=torch.zeros_like(layer.out_at_bits))
        _value(cost_model, empty, f"{where}layer {layer.name} with every output channel pruned")


def check_monotone_channels(cost_model: CostModel, layers: Sequence[LayerStats], where: str = "") -> None:
    """Removing whole or fractional output channels at any width, or kept inputs, never raises a layer's cost."""
    for layer in layers:
        base = _detached(layer)
        cost = _value(cost_model, base, f"{where}layer {layer.name}")
        for step in _STEPS:
            for i, width in enumerate(layer.weight_bits):
                if float(base.out_at_bits[i]) < step:
                    continue
                fewer = base.out_at_bits.clone()
                fewer[i] -= step
                less = _value(cost_model, _detached(base, out_at_bits=fewer), f"{where}layer {layer.name}")
                if not _close_or_below(less, cost):
                    _fail(f"{where}layer {layer.name}: removing {step:g} output channel(s) at {width} bits raised "
                          f"the cost from {cost:.6g} to {less:.6g} (allocation {base.out_at_bits.tolist()})")
            if float(base.kept_in) >= 1 + step:
                kept_in = base.kept_in - step
                fan_in = base.fan_in - step if layer.groups == 1 else base.fan_in
                less = _value(cost_model, _detached(base, kept_in=kept_in, fan_in=fan_in), f"{where}layer {layer.name}")
                if not _close_or_below(less, cost):
                    _fail(f"{where}layer {layer.name}: removing {step:g} kept input channel(s) raised the cost "
                          f"from {cost:.6g} to {less:.6g} (kept inputs {float(base.kept_in):g})")


def check_monotone_bits(cost_model: CostModel, layers: Sequence[LayerStats], where: str = "") -> None:
    """All kept channels at a wider weight width, or all inputs at a wider activation width, never cost less."""
    for layer in layers:
        base = _detached(layer)
        kept = base.out_at_bits.sum()
        previous = None
        for i in sorted(range(len(layer.weight_bits)), key=lambda j: layer.weight_bits[j]):
            alloc = torch.zeros_like(base.out_at_bits)
            alloc[i] = kept
            cost = _value(cost_model, _detached(base, out_at_bits=alloc), f"{where}layer {layer.name}")
            if previous is not None and not _close_or_below(previous[1], cost):
                _fail(f"{where}layer {layer.name}: {float(kept):g} channels cost {previous[1]:.6g} at {previous[0]} "
                      f"bits but only {cost:.6g} at {layer.weight_bits[i]} bits")
            previous = (layer.weight_bits[i], cost)
        previous = None
        for j in sorted(range(len(layer.act_bits)), key=lambda k: layer.act_bits[k]):
            probs = torch.zeros_like(base.act_probs)
            probs[j] = 1.0
            cost = _value(cost_model, _detached(base, act_probs=probs), f"{where}layer {layer.name}")
            if previous is not None and not _close_or_below(previous[1], cost):
                _fail(f"{where}layer {layer.name}: {previous[0]}-bit activations cost {previous[1]:.6g} but "
                      f"{layer.act_bits[j]}-bit ones only {cost:.6g}")
            previous = (layer.act_bits[j], cost)


# -- checks that need a searchable network --------------------------------------------------------
def randomize_selectors(searchable, seed: int = 0) -> None:
    """Random keep and bit logits (about a third of the channels pruned, mixed widths), in place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for gate in searchable.gates.values():
            gate.logits.copy_(torch.randn(gate.logits.shape, generator=generator) * 2 + 1)
        for _, layer in searchable.searchable_layers():
            layer.bit_logits.copy_(torch.randn(layer.bit_logits.shape, generator=generator))
            if layer.act_logits.numel() > 1:
                layer.act_logits.copy_(torch.randn(layer.act_logits.shape, generator=generator))


def check_differentiable(cost_model: CostModel, searchable, where: str = "") -> float:
    """The soft cost is a finite scalar tensor whose gradients reach the selector logits, finite."""
    cost = searchable.cost(cost_model, hard=False)
    if not isinstance(cost, torch.Tensor) or cost.numel() != 1:
        _fail(f"{where}the network cost must be a scalar tensor, got {type(cost).__name__}")
    if not math.isfinite(float(cost.detach())) or float(cost.detach()) < 0:
        _fail(f"{where}the expected cost is {float(cost.detach())}; it must be finite and >= 0")
    if not cost.requires_grad:
        _fail(f"{where}the expected cost carries no gradient: build it from the LayerStats tensors with torch "
              "operations (no float(), .item(), .detach() or numpy)")
    names = {id(gate.logits): f"keep gate {key!r}" for key, gate in searchable.gates.items()}
    names.update({id(layer.bit_logits): f"bit selector of {name}" for name, layer in searchable.searchable_layers()})
    params = [p for p in searchable.selector_parameters() if p.requires_grad]
    grads = torch.autograd.grad(cost.reshape(()), params, allow_unused=True)
    reached = 0.0
    for param, grad in zip(params, grads):
        label = names.get(id(param), "activation-bit selector")
        if grad is None:
            if label.startswith("keep gate"):
                _fail(f"{where}the gradient does not reach the {label}: pruning its channels must change the cost")
            continue
        if not bool(torch.isfinite(grad).all()):
            _fail(f"{where}the gradient on the {label} is not finite")
        if label.startswith("keep gate"):
            reached = max(reached, float(grad.abs().max()))
    if params and reached == 0.0:
        _fail(f"{where}the gradient on every keep gate is zero: pruning must lower the expected cost")
    return float(cost.detach())


def check_hard_matches_frozen(cost_model: CostModel, searchable, where: str = "") -> Tuple[float, float]:
    """The cost of the argmax allocation equals the cost of the frozen network, layer by layer."""
    from .graph import frozen_layer_stats

    hard_layers = {s.name: s for s in searchable.layer_stats(hard=True)}
    frozen_layers = {s.name: s for s in frozen_layer_stats(searchable.freeze())}
    if set(hard_layers) != set(frozen_layers):
        _fail(f"{where}the frozen network's layers {sorted(frozen_layers)} differ from the searchable ones "
              f"{sorted(hard_layers)}")
    hard_total = frozen_total = 0.0
    for name, layer in hard_layers.items():
        hard = _value(cost_model, layer, f"{where}layer {name} (hard)")
        frozen = _value(cost_model, frozen_layers[name], f"{where}layer {name} (frozen)")
        if not math.isclose(hard, frozen, rel_tol=1e-5, abs_tol=1e-6):
            _fail(f"{where}layer {name}: the hard allocation costs {hard:.9g} but the frozen layer {frozen:.9g}; "
                  "a cost must depend only on the LayerStats (counts, not on how they are stored)")
        hard_total += hard
        frozen_total += frozen
    return hard_total, frozen_total


def check_batch_cost(cost_model: CostModel, searchable, where: str = "",
                     temperatures: Sequence[float] = (1.0, 0.3)) -> bool:
    """The vectorised cost (``batch_cost`` of the network's :meth:`layer_batch`) equals the
    per-layer ``network_cost`` of its soft ``layer_stats``, in value and in the gradient on every
    selector, at each of ``temperatures``.

    Returns:
        False when the model has no vectorised form (or returns None for this network): nothing to check.
    """
    if not getattr(cost_model, "has_batch_cost", lambda: False)():
        return False
    params = [p for p in searchable.selector_parameters() if p.requires_grad]
    names = {id(gate.logits): f"keep gate {key!r}" for key, gate in searchable.gates.items()}
    for name, layer in searchable.searchable_layers():
        names[id(layer.bit_logits)] = f"bit selector of {name}"
        names[id(layer.act_logits)] = f"activation-bit selector of {name}"
    saved = searchable.temperature
    try:
        for temperature in temperatures:
            searchable.temperature = temperature
            batch = searchable.layer_batch()
            fast = cost_model.batch_cost(batch) if batch is not None else None
            if fast is None:
                return False
            slow = cost_model.network_cost(searchable.layer_stats(hard=False))
            a, b = float(fast.detach()), float(slow.detach())
            if fast.numel() != 1 or not math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9):
                _fail(f"{where}batch_cost gives {a:.9g} but the sum of layer_cost gives {b:.9g} (temperature "
                      f"{temperature:g}); the vectorised form must compute the same cost")
            grads = [torch.autograd.grad(c.reshape(()), params, allow_unused=True) for c in (fast, slow)]
            scale = max((float(g.abs().max()) for g in grads[1] if g is not None), default=1.0)
            for param, g_fast, g_slow in zip(params, *grads):
                g_fast = torch.zeros_like(param) if g_fast is None else g_fast
                g_slow = torch.zeros_like(param) if g_slow is None else g_slow
                if not torch.allclose(g_fast, g_slow, rtol=1e-4, atol=1e-6 * scale):
                    worst = float((g_fast - g_slow).abs().max())
                    _fail(f"{where}the gradient of batch_cost on the {names.get(id(param), 'selector')} differs "
                          f"from that of the per-layer cost by up to {worst:.3g} (temperature {temperature:g})")
    finally:
        searchable.temperature = saved
    return True


# -- everything ----------------------------------------------------------------------------------
def _resolve_models(models) -> List[Tuple[str, object]]:
    from . import zoo

    if models is None:
        models = zoo.list_models()
    labelled = models.items() if isinstance(models, Mapping) else [(None, spec) for spec in models]
    cases = []
    for label, spec in labelled:
        if isinstance(spec, str):
            cases.append((label or spec, _zoo_case(spec)))
        elif hasattr(spec, "layer_stats") and hasattr(spec, "freeze"):
            cases.append((label or type(spec).__name__, spec))
        else:
            module, example = spec
            cases.append((label or type(module).__name__, (module, example)))
    return cases


def _zoo_case(name: str):
    from . import zoo

    info = zoo.model_info(name)
    if info.input_shape is None:
        raise AssertionError(f"zoo model {name!r} declares no input shape; pass (model, example_input) instead")
    generator = torch.Generator().manual_seed(0)
    return zoo.create_model(name), torch.randn((2,) + tuple(info.input_shape), generator=generator)


def _searchable(case, seed: int):
    from .graph import convert
    from .space import SearchSpace

    if hasattr(case, "layer_stats"):
        searchable = copy.deepcopy(case)
    else:
        module, example = case
        torch.manual_seed(seed)
        searchable = convert(module.eval(), example, SearchSpace(weight_bits=(0, 2, 4, 8), act_bits=(8,)))
    randomize_selectors(searchable, seed)
    return searchable


def check_cost_model(cost_model: Union[str, CostModel],
                     models: Union[Iterable[ModelSpec], Mapping[str, ModelSpec], None] = None,
                     seed: int = 0) -> List[ModelCheck]:
    """Run every check of this module on ``cost_model`` over ``models``.

    Args:
        cost_model: an instance, or anything :func:`jointopt.get_cost_model` accepts.
        models: zoo names, ``(module, example_input)`` pairs or searchable networks, or a dict
            of label → one of those; default: every model of the zoo. Each is converted with
            weights ``(0, 2, 4, 8)`` and 8-bit activations, and its selectors are randomised
            (seeded) so that channels are pruned and widths are mixed.
        seed: for the random allocation.

    Returns:
        One :class:`ModelCheck` per network (raw units; ``cost_model.format`` makes them human).

    Raises:
        AssertionError: a check failed, or the cost model raised on one of the networks.
    """
    cost_model = get_cost_model(cost_model)
    check_attributes(cost_model)
    results = []
    for label, case in _resolve_models(models):
        where = f"cost model {cost_model.name!r} on {label}: "
        try:
            searchable = _searchable(case, seed)
            check_layer_costs(cost_model, searchable.reference_stats(), where + "unpruned ")
            with torch.no_grad():
                reference = float(searchable.reference_cost(cost_model))
            if not math.isfinite(reference) or reference <= 0:
                _fail(f"{where}the reference cost (unpruned, widest widths) is {reference}; it must be finite and > 0")
            for hard in (False, True):
                layers = searchable.layer_stats(hard=hard)
                check_layer_costs(cost_model, layers, where)
                check_monotone_channels(cost_model, layers, where)
                check_monotone_bits(cost_model, layers, where)
            check_monotone_bits(cost_model, searchable.reference_stats(), where)
            soft = check_differentiable(cost_model, searchable, where)
            check_batch_cost(cost_model, searchable, where)
            hard_total, frozen_total = check_hard_matches_frozen(cost_model, searchable, where)
        except AssertionError:
            raise
        except Exception as exc:  # the cost model (or the network) failed: report where
            raise AssertionError(f"{where}{type(exc).__name__}: {exc}") from exc
        results.append(ModelCheck(label, reference, soft, hard_total, frozen_total))
    return results
