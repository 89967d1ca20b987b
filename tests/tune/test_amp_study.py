"""amp: true trains under bf16 autocast and evaluates in fp32 (checked on CPU, where autocast runs too)."""
import json

import torch

import jointopt
from jointopt.train.amp import autocast_forward
from jointopt.tune.setup import warmup_key
from nets import Chain


def test_autocast_forward_trains_in_bf16_and_evaluates_in_fp32():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 12, 12)
    net = jointopt.convert(Chain().eval(), x, jointopt.SearchSpace()).set_mode("soft")
    fp32 = net.train()(x)
    seen = []
    inner = [m for m in net.modules() if m is not net and not list(m.children())][0]  # a layer the forward calls
    hook = inner.register_forward_pre_hook(lambda m, i: seen.append(torch.is_autocast_enabled("cpu")))
    with autocast_forward(net, "cpu"):
        amp = net.train()(x)
        evaluated = net.eval()(x)
    hook.remove()
    assert seen == [True, False]  # training under autocast, evaluation not
    assert amp.dtype == torch.float32 and not torch.equal(amp, fp32)  # bf16 convolutions, fp32 out
    assert torch.allclose(amp, fp32, rtol=0.05, atol=0.05)
    assert torch.equal(evaluated, net.eval()(x))
    assert "forward" not in vars(net)  # the plain module again


def test_amp_study(tiny_config, tmp_path, monkeypatch):
    import jointopt.train.amp as amp

    used = []
    plain = amp.autocast_forward
    monkeypatch.setattr(amp, "autocast_forward", lambda m, d, enabled=True: used.append(enabled) or plain(m, d, enabled))
    config = tiny_config.override(["amp=true", "tuner.trials=1", "tuner.baselines=[]"])
    assert warmup_key(config) != warmup_key(tiny_config)  # an AMP warm-up is not an fp32 one
    summary = jointopt.search(config, tmp_path / "run", progress=False)
    (result,) = summary["results"]
    assert 0 < result["val_acc"] <= 100 and all(v > 0 for v in result["costs"].values())
    assert json.loads((tmp_path / "run/front.json").read_text())["front"]
    assert used == [True, True, True]  # warm-up, search, fine-tune
