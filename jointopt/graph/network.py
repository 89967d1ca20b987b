"""The searchable network: the traced model with every Conv/Linear made searchable."""
from __future__ import annotations

import math
from typing import Dict, Iterator, List, Tuple, Union

import torch
from torch import fx, nn

from ..cost import CostModel, LayerStats, get_cost_model
from ..errors import ConfigError
from ..nn.layers import SearchableLayer
from ..nn.selectors import MODES, GroupGate, SearchState
from ..space import SearchSpace
from .analysis import Analysis


class SearchableNetwork(nn.Module):
    """What :func:`jointopt.convert` returns: trainable, inspectable, freezable.

    ``forward`` runs the network in the current mode (``set_mode``): ``soft`` during the search,
    ``hard`` to evaluate the argmax choice exactly as freeze will keep it, ``float`` to run the
    original network (no quantization, no pruning).
    """

    def __init__(self, graph_module: fx.GraphModule, gates: Dict[str, GroupGate], state: SearchState,
                 analysis: Analysis, space: SearchSpace):
        super().__init__()
        self.net = graph_module
        self.gates = nn.ModuleDict(gates)
        self.analysis = analysis
        self.space = space
        object.__setattr__(self, "state", state)

    # -- running ----------------------------------------------------------------------------------
    def forward(self, *inputs):
        for gate in self.gates.values():
            gate.refresh(self.state, self.training)
        try:
            return self.net(*inputs)
        finally:  # the drawn keep values live in the autograd graph; do not keep them on the module
            for gate in self.gates.values():
                gate.current = None

    def set_mode(self, mode: str) -> "SearchableNetwork":
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r}; choose one of {', '.join(MODES)}")
        self.state.mode = mode
        return self

    @property
    def mode(self) -> str:
        return self.state.mode

    @property
    def temperature(self) -> float:
        return self.state.temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        if value <= 0:
            raise ConfigError(f"temperature must be > 0, got {value}")
        self.state.temperature = float(value)

    def anneal(self, decay: float = 0.045) -> float:
        """Multiply the temperature by ``exp(-decay)`` (the published per-epoch schedule)."""
        self.temperature = self.temperature * float(torch.exp(torch.tensor(-decay)))
        return self.temperature

    def get_extra_state(self):
        return {"mode": self.state.mode, "temperature": self.state.temperature, "sampling": self.state.sampling}

    def set_extra_state(self, extra) -> None:
        self.state.mode = extra["mode"]
        self.state.temperature = extra["temperature"]
        self.state.sampling = extra["sampling"]

    # -- parts ------------------------------------------------------------------------------------
    def searchable_layers(self) -> List[Tuple[str, SearchableLayer]]:
        return [(name, m) for name, m in self.net.named_modules() if isinstance(m, SearchableLayer)]

    def selector_parameters(self) -> Iterator[nn.Parameter]:
        """Keep-gate and bit-selector logits (trained with their own optimiser)."""
        for gate in self.gates.values():
            if gate.prunable:
                yield gate.logits
        for _, layer in self.searchable_layers():
            yield layer.bit_logits
            if layer.act_logits.requires_grad:
                yield layer.act_logits

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """Everything trainable that is not a selector: weights, biases, activation clips."""
        selectors = {id(p) for p in self.selector_parameters()}
        for p in self.parameters():
            if p.requires_grad and id(p) not in selectors:
                yield p

    # -- cost -------------------------------------------------------------------------------------
    def layer_stats(self, hard: bool = False) -> List[LayerStats]:
        """Statistics of every searchable layer: soft (differentiable) or of the argmax choice."""
        return [layer.stats(hard, name) for name, layer in self.searchable_layers()]

    def cost(self, model: Union[str, CostModel], hard: bool | None = None) -> torch.Tensor:
        """Cost of the allocation the network is in: the argmax choice in ``hard`` mode, else the
        expectation under the current selector probabilities.

        So after ``set_mode("hard")`` this is the cost of what :meth:`freeze` keeps (for ``memory``,
        the bits the packed export stores). ``hard=True`` / ``hard=False`` overrides the mode (the
        search loop asks for the soft, differentiable cost explicitly).

        The built-in ``memory``, ``memory_total``, ``bitops`` and ``macs`` models are evaluated on
        the soft allocation by a vectorised path over precomputed per-layer constants (the same
        formulas, a handful of tensor operations for the whole network instead of a few dozen per
        layer); every other model, and every hard cost, goes through :meth:`layer_stats`.
        """
        model = get_cost_model(model)
        if hard is None:
            hard = self.state.mode == "hard"
        if not hard:
            fast = _fast_soft_cost(self, model)
            if fast is not None:
                return fast
        return model.network_cost(self.layer_stats(hard))

    def reference_stats(self) -> List[LayerStats]:
        """Statistics of the unpruned network with every weight and activation at the largest width."""
        out = []
        for stats in self.layer_stats(hard=True):
            full_out = torch.zeros(len(stats.weight_bits))
            full_out[-1] = stats.out_channels
            act = torch.zeros(len(stats.act_bits))
            act[-1] = 1.0
            g = stats.groups
            fan_in = stats.in_channels // g if g > 1 else stats.in_channels
            out.append(LayerStats(stats.name, stats.kind, stats.in_channels, stats.out_channels, stats.kernel_size,
                                  stats.stride, g, stats.in_spatial, stats.out_spatial, stats.weight_bits,
                                  stats.act_bits, torch.tensor(float(stats.in_channels)), torch.tensor(float(fan_in)),
                                  full_out, act))
        return out

    def reference_cost(self, model: Union[str, CostModel]) -> torch.Tensor:
        """Cost of the unpruned network at the largest widths: the regulariser's normaliser."""
        with torch.no_grad():
            return get_cost_model(model).network_cost(self.reference_stats()).detach()

    # -- result -----------------------------------------------------------------------------------
    def freeze(self) -> fx.GraphModule:
        """The argmax choice as an ordinary, smaller network (see :func:`jointopt.graph.freeze`)."""
        from .freeze import freeze

        return freeze(self)

    def summary(self) -> List[dict]:
        """Per layer: channels kept / total, histogram of the chosen weight bits, activation bits."""
        rows = []
        for name, layer in self.searchable_layers():
            bits = layer.hard_bits()
            hist = {int(b): int((bits == b).sum()) for b in sorted(set(bits.tolist()) - {0})}
            rows.append({"layer": name, "kind": layer.geometry.kind, "kept": int((bits > 0).sum()),
                         "total": layer.geometry.out_channels, "bits": hist, "act_bits": layer.hard_act_bits()})
        return rows

    def summary_table(self) -> str:
        lines = [f"{'layer':<28} {'kept':>9} {'weight bits (channels)':<28} act"]
        for row in self.summary():
            hist = " ".join(f"{b}b:{n}" for b, n in row["bits"].items())
            lines.append(f"{row['layer']:<28} {row['kept']:>4}/{row['total']:<4} {hist:<28} {row['act_bits']}")
        return "\n".join(lines)


