"""Every hard topology: convert, search a few steps, freeze, compare; and costs to the bit."""
import pytest
import torch
import torch.nn.functional as F

import jointopt
from jointopt.graph import frozen_cost
from jointopt.nn import FrozenLayer
from nets import TOPOLOGIES, randomize_bn


def search_steps(net, x, steps=4, lam=0.5):
    opt_w = torch.optim.Adam(list(net.weight_parameters()), lr=1e-2)
    opt_s = torch.optim.SGD(list(net.selector_parameters()), lr=0.5, momentum=0.9)
    ref = net.reference_cost("memory")
    target = torch.randint(0, 3, (x.shape[0],))
    net.train()
    for _ in range(steps):
        out = net(x)
        loss = F.cross_entropy(out[:, :3], target) + lam * net.cost("memory") / ref
        opt_w.zero_grad()
        opt_s.zero_grad()
        loss.backward()
        opt_w.step()
        opt_s.step()
        net.anneal(0.045)
    return net


def independent_memory_bits(frozen):
    """Σ over frozen tensors of (weights of each output channel) × (its bits), counted directly."""
    total = 0
    for m in frozen.modules():
        if isinstance(m, FrozenLayer):
            per_channel = m.weight[0].numel()
            total += sum(per_channel * int(b) for b in m.bits)
    return total


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_float_mode_matches_original(name):
    cls, shape = TOPOLOGIES[name]
    torch.manual_seed(0)
    model = randomize_bn(cls()).eval()
    x = torch.randn(*shape)
    for fold in (False, True):
        net = jointopt.convert(model, x, fold_bn=fold).eval().set_mode("float")
        assert torch.allclose(net(x), model(x), atol=1e-5), (name, fold)


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_search_freeze_matches_hard_mode(name):
    cls, shape = TOPOLOGIES[name]
    torch.manual_seed(1)
    model = randomize_bn(cls()).eval()
    x = torch.randn(*shape)
    net = jointopt.convert(model, x)
    search_steps(net, x)
    # push the selectors into a mixed state: some channels pruned, several widths used
    g = torch.Generator().manual_seed(2)
    for gate in net.gates.values():
        if gate.prunable:
            gate.logits.data = torch.randn(gate.size, generator=g) * 2
    for _, layer in net.searchable_layers():
        layer.bit_logits.data = torch.randn(layer.bit_logits.shape, generator=g)
    net.eval().set_mode("hard")
    expected = net(x)
    frozen = net.freeze().eval()
    assert not any(isinstance(m, jointopt.SearchableNetwork) for m in frozen.modules())
    assert torch.allclose(frozen(x), expected, atol=1e-5), (frozen(x) - expected).abs().max()
    hard = net.cost("memory", hard=True).item()
    assert hard == frozen_cost(frozen, "memory").item() == independent_memory_bits(frozen)
    assert net.cost("bitops", hard=True).item() == pytest.approx(frozen_cost(frozen, "bitops").item(), rel=1e-6)
    # pruned channels are physically gone
    kept_total = sum(r["kept"] for r in net.summary())
    frozen_out = sum(m.geometry.out_channels for m in frozen.modules() if isinstance(m, FrozenLayer))
    assert kept_total == frozen_out


