"""The architecture manifest: a frozen network's graph as plain JSON, and its strict inverse.

A manifest holds the torch.fx graph of a frozen network (placeholders, calls of allow-listed
functions / tensor methods / modules, the output), the constructor arguments of every module, and
for each :class:`~jointopt.nn.FrozenLayer` its geometry, per-channel bits and quantizer settings.
Tensors (weights, biases, steps, activation clips, the bits buffer) live only in the separate
``.npz``, whose sha256 the manifest records; the manifest's own ``sha256`` covers everything else
in it (graph, geometry, activation bits and signedness, preprocessing, the weights' checksum), so
neither file can be edited without the load noticing. The one field stored in both, a layer's
``bits``, must agree with the weights file.

Reading is validation first: every name is looked up in :mod:`._vocab`, every argument is one of
a few JSON shapes (numbers, strings, lists, ``{"node": ...}``, ``{"tuple": [...]}``,
``{"slice": [...]}``, ``{"dtype": ...}``), every identifier is checked, every tensor shape is
compared with what the module expects. Anything else is an :class:`~jointopt.errors.ExportError`.
"""
from __future__ import annotations

import inspect
import keyword
import math
from typing import Any, Dict, List

import torch
from torch import fx, nn

from ..errors import ExportError
from ..nn import LayerGeometry
from ..nn.frozen import FrozenLayer
from . import _vocab

FORMAT = "jointopt.frozen"
VERSION = 2  # 2: the manifest's own sha256; no tensor list or act_clip (the weights file holds them)
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "int64": torch.int64, "int32": torch.int32, "bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


# -- arguments ------------------------------------------------------------------------------------
def encode_arg(value: Any, where: str) -> Any:
    """A node argument as JSON (see the module docstring for the shapes)."""
    if isinstance(value, fx.Node):
        return {"node": value.name}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, tuple):
        return {"tuple": [encode_arg(v, where) for v in value]}
    if isinstance(value, list):
        return [encode_arg(v, where) for v in value]
    if isinstance(value, slice):
        return {"slice": [encode_arg(v, where) for v in (value.start, value.stop, value.step)]}
    if isinstance(value, torch.dtype) and value in _DTYPE_NAMES:
        return {"dtype": _DTYPE_NAMES[value]}
    if value is Ellipsis:
        return {"ellipsis": True}
    raise ExportError(f"{where}: cannot write an argument of type {type(value).__name__} ({value!r}) into the "
                      "manifest; supported are numbers, strings, None, lists, tuples, slices and dtypes")


