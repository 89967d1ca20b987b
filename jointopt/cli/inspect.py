"""``jointopt inspect``: what the search will do with a model, before running it."""
from __future__ import annotations

import argparse

HELP = """\
Show what `jointopt search` will do with a model: the searchable layers, the channel groups and
what couples them (residual adds, depthwise convs, concatenations), which groups cannot be pruned
and why, excluded layers, and the reference cost (unpruned, largest widths) under every cost model.

examples:
  jointopt inspect resnet8
  jointopt inspect mypackage.models:build_net --input-shape 3,32,32
  jointopt inspect dscnn --weight-bits 0,4,8 --act-bits 2,4,8 --exclude fc
"""


def _ints(text: str):
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be comma-separated integers, e.g. 3,32,32") from None


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="show searchable layers, channel groups and reference costs",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="zoo name (see `jointopt inspect --list`) or module:factory")
    p.add_argument("--input-shape", type=_ints, help="C,H,W of one sample (default: the zoo model's)")
    p.add_argument("--weight-bits", type=_ints, default=(0, 2, 4, 8), help="candidate weight widths (0 = prune)")
    p.add_argument("--act-bits", type=_ints, default=(8,), help="candidate activation widths")
    p.add_argument("--exclude", action="append", default=[], help="layer to leave untouched (repeatable)")
    p.add_argument("--cost-model", action="append", default=[], metavar="SPEC", help="also show this cost model")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    import jointopt
    from ..cost import get_cost_model, list_cost_models
    from ..errors import ConfigError
    from ..zoo import create_model, model_info

    model = create_model(args.model)
    shape = args.input_shape
    if shape is None:
        try:
            shape = tuple(model_info(args.model).input_shape)
        except Exception:
            raise ConfigError(f"model {args.model!r} is not from the zoo: pass --input-shape C,H,W") from None
    space = jointopt.SearchSpace(weight_bits=args.weight_bits, act_bits=args.act_bits, exclude=tuple(args.exclude))
    net = jointopt.convert(model.eval(), torch.randn(2, *shape), space)
    a = net.analysis
    print(f"model {args.model}, input {list(shape)}, weight bits {list(space.weight_bits)}, "
          f"activation bits {list(space.act_bits)}\n")
    print(f"searchable layers ({len(a.layers)}):")
    print(f"  {'layer':<30} {'kind':<7} {'in':>5} {'out':>5} {'weights':>9}  input  group / note")
    for name, layer in net.searchable_layers():
        info = a.layers[name]
        g = layer.geometry
        group = info.out_group or "—"
        prunable = "prunable" if group in net.gates and net.gates[group].prunable else "fixed"
        print(f"  {name:<30} {g.kind:<7} {g.in_channels:>5} {g.out_channels:>5} {layer.weight.numel():>9}  "
              f"{'signed' if info.act_signed else 'unsigned':<6} {group} ({prunable}){'; ' + info.note if info.note else ''}")
    if a.excluded:
        print("\nexcluded layers:")
        for name, why in a.excluded.items():
            print(f"  {name}: {why}")
    print("\nchannel groups:")
    for gid, info in a.groups.items():
        state = "prunable" if info.prunable and space.prune else "not prunable"
        print(f"  {gid} ({info.size} channels, {state})")
        if info.producers:
            print(f"    written by: {', '.join(info.producers)}")
        if info.consumers:
            print(f"    read by:    {', '.join(info.consumers)}")
        for c in info.couplings:
            print(f"    coupled:    {c}")
        for f in info.fixed:
            print(f"    fixed:      {f}")
    print("\nreference cost (unpruned, largest widths):")
    names = list(dict.fromkeys(list_cost_models() + list(args.cost_model)))
    for name in names:
        try:
            cm = get_cost_model(name)
            value = float(net.reference_cost(cm))
        except Exception as exc:  # e.g. a LUT that does not cover this model
            print(f"  {name:<12} n/a ({exc})")
            continue
        print(f"  {name:<12} {cm.format(value):>16}   ({value:,.0f} {cm.unit})")
    return 0
