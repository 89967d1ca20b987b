"""What the search may choose: weight bit-widths per channel (0 = pruned), activation bits per layer."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Tuple

from .errors import ConfigError

SAMPLING = ("softmax", "gumbel", "hard")


@dataclass(frozen=True)
class SearchSpace:
    """The choices the selectors search over.

    Args:
        weight_bits: candidate weight widths per output channel; ``0`` means the channel is pruned.
        act_bits: candidate input-activation widths per layer; one value fixes them.
        exclude: qualified names of Conv/Linear layers left untouched (float, never pruned).
        sampling: ``softmax`` (temperature softmax), ``gumbel`` (Gumbel-softmax samples) or
            ``hard`` (straight-through argmax with soft gradients).
        keep_init: initial keep logit of every prunable channel; sigmoid(1) ≈ 0.73 starts the gates
            where their gradient is strong (a saturated start, e.g. 3, makes pruning much rarer
            than lowering bits).
    """

    weight_bits: Tuple[int, ...] = (0, 2, 4, 8)
    act_bits: Tuple[int, ...] = (8,)
    exclude: Tuple[str, ...] = ()
    sampling: str = "softmax"
    keep_init: float = 1.0

    def __post_init__(self):
        wb = tuple(sorted({int(b) for b in self.weight_bits}))
        ab = tuple(sorted({int(b) for b in self.act_bits}))
        if not [b for b in wb if b > 0]:
            raise ConfigError(f"weight_bits={list(self.weight_bits)} has no non-zero width; add e.g. 8")
        for b in wb + ab:
            if b < 0 or b > 16:
                raise ConfigError(f"bit-width {b} is outside 0..16")
        if not ab or 0 in ab:
            raise ConfigError(f"act_bits={list(self.act_bits)} must be non-empty and contain no 0")
        if self.sampling not in SAMPLING:
            raise ConfigError(f"sampling={self.sampling!r}; choose one of {', '.join(SAMPLING)}")
        object.__setattr__(self, "weight_bits", wb)
        object.__setattr__(self, "act_bits", ab)
        object.__setattr__(self, "exclude", tuple(self.exclude))

    @property
    def prune(self) -> bool:
        """Whether 0 bits (pruning) is a choice."""
        return 0 in self.weight_bits

    @property
    def nonzero_bits(self) -> Tuple[int, ...]:
        return tuple(b for b in self.weight_bits if b > 0)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
