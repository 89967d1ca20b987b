"""RAM: peak activation memory of the integer C runtime — the size of its one static arena, in bytes.

The C export (``jointopt export --format c``) keeps every activation in one static buffer; tensors
whose lifetimes do not overlap share bytes (``jointopt/export/_memory.py``). This cost model plans
the same arena from layer statistics, so on a frozen network it equals ``NAME_ARENA_BYTES`` to the
byte, and during the search it is differentiable in the kept channels.

Which tensors are alive together depends on the graph (a residual block keeps its input while
its branch runs), and :class:`~jointopt.cost.LayerStats` do not carry the graph. So:

* ``RamCost.for_network(net)`` (``net`` searchable or frozen) is **exact** on every topology the
  runtime supports: it plans the export's tensors, sized from the kept channels;
* ``RamCost()`` — the registered ``ram``, what ``--target ram`` builds — assumes the layers form a
  chain in the order given (each layer reads what the previous one wrote, with at most one
  pooling step in between). That is exact for sequential networks (the quickstart's
  ``digits_cnn``, DS-CNN, MobileNetV1) and a lower bound for networks with shortcuts or branches.

Soft (fractional) channel counts give the most bytes live at one operation, a differentiable lower
bound of the arena; whole counts give the planned arena itself. Either way the gradient is that of
the live bytes at the operations within 2 % of the peak (softmax-weighted).
"""
from __future__ import annotations

import math
import operator
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from jointopt.cost import CostModel, LayerStats
from jointopt.errors import ConfigError

Buffers = List[Tuple[Callable[[Dict[str, torch.Tensor]], torch.Tensor], Tuple[int, int]]]


def _prod(values) -> int:
    return math.prod(values) if values else 1


def _in_bytes(layer: LayerStats) -> torch.Tensor:
    return layer.kept_in * _prod(layer.in_spatial)


def _out_bytes(layer: LayerStats) -> torch.Tensor:
    return layer.kept_out * _prod(layer.out_spatial)


def _scratch_bytes(layer: LayerStats) -> torch.Tensor:
    """A convolution's scratch: one output row of int32 accumulators and one channel's decoded codes."""
    row = layer.out_spatial[-1] if layer.out_spatial else 1
    return layer.fan_in * layer.kernel_numel + 4 * row


class RamCost(CostModel):
    """Bytes of the C runtime's activation arena (int8 activations; displayed in kB = 1000 bytes).

    Args:
        structure: the integer network's structure (``jointopt.export._integer_plan``); use
            :meth:`for_network` rather than passing it. None: assume a chain of layers.
    """

    name = "ram"
    unit = "byte"
    description = "peak activation memory, the C runtime's arena (chain of layers; RamCost.for_network: any graph)"
    display_unit = "kB"
    display_scale = 1 / 1000

    def __init__(self, structure=None):
        self.structure = structure

    @classmethod
    def for_network(cls, network, example_input: Optional[torch.Tensor] = None) -> "RamCost":
        """The model bound to ``network``'s graph (searchable or frozen): exact on any topology.

        Args:
            network: what ``convert`` or ``freeze`` returns (or ``jointopt.load``).
            example_input: a batch; needed only for a network whose graph has no recorded shapes
                (one rebuilt by ``jointopt.load``).
        """
        from jointopt.export._integer_plan import structure

        gm = network.net if hasattr(network, "searchable_layers") else network
        if example_input is not None:
            from jointopt.export._integer_build import calibrate

            shapes, _, values, _ = calibrate(gm, example_input)
            value_of = lambda n: values.get(n.name, torch.empty(0))
        else:
            shapes, value_of = _recorded_shapes(gm)
        return cls(structure(gm, shapes, value_of))

    def bind(self, network) -> "RamCost":
        """The study binds ``ram`` to each trial's network, so ``--target ram`` is exact on any graph."""
        return self if self.structure is not None else type(self).for_network(network)

    def layer_cost(self, layer: LayerStats) -> torch.Tensor:
        """What one layer needs while it runs: its input, its output and one channel's weight codes."""
        return _in_bytes(layer) + _out_bytes(layer) + _scratch_bytes(layer)

    def network_cost(self, layers: Sequence[LayerStats]) -> torch.Tensor:
        if not layers:
            return torch.zeros(())
        buffers = self._bound(layers) if self.structure is not None else _chain(layers)
        sizes = [size for size, _ in buffers]
        lives = [life for _, life in buffers]
        steps = sorted({t for life in lives for t in life})
        zero = torch.zeros((), device=layers[0].kept_in.device)  # the statistics' device (a GPU in a search)
        live = torch.stack([sum((s for s, life in zip(sizes, lives) if life[0] <= t <= life[1]), zero)
                            for t in steps])
        # the value is the largest live total; its gradient spreads over the operations within a few
        # per cent of it, so the search also sees the next-largest steps it would meet after pruning
        weights = torch.softmax(live.detach() / max(0.02 * float(live.detach().max()), 1e-6), dim=0)
        smooth = (weights * live).sum()
        peak = smooth + (live.max() - smooth).detach()
        values = [float(s.detach()) for s in sizes]
        if all(abs(v - round(v)) < 1e-6 for v in values):  # whole channels: the planned arena itself
            from jointopt.export._memory import plan_arena

            arena = float(plan_arena([int(round(v)) for v in values], lives)[1])
            return peak + (arena - peak).detach()
        return peak

    def _bound(self, layers: Sequence[LayerStats]):
        st = self.structure
        by_name = {s.name: s for s in layers}
        missing = [name for name in st.layers if name not in by_name]
        if missing:
            raise ConfigError(f"cost model 'ram' is bound to a network with layers {missing[:3]} that the statistics "
                              "lack; bind it to this network with RamCost.for_network(network)")

        def count(source: str) -> torch.Tensor:
            kind, _, name = source.partition(":")
            s = by_name[name]
            return s.kept_out if kind == "out" else _scratch_bytes(s)

        lives = st.lifetimes()
        one = torch.ones((), device=layers[0].kept_in.device)  # constant sizes join the statistics' device
        return [(st.storage_bytes(s, count) * one, lives[s]) for s in sorted(lives)]


