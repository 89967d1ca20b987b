"""``jointopt inspect``: what the search will do with a model, before running it."""
from __future__ import annotations

import argparse

HELP = """\
Show what `jointopt search` will do with a model: the searchable layers, the channel groups and
what couples them (residual adds, depthwise convs, concatenations), which groups cannot be pruned
and why, excluded layers, and the reference cost (unpruned, largest widths) under every cost model.

MODEL is a zoo name (`jointopt inspect --list`), module:factory (a module in the current folder
works, as with `python -m`) or path/to/file.py:factory.

examples:
  jointopt inspect --list
  jointopt inspect resnet8
  jointopt inspect mypackage.models:build_net --input-shape 3,32,32
  jointopt inspect dscnn --weight-bits 0,4,8 --act-bits 2,4,8 --exclude fc,conv1.conv
  jointopt inspect resnet8 --format json
"""

DEFAULT_WEIGHT_BITS = (0, 2, 4, 8)
DEFAULT_ACT_BITS = (8,)


def _shape(text: str):
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be comma-separated integers, e.g. 3,32,32") from None


def register(subparsers) -> None:
    from ._options import add_format_option, add_list_option

    p = subparsers.add_parser("inspect", help="show searchable layers, channel groups and reference costs",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="zoo name (see `jointopt inspect --list`), module:factory or "
                                            "path/to/file.py:factory")
    p.add_argument("--list", action="store_true", help="list the zoo models instead (same as `jointopt list models`)")
    p.add_argument("--input-shape", type=_shape, metavar="C,H,W",
                   help="shape of one sample (default: the zoo model's; required for other models)")
    add_list_option(p, "--weight-bits", item=int, default=DEFAULT_WEIGHT_BITS, metavar="BITS",
                    help="candidate weight widths, 0 = prune")
    add_list_option(p, "--act-bits", item=int, default=DEFAULT_ACT_BITS, metavar="BITS",
                    help="candidate activation widths")
    add_list_option(p, "--exclude", metavar="LAYER", help="layers to leave untouched")
    add_list_option(p, "--cost-model", metavar="SPEC", help="further cost models to show (name, module:Class, "
                                                            "file.py:Class or a table); the installed ones are always shown")
    add_format_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import ConfigError

    if args.list:
        from .listing import print_listings

        print_listings(["models"], args.output_format)
        return 0
    if not args.model:
        raise ConfigError("jointopt inspect needs a MODEL (a zoo name, module:factory or file.py:factory); "
                          "see the zoo with `jointopt inspect --list`")
    info = describe(args)
    if args.output_format == "json":
        from ._options import print_json

        print_json(info)
    else:
        print(as_text(info))
    return 0


def describe(args) -> dict:
    """Everything ``inspect`` shows, as plain data (the ``--format json`` document)."""
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
    space = jointopt.SearchSpace(weight_bits=tuple(args.weight_bits), act_bits=tuple(args.act_bits),
                                 exclude=tuple(args.exclude))
    net = jointopt.convert(model.eval(), torch.randn(2, *shape), space)
    a = net.analysis
    layers = []
    for name, layer in net.searchable_layers():
        info, g = a.layers[name], layer.geometry
        group = info.out_group
        layers.append({"name": name, "kind": g.kind, "in_channels": g.in_channels, "out_channels": g.out_channels,
                       "weights": layer.weight.numel(), "input": "signed" if info.act_signed else "unsigned",
                       "group": group, "prunable": bool(group in net.gates and net.gates[group].prunable),
                       "note": info.note or ""})
    groups = [{"name": gid, "channels": g.size, "prunable": bool(g.prunable and space.prune),
               "written_by": list(g.producers), "read_by": list(g.consumers), "coupled": list(g.couplings),
               "fixed": list(g.fixed)} for gid, g in a.groups.items()]
    costs = {}
    for name in dict.fromkeys(list_cost_models() + list(args.cost_model)):
        try:
            cm = get_cost_model(name)
            value = float(net.reference_cost(cm))
        except Exception as exc:  # e.g. lut without a table, or a table that does not cover this model
            costs[name] = {"value": None, "error": str(exc)}
            continue
        costs[name] = {"value": value, "unit": cm.unit, "display": cm.format(value)}
    return {"model": args.model, "input_shape": list(shape), "weight_bits": list(space.weight_bits),
            "act_bits": list(space.act_bits), "layers": layers, "excluded": dict(a.excluded), "groups": groups,
            "reference_cost": costs}


def as_text(info: dict) -> str:
    out = [f"model {info['model']}, input {info['input_shape']}, weight bits {info['weight_bits']}, "
           f"activation bits {info['act_bits']}", "", f"searchable layers ({len(info['layers'])}):",
           f"  {'layer':<30} {'kind':<7} {'in':>5} {'out':>5} {'weights':>9}  {'input':<8} group / note"]
    for r in info["layers"]:
        note = f"; {r['note']}" if r["note"] else ""
        out.append(f"  {r['name']:<30} {r['kind']:<7} {r['in_channels']:>5} {r['out_channels']:>5} {r['weights']:>9}  "
                   f"{r['input']:<8} {r['group'] or '—'} ({'prunable' if r['prunable'] else 'fixed'}){note}")
    if info["excluded"]:
        out += ["", "excluded layers:"] + [f"  {name}: {why}" for name, why in info["excluded"].items()]
    out += ["", "channel groups:"]
    for g in info["groups"]:
        out.append(f"  {g['name']} ({g['channels']} channels, {'prunable' if g['prunable'] else 'not prunable'})")
        for key, label in (("written_by", "written by:"), ("read_by", "read by:   ")):
            if g[key]:
                out.append(f"    {label} {', '.join(g[key])}")
        out += [f"    coupled:    {c}" for c in g["coupled"]] + [f"    fixed:      {f}" for f in g["fixed"]]
    out += ["", "reference cost (unpruned, largest widths):"]
    for name, c in info["reference_cost"].items():
        if c["value"] is None:
            out.append(f"  {name:<12} n/a ({c['error']})")
        else:
            out.append(f"  {name:<12} {c['display']:>16}   ({c['value']:,.0f} {c['unit']})")
    return "\n".join(out)