def decode_arg(value: Any, nodes: Dict[str, fx.Node], where: str) -> Any:
    """Inverse of :func:`encode_arg`; node references must name earlier nodes."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [decode_arg(v, nodes, where) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "node":
            if not isinstance(inner, str) or inner not in nodes:
                raise ExportError(f"{where}: refers to node {inner!r}, which is not defined before it")
            return nodes[inner]
        if key == "tuple" and isinstance(inner, list):
            return tuple(decode_arg(v, nodes, where) for v in inner)
        if key == "slice" and isinstance(inner, list) and len(inner) == 3:
            return slice(*(decode_arg(v, nodes, where) for v in inner))
        if key == "dtype" and inner in _DTYPES:
            return _DTYPES[inner]
        if key == "float" and inner in ("inf", "-inf", "nan"):
            return float(inner)
        if key == "ellipsis" and inner is True:
            return Ellipsis
    raise ExportError(f"{where}: unsupported argument {value!r}")


def _check_identifier(name: Any, where: str, dotted: bool = False) -> str:
    parts = name.split(".") if dotted and isinstance(name, str) else [name]
    ok = all(isinstance(p, str) and (p.isidentifier() and not keyword.iskeyword(p) or dotted and p.isdigit())
             and not p.startswith("__") for p in parts)
    if not ok:
        raise ExportError(f"{where}: {name!r} is not a valid {'module path' if dotted else 'identifier'}")
    return name


# -- writing --------------------------------------------------------------------------------------
def frozen_layers(gm: nn.Module) -> List[tuple]:
    """(name, FrozenLayer) in execution order (graph order), each once."""
    modules = dict(gm.named_modules())
    seen, out = set(), []
    graph = getattr(gm, "graph", None)
    for node in graph.nodes if graph is not None else ():
        if node.op == "call_module" and isinstance(modules.get(node.target), FrozenLayer) and node.target not in seen:
            seen.add(node.target)
            out.append((node.target, modules[node.target]))
    return out


def check_frozen(network) -> fx.GraphModule:
    """``network`` if it is a frozen network; a clear error otherwise."""
    if isinstance(network, nn.Module) and hasattr(network, "freeze") and hasattr(network, "searchable_layers"):
        raise ExportError("export takes a frozen network: call `frozen = searchable.freeze()` first")
    if not isinstance(network, fx.GraphModule) or not frozen_layers(network):
        raise ExportError(f"export takes a frozen network (what SearchableNetwork.freeze() or jointopt.load returns), "
                          f"got {type(network).__name__} without FrozenLayer modules")
    return network


def _module_entry(name: str, module: nn.Module) -> dict:
    if isinstance(module, FrozenLayer):
        return {"name": name, "type": "FrozenLayer", "geometry": module.geometry.to_dict(),
                "bits": [int(b) for b in module.bits.tolist()], "act_bits": module.act_bits,
                "act_signed": module.act_signed, "weight_bits": list(module.weight_bits), "act_choices": list(module.act_choices),
                "bias": module.bias is not None, "quantize": bool(module.quantize)}
    cls = type(module)
    if _vocab.MODULES.get(cls.__name__) is not cls:
        raise ExportError(f"cannot export module {name!r} of type {cls.__name__}: not in the manifest vocabulary "
                          f"(modules: {', '.join(sorted(_vocab.MODULES))})")
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "device", "dtype")]
    kwargs = {p: encode_arg(getattr(module, p), f"module {name!r}") for p in params if hasattr(module, p)}
    return {"name": name, "type": cls.__name__, "kwargs": kwargs}


def _node_entry(node: fx.Node) -> dict:
    where = f"node {node.name!r}"
    entry = {"name": node.name, "op": node.op}
    if node.op == "call_function":
        name = _vocab.function_name(node.target)
        if name is None:
            raise ExportError(f"cannot export {where}: function {getattr(node.target, '__name__', node.target)!r} "
                              "is not in the manifest vocabulary (see jointopt.export._vocab)")
        entry["target"] = name
    else:
        entry["target"] = node.target
        if node.op == "call_method" and node.target not in _vocab.METHODS:
            raise ExportError(f"cannot export {where}: tensor method {node.target!r} is not in the manifest vocabulary")
    entry["args"] = [encode_arg(a, where) for a in node.args]
    entry["kwargs"] = {k: encode_arg(v, where) for k, v in node.kwargs.items()}
    return entry


def build_manifest(gm: fx.GraphModule, input_shape, extra: dict | None = None) -> dict:
    """The manifest of frozen network ``gm`` (inputs of shape ``[batch, *input_shape]``)."""
    check_frozen(gm)
    if sum(n.op == "placeholder" for n in gm.graph.nodes) != 1:
        raise ExportError("export supports networks with exactly one input tensor")
    modules = dict(gm.named_modules())
    called = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    entries = [_module_entry(name, modules[name]) for name in dict.fromkeys(called)]
    attrs = []
    for target in dict.fromkeys(n.target for n in gm.graph.nodes if n.op == "get_attr"):
        value = gm.get_parameter(target) if target in dict(gm.named_parameters()) else None
        if value is None and target not in dict(gm.named_buffers()):
            raise ExportError(f"cannot export get_attr {target!r}: only tensors (parameters, buffers) are supported")
        if any(target.startswith(m + ".") for m in called):
            raise ExportError(f"cannot export get_attr {target!r}: it reads a tensor of a called module")
        attrs.append({"name": target, "parameter": value is not None})
    from .. import __version__

    return {"format": FORMAT, "version": VERSION, "jointopt": __version__, "torch": torch.__version__,
            "input_shape": [int(s) for s in input_shape], "modules": entries, "attributes": attrs,
            "graph": [_node_entry(n) for n in gm.graph.nodes], **(extra or {})}


def manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest's content without its own ``sha256`` field (canonical JSON)."""
    import hashlib
    import json

    body = {k: v for k, v in manifest.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def check_digest(manifest: dict) -> None:
    """A version-2 manifest must carry the sha256 of its content (see :func:`manifest_digest`)."""
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 2 <= version <= VERSION:
        return  # version 1 had no checksum of its own (only of the weights); others are refused later
    stored = manifest.get("sha256")
    try:
        actual = manifest_digest(manifest)
    except (TypeError, ValueError):
        actual = None
    _require(isinstance(stored, str) and stored == actual,
             "the manifest was changed after export (its sha256 does not match its content); geometry, "
             "quantizer settings and graph are part of the exported network: export it again instead of editing")


# -- reading --------------------------------------------------------------------------------------
def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ExportError(message)


def _int_list(value, where: str, length=None, positive=True) -> List[int]:
    ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and (v > 0 or not positive)
                                          for v in value)
    _require(ok and (length is None or len(value) == length), f"{where}: expected a list of "
             f"{'positive ' if positive else ''}integers{f' of length {length}' if length is not None else ''}, "
             f"got {value!r}")
    return value


