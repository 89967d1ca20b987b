"""Mixed precision (AMP): under autocast the quantizers compute in fp32 and a search step trains."""
import torch
import torch.nn.functional as F

import jointopt
from jointopt.quant import mix_weights, quantize_activation, quantize_weight
from nets import Chain


def test_quantizers_are_fp32_under_autocast():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 5, 5).relu() * 3
    clip = torch.tensor(2.0, requires_grad=True)
    w = torch.randn(8, 4, 3, 3, requires_grad=True)
    theta = torch.full((8, 3), 1 / 3, requires_grad=True)
    plain = (quantize_activation(x, clip, (2, 4, 8), torch.tensor([0.2, 0.3, 0.5])), mix_weights(w, theta, (2, 4, 8)),
             quantize_weight(w, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = (quantize_activation(x.bfloat16(), clip, (2, 4, 8), torch.tensor([0.2, 0.3, 0.5])),
               mix_weights(w, theta, (2, 4, 8)), quantize_weight(w, 4))
    for a, b in zip(amp, plain):
        assert a.dtype == torch.float32
    assert torch.equal(amp[1], plain[1]) and torch.equal(amp[2], plain[2])  # the einsum would be bf16 without fp32()
    assert torch.equal(amp[0], quantize_activation(x.bfloat16().float(), clip, (2, 4, 8), torch.tensor([0.2, 0.3, 0.5])))


def test_search_step_under_autocast():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 12, 12), torch.randint(0, 5, (8,))
    net = jointopt.convert(Chain().eval(), x, jointopt.SearchSpace(act_bits=(4, 8))).train().set_mode("soft")
    cost = jointopt.get_cost_model("memory")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        task = F.cross_entropy(net(x), y)
    loss = task.float() + 0.5 * net.cost(cost) / net.reference_cost(cost)  # the cost in fp32, outside autocast
    loss.backward()  # failed with "expected scalar type Float but found BFloat16" before the quantizers ran in fp32
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.selector_parameters())
