"""The searchable network: the traced model with every Conv/Linear made searchable."""
from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple, Union

import torch
from torch import fx, nn

from ..cost import CostModel, LayerBatch, LayerStats, get_cost_model
from ..errors import ConfigError
from ..nn.layers import SearchableLayer
from ..nn.selectors import MODES, GroupGate, SearchState
from ..space import SearchSpace
from ._batch import batch_plan
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

        The soft cost of a model with a vectorised form (:meth:`CostModel.batch_cost`, as the
        built-in ``memory``, ``bitops`` and ``macs`` have) is computed from :meth:`layer_batch`;
        every other model, and every hard cost, goes through :meth:`layer_stats`.
        """
        model = get_cost_model(model)
        if hard is None:
            hard = self.state.mode == "hard"
        if not hard and getattr(model, "has_batch_cost", lambda: False)():
            batch = self.layer_batch()
            cost = model.batch_cost(batch) if batch is not None else None
            if cost is not None:
                return cost
        return model.network_cost(self.layer_stats(hard))

    def layer_batch(self) -> Optional[LayerBatch]:
        """The soft statistics of every searchable layer at once (what :meth:`CostModel.batch_cost`
        reads); None when the layers do not share their candidate widths."""
        plan = batch_plan(self)
        return plan.batch(self.state.temperature) if plan is not None else None

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