def _geometry(data, where: str) -> LayerGeometry:
    fields = set(LayerGeometry.__dataclass_fields__)
    _require(isinstance(data, dict) and set(data) == fields, f"{where}: geometry must have exactly the keys "
             f"{sorted(fields)}")
    _require(data["kind"] in ("conv1d", "conv2d", "linear"), f"{where}: unknown layer kind {data['kind']!r}")
    dims = {"conv1d": 1, "conv2d": 2, "linear": 0}[data["kind"]]
    for key in ("in_channels", "out_channels", "groups"):
        _int_list([data[key]], f"{where}: {key}")
    for key in ("kernel_size", "stride", "dilation"):
        _int_list(data[key], f"{where}: {key}", dims)
    _int_list(data["padding"], f"{where}: padding", dims, positive=False)
    for key in ("in_spatial", "out_spatial"):
        _int_list(data[key], f"{where}: {key}", positive=False)
    _require(data["in_channels"] % data["groups"] == 0 and data["out_channels"] % data["groups"] == 0,
             f"{where}: groups={data['groups']} does not divide the channels")
    return LayerGeometry.from_dict(data)


def _frozen_layer(entry: dict, tensors: Dict[str, torch.Tensor], where: str):
    g = _geometry(entry.get("geometry"), where)
    weight_bits = _int_list(entry.get("weight_bits"), f"{where}: weight_bits")
    bits = _int_list(entry.get("bits"), f"{where}: bits", g.out_channels)
    _require(set(bits) <= set(weight_bits), f"{where}: bits {sorted(set(bits))} are not among weight_bits {weight_bits}")
    act_choices = _int_list(entry.get("act_choices"), f"{where}: act_choices")
    _require(entry.get("act_bits") in act_choices, f"{where}: act_bits {entry.get('act_bits')!r} not in {act_choices}")
    _require(isinstance(entry.get("act_signed"), bool) and isinstance(entry.get("bias"), bool)
             and isinstance(entry.get("quantize", True), bool), f"{where}: act_signed, bias, quantize must be booleans")
    name = entry["name"]
    expected = {f"{name}.weight": (g.out_channels, g.in_channels // g.groups, *g.kernel_size),
                f"{name}.act_clip": (), f"{name}.bits": (g.out_channels,), f"{name}.log_step": (g.out_channels,)}
    if entry["bias"]:
        expected[f"{name}.bias"] = (g.out_channels,)
    for key, shape in expected.items():
        _require(key in tensors, f"{where}: the weights file has no tensor {key!r}")
        _require(tuple(tensors[key].shape) == shape, f"{where}: tensor {key!r} has shape {list(tensors[key].shape)}, "
                 f"the geometry needs {list(shape)}")
    _require(tensors[f"{name}.bits"].tolist() == bits, f"{where}: the bits in the weights file differ from the manifest")
    clip = float(tensors[f"{name}.act_clip"])
    if "act_clip" in entry:  # version 1 wrote it twice
        _require(entry["act_clip"] == clip, f"{where}: act_clip {entry['act_clip']!r} differs from the weights file "
                 f"({clip!r})")
    _require(math.isfinite(clip) and clip > 0, f"{where}: activation clip must be a positive number, got {clip}")
    layer = FrozenLayer(g, tensors[f"{name}.weight"].float(), tensors[f"{name}.bias"].float() if entry["bias"] else None,
                        torch.tensor(bits), entry["act_bits"], entry["act_signed"], clip, weight_bits, act_choices,
                        log_step=tensors[f"{name}.log_step"].float())
    layer.quantize = entry.get("quantize", True)
    return layer, set(expected)


def _module(entry: dict, tensors: Dict[str, torch.Tensor], where: str):
    cls = _vocab.MODULES.get(entry.get("type"))
    _require(cls is not None, f"{where}: module type {entry.get('type')!r} is not in the vocabulary "
             f"({', '.join(sorted(_vocab.MODULES))})")
    if cls is FrozenLayer:
        return _frozen_layer(entry, tensors, where)
    kwargs = entry.get("kwargs", {})
    _require(isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs), f"{where}: kwargs must be an object")
    kwargs = {_check_identifier(k, where): decode_arg(v, {}, where) for k, v in kwargs.items()}
    try:
        module = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"{where}: cannot build {cls.__name__}({kwargs}): {exc}") from None
    state = {}
    for key, value in module.state_dict().items():
        full = f"{entry['name']}.{key}"
        _require(full in tensors, f"{where}: the weights file has no tensor {full!r}")
        _require(tensors[full].shape == value.shape, f"{where}: tensor {full!r} has shape {list(tensors[full].shape)}, "
                 f"{cls.__name__} needs {list(value.shape)}")
        state[key] = tensors[full].to(value.dtype)
    module.load_state_dict(state)
    return module, {f"{entry['name']}.{k}" for k in state}