# -- the vectorised soft cost of the built-in models ------------------------------------------------
# One search step evaluates the regulariser once; building a LayerStats per layer costs a few dozen
# small tensor operations per layer, which on a CPU is a visible part of the step for networks with
# many thin layers. The built-ins below are linear in the same soft statistics, so they are
# computed for all layers at once from constants gathered when the network is first costed.
# ``tests/quant/test_fast_cost.py`` checks them against ``network_cost(layer_stats())``.
_BUILTINS = {("cost_models.memory", "MemoryCost"): "memory", ("cost_models.memory", "MemoryTotalCost"): "memory",
             ("cost_models.bitops", "BitOpsCost"): "bitops", ("cost_models.macs", "MacsCost"): "macs"}


class _SoftCostPlan:
    """Per-layer constants and index maps that turn the selector logits into soft statistics.

    ``keep`` of every output channel of every layer is one gather from the concatenated keep
    probabilities of the prunable groups (non-prunable and ungated channels read a constant 1);
    ``out_at_bits`` is a [layers, channels] 0/1 matrix times the keep-weighted bit probabilities;
    ``kept_in`` is a [layers, gate channels] matrix (entries = flatten repeat) times the keep
    probabilities plus the constant inputs. All layers must share their weight and activation widths.
    """

    def __init__(self, net: "SearchableNetwork", device: torch.device, dtype: torch.dtype):
        layers = [layer for _, layer in net.searchable_layers()]
        self.layers = layers
        self.device, self.dtype = device, dtype
        self.gates = [g for g in net.gates.values() if g.prunable]
        offset, start = 0, {}
        for gate in self.gates:
            start[id(gate)] = offset
            offset += gate.size
        one = offset  # index of the constant 1 appended after the gate probabilities
        like = dict(dtype=dtype, device=device)
        out_index, row_of = [], []
        kept_in = torch.zeros(len(layers), offset + 1, **like)
        const_in = torch.zeros(len(layers), **like)
        for row, layer in enumerate(layers):
            gate = layer._gates.get(layer.out_group)
            n = layer.geometry.out_channels
            base = start.get(id(gate)) if gate is not None else None
            out_index += list(range(base, base + n)) if base is not None else [one] * n
            row_of += [row] * n
            for seg in layer.in_segments:
                seg_gate = layer._gates.get(seg.group)
                if seg_gate is None:
                    const_in[row] += float(seg.size) * seg.repeat
                elif id(seg_gate) in start:
                    b = start[id(seg_gate)]
                    kept_in[row, b:b + seg_gate.size] += seg.repeat
                else:  # a group that cannot be pruned: all of it, always
                    const_in[row] += float(seg_gate.size) * seg.repeat
        self.out_index = torch.tensor(out_index, dtype=torch.long, device=device)
        self.out_rows = torch.zeros(len(layers), len(out_index), **like)
        self.out_rows[torch.tensor(row_of, device=device), torch.arange(len(out_index), device=device)] = 1.0
        self.kept_in, self.const_in = kept_in, const_in
        geometry = [layer.geometry for layer in layers]
        dense = [g.groups == 1 for g in geometry]
        self.dense = torch.tensor(dense, **like)
        self.fan_const = torch.tensor([0.0 if d else (1.0 if g.groups == g.in_channels else float(g.in_channels // g.groups))
                                       for d, g in zip(dense, geometry)], **like)
        self.kernel = torch.tensor([float(math.prod(g.kernel_size)) if g.kernel_size else 1.0 for g in geometry], **like)
        self.out_numel = torch.tensor([float(math.prod(g.out_spatial)) if g.out_spatial else 1.0 for g in geometry], **like)
        self.weight_bits = torch.tensor(layers[0].weight_bits, **like)
        self.act_bits = torch.tensor(layers[0].act_bits, **like)

    @staticmethod
    def applies(net: "SearchableNetwork") -> bool:
        layers = [layer for _, layer in net.searchable_layers()]
        return bool(layers) and all(l.weight_bits == layers[0].weight_bits and l.act_bits == layers[0].act_bits
                                    for l in layers)

    def statistics(self, temperature: float):
        """(out_at_bits [L, B], fan_in [L]) of the soft allocation, as ``SearchableLayer.stats`` has them."""
        t = temperature
        if self.gates:
            logits = torch.cat([g.logits for g in self.gates])
            keep = torch.cat([torch.sigmoid(logits / t), torch.ones(1, device=logits.device, dtype=logits.dtype)])
        else:
            keep = torch.ones(1, device=self.device, dtype=self.dtype)
        bit_logits = torch.cat([layer.bit_logits for layer in self.layers])
        probs = torch.softmax(bit_logits / t, dim=-1) * keep[self.out_index].unsqueeze(1)
        out_at_bits = self.out_rows @ probs
        kept_in = self.kept_in @ keep + self.const_in
        fan_in = kept_in * self.dense + self.fan_const
        return out_at_bits, fan_in

    def act_probs(self, temperature: float) -> torch.Tensor:
        return torch.softmax(torch.stack([l.act_logits for l in self.layers]) / temperature, dim=-1)


def _plan(net: "SearchableNetwork") -> "_SoftCostPlan | None":
    layers = net.searchable_layers()
    if not layers:
        return None
    logits = layers[0][1].bit_logits
    plan = net.__dict__.get("_soft_cost_plan")
    if (plan is None or plan.device != logits.device or plan.dtype != logits.dtype
            or [l for _, l in layers] != plan.layers):
        plan = _SoftCostPlan(net, logits.device, logits.dtype) if _SoftCostPlan.applies(net) else None
        object.__setattr__(net, "_soft_cost_plan", plan)
    return plan


def _fast_soft_cost(net: "SearchableNetwork", model: CostModel):
    """The soft cost of a built-in model, vectorised over layers; None where it does not apply."""
    cls = type(model)
    kind = _BUILTINS.get((cls.__module__, cls.__qualname__))
    if kind is None or not FAST_COST:
        return None
    plan = _plan(net)
    if plan is None:
        return None
    t = net.state.temperature
    out_at_bits, fan_in = plan.statistics(t)
    weights = fan_in * plan.kernel  # weights per kept output channel
    if kind == "memory":
        cost = (out_at_bits @ plan.weight_bits * weights).sum()
        if model.include_overhead:
            cost = cost + out_at_bits.sum() * float(model.bias_bits + model.scale_bits)
        return cost
    macs = weights * plan.out_numel
    if kind == "macs":
        return (out_at_bits.sum(1) * macs).sum()
    mean_act = plan.act_probs(t) @ plan.act_bits
    return (out_at_bits @ plan.weight_bits * macs * mean_act).sum()


FAST_COST = True  # tests switch it off to compare with the per-layer path
