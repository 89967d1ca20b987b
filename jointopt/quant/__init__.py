"""Quantizers with straight-through gradients, and integer bit packing. Knows nothing of search."""
from ._acts import act_levels, quantize_activation
from ._weights import channel_scale, mix_weights, quantize_weight, weight_qmax

__all__ = ["act_levels", "quantize_activation", "channel_scale", "mix_weights", "quantize_weight", "weight_qmax"]
