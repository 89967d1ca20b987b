"""Quantizers with straight-through gradients, and integer bit packing. Knows nothing of search."""
from ._acts import act_levels, layer_clip, quantize_activation
from ._weights import init_step, mix_weights, quantize_weight, weight_codes, weight_range

__all__ = ["act_levels", "layer_clip", "quantize_activation", "init_step", "mix_weights", "quantize_weight", "weight_codes",
           "weight_range"]
