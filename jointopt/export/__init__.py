"""Frozen network → deployable files, each verified.

Formats (``export(frozen, out, batch, formats=...)``):

* ``torch``: ``NAME.json`` architecture manifest + ``NAME.weights.npz``; :func:`load` rebuilds the
  frozen network without running code from the files.
* ``onnx``: ``NAME.onnx``, the float graph with INT8/INT4/INT2 weight initializers per bit-width
  group, ``DequantizeLinear`` per channel, and Q/DQ of every layer's input activations.
* ``npz``: ``NAME.packed.npz``, weight codes bit-packed per channel width, scales, biases;
  :func:`read_packed` reads it back.
* ``c``: integer-only C99 (``NAME.h``, ``NAME.c``, the runtime ``jointopt_runtime.c/.h`` and the host
  program ``NAME_main.c``) that equals :func:`jointopt.export.integer.run_reference` bit for bit.
* ``onnx_int8``: ``NAME.int8.onnx``, the same integer network as ONNX integer operators.

ONNX and onnxruntime are imported only when the ``onnx`` format is written or verified.
"""
from ._api import FORMATS, ExportOptions, ExportResult, export, parse_formats
from ._run import export_trial, select_trial
from .npz_format import read_packed
from .packing import PackedLayer, pack_network
from .torch_format import load

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "PackedLayer", "export", "load", "pack_network",
           "export_trial", "parse_formats", "read_packed", "select_trial"]