def _node(graph: fx.Graph, entry: dict, nodes: Dict[str, fx.Node], modules, attributes) -> fx.Node:
    _require(isinstance(entry, dict), f"graph entries must be objects, got {entry!r}")
    name = _check_identifier(entry.get("name"), "graph node")
    where = f"node {name!r}"
    _require(name not in nodes, f"{where}: defined twice")
    op, target = entry.get("op"), entry.get("target")
    args, kwargs = entry.get("args", []), entry.get("kwargs", {})
    _require(isinstance(args, list) and isinstance(kwargs, dict), f"{where}: args must be a list, kwargs an object")
    if op == "placeholder":
        _check_identifier(target, where)
    elif op == "call_function":
        _require(target in _vocab.FUNCTIONS, f"{where}: function {target!r} is not in the vocabulary; "
                 "a manifest can only call allow-listed torch functions")
        if target == "builtins.getattr":
            _require(len(args) == 2 and args[1] in _vocab.GETATTR_NAMES,
                     f"{where}: getattr may only read {sorted(_vocab.GETATTR_NAMES)}")
        target = _vocab.FUNCTIONS[target]
    elif op == "call_method":
        _require(target in _vocab.METHODS, f"{where}: tensor method {target!r} is not in the vocabulary")
    elif op == "call_module":
        _require(target in modules, f"{where}: calls module {target!r}, which the manifest does not declare")
    elif op == "get_attr":
        _require(target in attributes, f"{where}: reads attribute {target!r}, which the manifest does not declare")
    elif op != "output":
        raise ExportError(f"{where}: unknown node kind {op!r}")
    args = tuple(decode_arg(a, nodes, where) for a in args)
    kwargs = {_check_identifier(k, where): decode_arg(v, nodes, where) for k, v in kwargs.items()}
    return graph.create_node(op, target, args, kwargs, name=name)


