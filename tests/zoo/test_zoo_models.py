"""Every zoo model: builds, runs on its input shape, traces with torch.fx, matches REFERENCE.md."""
from __future__ import annotations

import pytest
import torch
import torch.fx
from torch import nn

import jointopt
from jointopt.zoo import create_model, list_models, model_info

# conv+linear weights (no biases) and MACs per sample, REFERENCE.md §2 (MLPerf Tiny; the paper)
REFERENCE = {
    "resnet8": (77_360, 12.5e6),
    "dscnn": (22_016, 2.66e6),
    "mobilenetv1_025": (208_112, 7.49e6),
    "resnet18": (11_261_632, 2.22e9),  # "11.26 M"
}
ALLOWED = (nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Linear,
           nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.Dropout)


def weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))


def macs(model: nn.Module, x: torch.Tensor) -> int:
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.weight[0].numel()  # (cin / groups) * kh * kw
            total += output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += module.weight.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("name", list_models())
def test_model_runs_on_its_input_shape_and_traces(name):
    info = model_info(name)
    model = create_model(name).eval()
    x = torch.randn(2, *info.input_shape)
    with torch.no_grad():
        y = model(x)
        traced = torch.fx.symbolic_trace(model)
        assert torch.allclose(traced(x), y, atol=1e-5)
    assert y.shape == (2, info.num_classes)
    modules = dict(traced.named_modules())
    for node in traced.graph.nodes:
        if node.op == "call_module":
            assert isinstance(modules[node.target], ALLOWED), f"{node.target}: {type(modules[node.target]).__name__}"
            if isinstance(modules[node.target], nn.BatchNorm2d):  # BN right after a conv: foldable
                producer = node.args[0]
                assert producer.op == "call_module" and isinstance(modules[producer.target], nn.Conv2d)
                assert len(producer.users) == 1


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_weight_and_mac_counts_match_the_reference(name):
    expected_weights, expected_macs = REFERENCE[name]
    model = create_model(name)
    assert weights(model) == expected_weights
    assert macs(model, torch.zeros(1, *model_info(name).input_shape)) == pytest.approx(expected_macs, rel=0.01)


def test_digits_cnn_is_small_and_prunable():
    model = create_model("digits_cnn")
    assert 1_000 < weights(model) < 20_000
    assert model_info("digits_cnn").dataset == "digits"


def test_resnet8_runs_on_fashion_mnist_and_other_class_counts():
    model = create_model("resnet8", input_shape=(1, 28, 28)).eval()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert weights(model) == 77_360 - 2 * 9 * 16  # the stem sees 1 channel instead of 3
    assert create_model("resnet8", num_classes=4, in_channels=2)(torch.zeros(1, 2, 32, 32)).shape == (1, 4)
    assert create_model("dscnn", num_classes=35).eval()(torch.zeros(1, 1, 49, 10)).shape == (1, 35)


def test_mlperf_resnet8_shortcuts_are_biased_1x1_convs_without_batchnorm():
    model = create_model("resnet8")
    shortcuts = [m for n, m in model.named_modules() if n.endswith("shortcut")]
    assert len(shortcuts) == 2 and all(isinstance(s, nn.Conv2d) and s.kernel_size == (1, 1) for s in shortcuts)
    assert all(s.bias is not None and s.stride == (2, 2) for s in shortcuts)


def test_dscnn_output_grid_matches_keras_same_padding():
    model = create_model("dscnn").eval()
    grid = model.stem(torch.zeros(1, 1, 49, 10)).shape
    assert grid == (1, 64, 25, 5)
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 4 and all(m.groups == 64 for m in depthwise)


def test_public_names_are_exported_from_the_package():
    assert jointopt.create_model is create_model and jointopt.list_models is list_models
    assert set(REFERENCE) | {"digits_cnn"} <= set(list_models())
    assert list_models("resnet*") == ["resnet18", "resnet8"]