def _chain(layers: Sequence[LayerStats]):
    """Buffers of a chain: quantized input, then per layer its scratch and output (int32 for the last)."""
    buffers = []
    step = 1
    current, born = _in_bytes(layers[0]), 0
    for k, layer in enumerate(layers):
        buffers.append((_scratch_bytes(layer), (step, step)))
        if k + 1 < len(layers):
            out, following = _out_bytes(layer), _in_bytes(layers[k + 1])
            buffers.append((current, (born, step)))
            if abs(float(out.detach()) - float(following.detach())) < 1e-6:
                current, born = out, step
                step += 1
            else:  # a pooling step between the two layers
                buffers.append((out, (step, step + 1)))
                current, born = following, step + 1
                step += 2
        else:
            buffers.append((current, (born, step)))
            buffers.append((4 * _out_bytes(layer), (step, step + 1)))
    return buffers


def _recorded_shapes(gm) -> Tuple[Dict[str, tuple], Callable]:
    """Per-sample shapes from the ``tensor_meta`` that tracing recorded, and the shape helpers' values."""
    shapes: Dict[str, tuple] = {}
    values: Dict[str, object] = {}
    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if node.op != "output" and hasattr(meta, "shape"):
            shapes[node.name] = tuple(meta.shape[1:])
            values[node.name] = torch.Size(meta.shape)
        elif node.op in ("call_function", "call_method"):
            values[node.name] = _static(node, values)
    if not shapes:
        raise ConfigError("the network's graph has no recorded shapes (rebuilt by jointopt.load?): pass an example "
                          "batch, RamCost.for_network(network, example_input)")
    return shapes, lambda n: values.get(n.name)


def _static(node, values):
    """The value of a shape helper (``x.shape``, ``x.size(d)``, indexing, integer arithmetic), or None."""
    args = [values.get(a.name) if hasattr(a, "name") else a for a in node.args]
    try:
        if node.op == "call_method" and node.target == "size":
            return args[0] if len(args) == 1 else args[0][args[1]]
        if node.op == "call_method" and node.target == "dim":
            return len(args[0])
        if node.target is getattr and args[1] == "shape":
            return args[0]
        if node.target in (operator.getitem, operator.mul, operator.floordiv, operator.add, operator.sub):
            return node.target(*args)
    except (TypeError, IndexError):
        return None
    return None