def _assign(tree: nn.Module, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        if not hasattr(tree, part):
            tree.add_module(part, nn.Module())
        tree = getattr(tree, part)
        _require(isinstance(tree, nn.Module), f"manifest: {path!r} is nested inside a tensor")
    if isinstance(value, nn.Module):
        tree.add_module(leaf, value)
    elif isinstance(value, nn.Parameter):
        tree.register_parameter(leaf, value)
    else:
        tree.register_buffer(leaf, value)


def _check_tensor_list(listed, tensors: Dict[str, torch.Tensor]) -> None:
    """Version 1 listed every tensor's shape and dtype: they must be the weights file's."""
    if listed is None:
        return
    _require(isinstance(listed, dict), "manifest: 'tensors' must be an object")
    actual = {k: {"shape": list(v.shape), "dtype": _DTYPE_NAMES.get(v.dtype, str(v.dtype))} for k, v in tensors.items()}
    for key in sorted(set(listed) | set(actual)):
        _require(listed.get(key) == actual.get(key), f"manifest: tensor {key!r} is listed as {listed.get(key)} but "
                 f"the weights file has {actual.get(key)}")


def build_network(manifest: Any, tensors: Dict[str, torch.Tensor]) -> fx.GraphModule:
    """Rebuild the frozen network a manifest describes, checking everything (see the module docstring).

    Raises:
        ExportError: the manifest or the tensors are invalid, inconsistent or from a newer format.
    """
    _require(isinstance(manifest, dict) and manifest.get("format") == FORMAT,
             f"not a jointopt manifest (expected \"format\": \"{FORMAT}\")")
    version = manifest.get("version")
    _require(isinstance(version, int) and not isinstance(version, bool) and 1 <= version <= VERSION,
             f"manifest version {version!r} is not supported: this jointopt reads version {VERSION}"
             + (" (the file was written by a newer jointopt; upgrade)" if isinstance(version, int) and version > VERSION
                else ""))
    for key, kind in (("modules", list), ("graph", list), ("input_shape", list), ("attributes", list)):
        _require(isinstance(manifest.get(key), kind), f"manifest: {key!r} is missing or not a {kind.__name__}")
    _int_list(manifest["input_shape"], "manifest: input_shape")
    root: Dict[str, Any] = {}
    used = set()
    for entry in manifest["modules"]:
        _require(isinstance(entry, dict), f"manifest: module entries must be objects, got {entry!r}")
        name = _check_identifier(entry.get("name"), "module", dotted=True)
        _require(name not in root, f"module {name!r} is declared twice")
        root[name], keys = _module(entry, tensors, f"module {name!r}")
        used |= keys
    attributes = set()
    for entry in manifest["attributes"]:
        name = _check_identifier(entry.get("name") if isinstance(entry, dict) else None, "attribute", dotted=True)
        _require(name in tensors and name not in root, f"attribute {name!r} has no tensor in the weights file")
        tensor = tensors[name]
        root[name] = nn.Parameter(tensor) if entry.get("parameter") else tensor
        attributes.add(name)
        used.add(name)
    unexpected = sorted(set(tensors) - used)
    _require(not unexpected, f"the weights file holds tensors the manifest does not use: {unexpected[:5]}")
    _check_tensor_list(manifest.get("tensors"), tensors)
    graph, nodes = fx.Graph(), {}
    modules = {k for k, v in root.items() if isinstance(v, nn.Module)}
    for entry in manifest["graph"]:
        node = _node(graph, entry, nodes, modules, attributes)
        nodes[entry["name"]] = node
    outputs = [n for n in graph.nodes if n.op == "output"]
    _require(len(outputs) == 1 and outputs[0] is list(graph.nodes)[-1], "manifest: the graph must end in one output")
    tree = nn.Module()  # GraphModule copies from it in graph order, the order a traced network has
    for name, value in root.items():
        _assign(tree, name, value)
    try:
        graph.lint()
        gm = fx.GraphModule(tree, graph)
    except Exception as exc:  # fx raises RuntimeError/AssertionError with useful text
        raise ExportError(f"manifest: the graph is inconsistent: {exc}") from None
    gm.eval()
    try:  # through the interpreter: a failing generated forward() would print its code to stderr
        with torch.no_grad():
            fx.Interpreter(gm).run(torch.zeros(1, *manifest["input_shape"]))
    except Exception as exc:  # shapes that do not fit together surface here
        raise ExportError(f"manifest: the network does not run on an input of shape "
                          f"{[1, *manifest['input_shape']]}: {type(exc).__name__}: {exc}") from None
    return gm
