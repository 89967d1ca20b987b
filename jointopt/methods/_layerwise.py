"""``layerwise``: mixed precision per layer instead of per channel, no pruning (EdMIPS-style).

Cai and Vasconcelos, "Rethinking Differentiable Search for Mixed-Precision Neural Networks"
(EdMIPS), CVPR 2020: every layer has one softmax over the candidate widths, the layer computes
with the probability-weighted mixture of its quantized weights, and the loss adds λ times the
expected cost; the argmax width of each layer is kept. This is the method the published joint
search compares against.

Here it is the joint search's own machinery with two constraints, so everything else (schedules,
cost, freeze) is shared: the keep gates are fixed open (no 0-bit choice), and the channels of a
layer share one width distribution — their selector logits start equal and receive the layer's
summed gradient, which is exactly a single per-layer logit vector under any element-wise optimiser.
"""
from __future__ import annotations

import time

from ._base import Method
from ._common import finish, fix_gates, prepare, searchable
from ._joint import suggest_lambda


def tie_layer_selectors(net) -> None:
    """Make every layer's channels share one width distribution (see the module docstring)."""
    for _, layer in net.searchable_layers():
        logits = layer.bit_logits
        with __import__("torch").no_grad():
            logits.copy_(logits.mean(0, keepdim=True).expand_as(logits))
        logits.register_hook(lambda grad: grad.sum(0, keepdim=True).expand_as(grad).contiguous())


class LayerwiseMethod(Method):
    name = "layerwise"
    summary = "per-layer mixed precision, no pruning (EdMIPS-style differentiable search); λ from the tuner"
    uses_lambda = True
    stops_early = True

    def suggest(self, trial, study):
        return {"lambda": suggest_lambda(trial, study)}

    def run(self, runner, warm, params):
        started = time.time()
        seed = prepare(runner)
        runner.resume_state = None  # a retried trial searches again
        net = searchable(runner, warm)
        fix_gates(net)
        tie_layer_selectors(net)
        runner.search(net, params["lambda"], 0.0, runner.config.search.temperature_decay, seed)
        return finish(runner, net, warm, params, started, seed, info=getattr(runner, "freeze_report", {}))
