"""Small constant tensors (candidate widths, largest codes) made once per device, not per call.

On a GPU a tensor made from a Python list is a host-to-device copy that waits for the stream, so
one made per layer and step stalls the search; on the CPU it still costs an allocation and a copy.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch

_MADE: Dict[tuple, torch.Tensor] = {}


def constant(values: Sequence[float], dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """``torch.tensor(values, dtype=dtype, device=device)``, made the first time and shared after.

    The result is shared: never modify it in place. While ``torch.compile`` traces, the tensor is
    made as usual (the graph holds it as a constant; a cache lookup would only add guards).
    """
    values, device = tuple(values), torch.device(device)
    if torch.compiler.is_compiling():
        return torch.tensor(values, dtype=dtype, device=device)
    key = (values, dtype, device)
    made = _MADE.get(key)
    if made is None:
        with torch.inference_mode(False):  # a normal tensor even when first asked for under inference mode,
            made = _MADE[key] = torch.tensor(values, dtype=dtype, device=device)  # or training could not use it
    return made
