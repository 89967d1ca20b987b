"""Quantizers with straight-through gradients, and integer bit packing. Knows nothing of search."""
from ._acts import act_levels, quantize_activation
from ._weights import WeightGrid, init_step, mix_weights, quantize_weight, weight_codes, weight_grid, weight_range

__all__ = ["act_levels", "quantize_activation", "WeightGrid", "init_step", "mix_weights",
           "quantize_weight", "weight_codes", "weight_grid", "weight_range"]
