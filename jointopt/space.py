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
        wb, ab = check_bits(self.weight_bits, self.act_bits)
        check_sampling(self.sampling)
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


def check_bits(weight_bits, act_bits, where: str = "") -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """The candidate widths sorted and deduplicated; :class:`ConfigError` naming ``where + field`` if
    no weight width is non-zero, a width is outside 0..16, or an activation width is 0."""
    wb = tuple(sorted({int(b) for b in weight_bits}))
    ab = tuple(sorted({int(b) for b in act_bits}))
    for name, given, widths in (("weight_bits", weight_bits, wb), ("act_bits", act_bits, ab)):
        for b in widths:
            if b < 0 or b > 16:
                raise ConfigError(f"{where}{name}={list(given)} has the bit-width {b}, outside 0..16")
    if not [b for b in wb if b > 0]:
        raise ConfigError(f"{where}weight_bits={list(weight_bits)} has no non-zero width; add e.g. 8")
    if not ab or 0 in ab:
        raise ConfigError(f"{where}act_bits={list(act_bits)} must be non-empty and contain no 0")
    return wb, ab


def check_sampling(sampling: str, key: str = "sampling") -> None:
    if sampling not in SAMPLING:
        raise ConfigError(f"{key}={sampling!r}; choose one of {', '.join(SAMPLING)}")
