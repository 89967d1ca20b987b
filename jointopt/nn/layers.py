"""The searchable layer: one implementation for Conv1d, Conv2d and Linear."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from ..cost import LayerStats
from ..quant import init_step, mix_weights, quantize_activation
from ._op import LayerGeometry, run_op
from .selectors import GroupGate, SearchState, init_bit_logits, sample_probs


@dataclass(frozen=True)
class Segment:
    """A run of input channels that come from one channel group.

    ``repeat`` > 1 when a flatten turned each channel into ``repeat`` consecutive features
    (channel × spatial), as in ``conv → flatten → linear``. ``group`` is None for channels that
    can never be pruned (the network input).
    """

    group: Optional[str]
    size: int
    repeat: int = 1


class SearchableLayer(nn.Module):
    """A Conv/Linear whose output channels choose a width among ``(0,) + bits`` and whose input
    activations choose a width among ``act_bits``.

    Args:
        module: the Conv1d/Conv2d/Linear to wrap (weights copied, BN already folded in).
        geometry: its static shape and spatial sizes.
        weight_bits: the non-zero candidate weight widths.
        act_bits: the candidate input-activation widths.
        state: the network's shared :class:`SearchState`.
        out_group / in_segments: where its output and input channels belong (see ``bind``).
        act_signed: quantize the input as signed (the producer can be negative).
        act_clip: initial clip of the activation quantizer.
    """

    def __init__(self, module: nn.Module, geometry: LayerGeometry, weight_bits: Sequence[int], act_bits: Sequence[int],
                 state: SearchState, out_group: Optional[str], in_segments: Sequence[Segment], act_signed: bool,
                 act_clip: float = 1.0):
        super().__init__()
        self.geometry = geometry
        self.weight_bits = tuple(weight_bits)
        self.act_bits = tuple(act_bits)
        self.act_signed = act_signed
        self.out_group = out_group
        self.in_segments = tuple(in_segments)
        self.weight = nn.Parameter(module.weight.detach().clone())
        self.bias = None if module.bias is None else nn.Parameter(module.bias.detach().clone())
        self.bit_logits = nn.Parameter(init_bit_logits(geometry.out_channels, len(self.weight_bits)))
        # one learned step per output channel and width, starting where the squared error is least
        steps = torch.stack([init_step(self.weight.detach(), b) for b in self.weight_bits], dim=1)
        self.log_step = nn.Parameter(steps.to(self.weight.dtype).log())
        self.act_logits = nn.Parameter(init_bit_logits(1, len(self.act_bits))[0], requires_grad=len(self.act_bits) > 1)
        self.act_clip = nn.Parameter(torch.tensor(float(act_clip)))
        object.__setattr__(self, "_state", state)
        object.__setattr__(self, "_gates", {})

    def bind(self, gates: Dict[str, GroupGate]) -> None:
        """Give the layer the network's gates (held by reference, not registered twice)."""
        object.__setattr__(self, "_gates", gates)

    def gate_of(self, group: Optional[str]) -> Optional[GroupGate]:
        """The keep gate of channel group ``group`` (None for channels that have no gate)."""
        return self._gates.get(group)

    # -- choices ----------------------------------------------------------------------------------
    def out_keep_prob(self) -> torch.Tensor:
        gate = self._gates.get(self.out_group)
        if gate is None:
            return torch.ones(self.geometry.out_channels, device=self.weight.device)
        return gate.prob(self._state.temperature)

    def out_mask(self) -> torch.Tensor:
        gate = self._gates.get(self.out_group)
        if gate is None:
            return torch.ones(self.geometry.out_channels, dtype=torch.bool, device=self.weight.device)
        return gate.hard_mask()

    def in_mask(self) -> torch.Tensor:
        """Kept input channels (features) of the argmax choice."""
        parts = []
        for seg in self.in_segments:
            gate = self._gates.get(seg.group)
            mask = gate.hard_mask() if gate is not None else torch.ones(seg.size, dtype=torch.bool, device=self.weight.device)
            parts.append(mask.repeat_interleave(seg.repeat))
        return torch.cat(parts)

    def kept_in_prob(self) -> torch.Tensor:
        """Expected kept input channels (features); differentiable in the producers' gates."""
        total = torch.zeros((), device=self.weight.device)
        for seg in self.in_segments:
            gate = self._gates.get(seg.group)
            kept = gate.prob(self._state.temperature).sum() if gate is not None else torch.tensor(float(seg.size))
            total = total + kept * seg.repeat
        return total

    def hard_bits(self) -> torch.Tensor:
        """Chosen width per output channel, 0 where pruned."""
        bits = torch.tensor(self.weight_bits, device=self.weight.device)[self.bit_logits.detach().argmax(1)]
        return torch.where(self.out_mask(), bits, torch.zeros_like(bits))

    def hard_log_steps(self) -> torch.Tensor:
        """Log weight step per output channel at its chosen width (pruned channels included)."""
        choice = self.bit_logits.detach().argmax(1, keepdim=True)
        return self.log_step.detach().gather(1, choice).squeeze(1)

    def hard_act_bits(self) -> int:
        return self.act_bits[int(self.act_logits.detach().argmax())]

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = self._state
        if state.mode == "float":
            return run_op(self.geometry, x, self.weight, self.bias)
        gate = self._gates.get(self.out_group)
        keep = gate.current if gate is not None else None
        if state.mode == "hard":
            x = quantize_activation(x, self.act_clip, (self.hard_act_bits(),), None, self.act_signed)
            theta = nn.functional.one_hot(self.bit_logits.detach().argmax(1), len(self.weight_bits)).to(self.weight.dtype)
        else:
            act_probs = sample_probs(self.act_logits, state, self.training) if len(self.act_bits) > 1 else None
            x = quantize_activation(x, self.act_clip, self.act_bits, act_probs, self.act_signed)
            theta = sample_probs(self.bit_logits, state, self.training)
        # theta · keep is applied inside the mixing function (one autograd node per layer)
        weight = mix_weights(self.weight, theta, self.weight_bits, self.log_step, keep=keep)
        bias = self.bias
        if bias is not None and keep is not None:
            bias = bias * keep
        return run_op(self.geometry, x, weight, bias)

    # -- cost -------------------------------------------------------------------------------------
    def stats(self, hard: bool = False, name: str = "") -> LayerStats:
        g = self.geometry
        n_bits = len(self.weight_bits)
        if hard:
            mask = self.out_mask().to(self.weight.dtype)
            choice = nn.functional.one_hot(self.bit_logits.detach().argmax(1), n_bits).to(self.weight.dtype)
            out_at_bits = (choice * mask[:, None]).sum(0)
            kept_in = self.in_mask().sum().to(self.weight.dtype)
            act_probs = nn.functional.one_hot(self.act_logits.detach().argmax(), len(self.act_bits)).to(self.weight.dtype)
        else:
            t = self._state.temperature
            probs = torch.softmax(self.bit_logits / t, dim=-1)
            out_at_bits = (probs * self.out_keep_prob()[:, None]).sum(0)
            kept_in = self.kept_in_prob()
            act_probs = torch.softmax(self.act_logits / t, dim=-1)
        # a grouped conv (depthwise included) has fixed input channels per group: in/groups
        fan_in = kept_in if g.groups == 1 else torch.tensor(float(g.in_channels // g.groups), device=self.weight.device)
        return LayerStats(name, g.kind, g.in_channels, g.out_channels, g.kernel_size, g.stride, g.groups,
                          g.in_spatial, g.out_spatial, self.weight_bits, self.act_bits, kept_in, fan_in,
                          out_at_bits, act_probs, g.depthwise)

    def extra_repr(self) -> str:
        g = self.geometry
        return (f"{g.kind}, {g.in_channels}->{g.out_channels}, weight_bits={self.weight_bits}, "
                f"act_bits={self.act_bits}, signed={self.act_signed}, out_group={self.out_group}")