def test_something_is_actually_pruned_in_the_mixed_state():
    cls, shape = TOPOLOGIES["residual"]
    torch.manual_seed(0)
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    for gate in net.gates.values():
        if gate.prunable:
            gate.logits.data[: gate.size // 2] = -5.0
    frozen = net.freeze()
    total = sum(r["total"] for r in net.summary())
    kept = sum(m.geometry.out_channels for m in frozen.modules() if isinstance(m, FrozenLayer))
    assert kept < total
    assert frozen_cost(frozen, "memory") < net.reference_cost("memory")


def test_group_never_loses_every_channel():
    cls, shape = TOPOLOGIES["chain"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    for gate in net.gates.values():
        if gate.prunable:
            gate.logits.data.fill_(-4.0)
            gate.logits.data[1] = -3.0
    frozen = net.freeze().eval()
    layers = [m for m in frozen.modules() if isinstance(m, FrozenLayer)]
    assert [m.geometry.out_channels for m in layers[:3]] == [1, 1, 1]
    net.eval().set_mode("hard")
    x = torch.randn(*shape)
    assert torch.allclose(frozen(x), net(x), atol=1e-5)


def test_residual_producers_share_one_group_and_grouped_conv_is_bitwidth_only():
    cls, shape = TOPOLOGIES["residual"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    groups = net.analysis.groups
    layers = net.analysis.layers
    assert layers["stem.0"].out_group == layers["a2.0"].out_group
    assert layers["short.0"].out_group == layers["b2.0"].out_group
    assert any("residual add" in c for c in groups[layers["b2.0"].out_group].couplings)
    cls, shape = TOPOLOGIES["grouped"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    info = net.analysis.layers["grouped.0"]
    assert "bit-width search only" in info.note
    assert not net.gates[info.out_group].prunable
    assert any("grouped convolution" in r for r in net.analysis.groups[info.out_group].fixed)


def test_first_input_and_last_output_never_pruned():
    cls, shape = TOPOLOGIES["chain"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    assert not net.gates[net.analysis.layers["fc"].out_group].prunable
    first = net.analysis.layers["body.0.0"].in_segments[0]
    assert first.group is not None and not net.gates[first.group].prunable


def test_exclude_keeps_layer_float_and_unpruned():
    cls, shape = TOPOLOGIES["chain"]
    model = cls().eval()
    x = torch.randn(*shape)
    net = jointopt.convert(model, x, jointopt.SearchSpace(exclude=("body.1.0",)))
    names = [n for n, _ in net.searchable_layers()]
    assert "body.1.0" not in names and "body.0.0" in names
    assert "body.1.0" in net.analysis.excluded
    assert not net.gates[net.analysis.layers["body.0.0"].out_group].prunable
    with pytest.raises(jointopt.UnsupportedOpError, match="not Conv/Linear layers"):
        jointopt.convert(model, x, jointopt.SearchSpace(exclude=("nope",)))


def test_activation_signedness_follows_the_producer():
    cls, shape = TOPOLOGIES["concat"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    layers = dict(net.searchable_layers())
    assert layers["stem.0"].act_signed  # network input can be negative
    assert not layers["left.0"].act_signed  # after ReLU
    assert layers["mix"].act_signed  # concat of ReLU and Hardswish (can be negative)


def test_activation_search_space_runs_and_freezes():
    cls, shape = TOPOLOGIES["depthwise"]
    x = torch.randn(*shape)
    net = jointopt.convert(cls().eval(), x, jointopt.SearchSpace(act_bits=(2, 4, 8)))
    search_steps(net, x, steps=2)
    assert all(l.act_logits.grad is not None for _, l in net.searchable_layers())
    for _, layer in net.searchable_layers():
        layer.act_logits.data = torch.tensor([0.0, 3.0, 0.0])
    net.eval().set_mode("hard")
    frozen = net.freeze().eval()
    assert {m.act_bits for m in frozen.modules() if isinstance(m, FrozenLayer)} == {4}
    assert torch.allclose(frozen(x), net(x), atol=1e-5)
    assert net.cost("bitops", hard=True).item() == pytest.approx(frozen_cost(frozen, "bitops").item(), rel=1e-6)


@pytest.mark.parametrize("sampling", ["gumbel", "hard"])
def test_sampling_modes_train(sampling):
    torch.manual_seed(0)
    cls, shape = TOPOLOGIES["residual"]
    x = torch.randn(*shape)
    net = jointopt.convert(cls().eval(), x, jointopt.SearchSpace(sampling=sampling))
    before = [p.detach().clone() for p in net.selector_parameters()]
    search_steps(net, x, steps=2)
    after = list(net.selector_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))  # the selectors get gradients
    net.train()
    first, second = net(x), net(x)
    net.state.mode = "hard"
    argmax = net(x)
    net.state.mode = "soft"
    if sampling == "gumbel":  # a fresh random draw every forward pass (softmax would repeat itself)
        assert not torch.allclose(first, second)
    else:  # the forward pass is the argmax network's (softmax would mix every width)
        assert torch.equal(first, second) and torch.allclose(first, argmax, atol=1e-5)
    net.eval()  # evaluation does not sample
    assert torch.equal(net(x), net(x))


def test_no_pruning_space_has_no_prunable_groups():
    cls, shape = TOPOLOGIES["chain"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape), jointopt.SearchSpace(weight_bits=(4, 8)))
    assert not any(g.prunable for g in net.gates.values())


def test_depthwise_pruned_to_one_channel_stays_depthwise_for_cost_models():
    cls, shape = TOPOLOGIES["depthwise"]
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    gate = net.gates[net.analysis.layers["dw.0"].out_group]
    gate.logits.data.fill_(-5.0)
    gate.logits.data[2] = 5.0
    frozen = net.freeze()
    stats = {s.name: s for s in jointopt.graph.frozen_layer_stats(frozen)}
    assert stats["dw.0"].groups == 1 and stats["dw.0"].depthwise
    for name in jointopt.list_cost_models():
        if name == "lut":
            continue
        assert net.cost(name, hard=True).item() == pytest.approx(frozen_cost(frozen, name).item(), rel=1e-6), name


class PaddedModes(torch.nn.Module):
    """Reflect, circular and replicate padding (1-D and 2-D), which a plain ``F.conv2d(padding=...)`` cannot do."""

    def __init__(self):
        super().__init__()
        self.reflect = torch.nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.circular = torch.nn.Conv2d(8, 8, 3, padding=(1, 2), padding_mode="circular")
        self.replicate = torch.nn.Conv1d(8, 6, 3, padding=2, dilation=2, padding_mode="replicate")
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.circular(F.relu(self.reflect(x))))
        return self.fc(F.relu(self.replicate(x.mean(2))).mean(2))


class SamePadding(torch.nn.Module):
    """``padding="same"`` with odd kernels, an even kernel (asymmetric padding) and a dilated Conv1d."""

    def __init__(self):
        super().__init__()
        self.odd = torch.nn.Conv2d(3, 8, 3, padding="same")
        self.even = torch.nn.Conv2d(8, 8, 4, padding="same")
        self.valid = torch.nn.Conv2d(8, 8, 3, padding="valid")
        self.temporal = torch.nn.Conv1d(8, 6, 3, padding="same", dilation=2)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.valid(F.relu(self.even(F.relu(self.odd(x))))))
        return self.fc(F.relu(self.temporal(x.mean(3))).mean(2))


@pytest.mark.parametrize("cls", [PaddedModes, SamePadding])
def test_padding_modes_and_same_padding_are_kept(cls):
    """convert must not turn reflect/circular padding into zeros nor choke on padding='same'."""
    torch.manual_seed(0)
    model = cls().eval()
    x = torch.rand(8, 3, 8, 8) + 0.5  # positive: zero padding would differ visibly from reflect/circular
    net = jointopt.convert(model, x)
    with torch.no_grad():
        assert torch.allclose(net.eval().set_mode("float")(x), model(x), atol=1e-6)
    search_steps(net.set_mode("soft"), x)
    g = torch.Generator().manual_seed(3)
    for _, layer in net.searchable_layers():
        layer.bit_logits.data = torch.randn(layer.bit_logits.shape, generator=g)
    net.eval().set_mode("hard")
    frozen = net.freeze().eval()
    with torch.no_grad():
        assert torch.allclose(frozen(x), net(x), atol=1e-5)
    assert net.cost("memory", hard=True).item() == frozen_cost(frozen, "memory").item() == independent_memory_bits(frozen)


def test_padding_that_cannot_be_expressed_is_refused():
    conv = torch.nn.Conv2d(3, 4, 3)
    conv.padding = "full"  # not a PyTorch padding: refused with the layer named, not a raw TypeError later
    model = torch.nn.Sequential(conv, torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(jointopt.UnsupportedOpError, match="'0'.*padding='full'"):
        jointopt.convert(model, torch.randn(2, 3, 8, 8))


def test_cost_follows_the_mode():
    """After set_mode('hard') the cost is the argmax allocation's (what freeze keeps); hard= still overrides."""
    cls, shape = TOPOLOGIES["depthwise"]
    torch.manual_seed(0)
    net = jointopt.convert(cls().eval(), torch.randn(*shape))
    g = torch.Generator().manual_seed(4)
    for gate in net.gates.values():
        if gate.prunable:
            gate.logits.data = torch.randn(gate.size, generator=g)
    for _, layer in net.searchable_layers():
        layer.bit_logits.data = torch.randn(layer.bit_logits.shape, generator=g)
    soft = net.set_mode("soft").cost("memory").item()
    hard = net.cost("memory", hard=True).item()
    assert soft != hard
    net.set_mode("hard")
    assert net.cost("memory").item() == hard == frozen_cost(net.freeze(), "memory").item()
    assert net.cost("bitops").item() == net.cost("bitops", hard=True).item()
    assert net.cost("memory", hard=False).item() == soft  # the explicit override the search loop uses
    assert net.set_mode("float").cost("memory").item() == soft


class Divide(torch.nn.Module):
    """``conv_a(x) / conv_b(x)`` (the ratio of two branches), then a division by a constant."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
        self.num = torch.nn.Conv2d(8, 6, 3, padding=1)
        self.den = torch.nn.Conv2d(8, 6, 1)
        self.scaled = torch.nn.Conv2d(6, 5, 1)
        self.fc = torch.nn.Linear(5, 3)
        with torch.no_grad():  # a positive denominator: its input is a ReLU output
            self.den.weight.abs_()
            self.den.bias.fill_(1.0)

    def forward(self, x):
        x = self.stem(x)
        y = self.num(x) / self.den(x)
        return self.fc((self.scaled(y) / 2).mean((2, 3)))


def test_division_never_prunes_a_denominator():
    """A pruned denominator channel would be 0 / 0 = nan in hard mode, while the frozen network is finite."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    net = jointopt.convert(Divide().eval(), x)
    layers, groups = net.analysis.layers, net.analysis.groups
    ratio = layers["den"].out_group
    assert layers["num"].out_group == ratio and not net.gates[ratio].prunable
    assert any("divides by it" in reason for reason in groups[ratio].fixed)
    assert any("division" in c for c in groups[ratio].couplings)
    scaled = layers["scaled"].out_group  # divided by a constant: zero stays zero, still prunable
    assert net.gates[scaled].prunable and net.gates[layers["stem.0"].out_group].prunable
    search_steps(net, x)
    for gate in net.gates.values():
        if gate.prunable:
            gate.logits.data[: gate.size // 2] = -5.0
    net.eval().set_mode("hard")
    expected = net(x)
    frozen = net.freeze().eval()
    assert torch.isfinite(expected).all()
    assert torch.allclose(frozen(x), expected, atol=1e-5)
    assert sum(r["kept"] for r in net.summary()) < sum(r["total"] for r in net.summary())


class ChannelMultiplier(torch.nn.Module):
    """A conv with groups == in_channels and out_channels == 2 * in_channels (a depthwise conv with
    channel multiplier 2, in TensorFlow's terms): input channel i feeds outputs 2i and 2i+1, so it
    cannot share its producer's channel group the way a depthwise conv does."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
        self.mult = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1, groups=4), torch.nn.BatchNorm2d(8),
                                        torch.nn.ReLU())
        self.pw = torch.nn.Sequential(torch.nn.Conv2d(8, 6, 1), torch.nn.BatchNorm2d(6), torch.nn.ReLU())
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(self.pw(self.mult(self.stem(x))).mean((2, 3)))


def test_a_channel_multiplier_conv_is_grouped_not_depthwise():
    torch.manual_seed(3)
    model = randomize_bn(ChannelMultiplier()).eval()
    x = torch.randn(2, 3, 8, 8)
    net = jointopt.convert(model, x)
    assert "grouped (groups=4)" in net.analysis.layers["mult.0"].note
    assert not any(s.depthwise for s in net.layer_stats(hard=True))
    search_steps(net, x)
    g = torch.Generator().manual_seed(4)
    for gate in net.gates.values():
        if gate.prunable:
            gate.logits.data = torch.randn(gate.size, generator=g) * 2
    net.eval().set_mode("hard")
    expected = net(x)
    frozen = net.freeze().eval()
    mult = frozen.get_submodule("mult.0")
    assert (mult.geometry.in_channels, mult.geometry.out_channels, mult.geometry.groups) == (4, 8, 4)
    assert torch.allclose(frozen(x), expected, atol=1e-5)
    assert net.cost("memory", hard=True).item() == frozen_cost(frozen, "memory").item() == independent_memory_bits(frozen)
    assert net.cost("ne16", hard=True).item() == pytest.approx(frozen_cost(frozen, "ne16").item(), rel=1e-6)


def test_only_the_network_inputs_clip_stays_fixed():
    """The layers that read the network's input keep their calibrated clip (not a trainable parameter,
    so the first convolution computes no input gradient and data-parallel training finds no unused
    parameter); every other clip learns — searchable and frozen alike."""
    cls, shape = TOPOLOGIES["residual"]
    torch.manual_seed(0)
    x = torch.randn(*shape)
    net = jointopt.convert(cls().eval(), x).train()
    first = {name for name, layer in net.searchable_layers() if layer.in_segments[0].group == "input_x"}
    assert first and len(first) < len(net.searchable_layers())
    assert all(layer.act_clip.requires_grad == (name not in first) for name, layer in net.searchable_layers())
    assert not any(p is layer.act_clip for name, layer in net.searchable_layers() if name in first
                   for p in net.weight_parameters())

    def grads(module, layers):
        module(x).square().mean().backward()
        return [layer.act_clip.grad for _, layer in layers]

    got = grads(net, net.searchable_layers())
    assert sum(g is None for g in got) == len(first) and all(g is not None for g in got[len(first):])
    frozen = net.eval().set_mode("hard").freeze().train()
    layers = [(n, m) for n, m in frozen.named_modules() if isinstance(m, FrozenLayer)]
    assert sum(not m.act_clip.requires_grad for _, m in layers) == len(first)
    got = grads(frozen, layers)
    assert sum(g is None for g in got) == len(first) and sum(g is not None for g in got) == len(layers) - len(first)
