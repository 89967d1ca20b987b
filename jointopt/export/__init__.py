"""Frozen network → deployable files, each verified.

Formats (``export(frozen, out, batch, formats=...)``):

* ``torch``: ``NAME.json`` architecture manifest + ``NAME.weights.npz``; :func:`load` rebuilds the
  frozen network without running code from the files.
* ``onnx``: ``NAME.onnx``, the float graph with UINT8 (zero point 128) / INT4 / INT2 weight
  initializers, ``DequantizeLinear`` per channel, Q/DQ of every layer's input activations, and the
  input normalisation when the preprocessing is known.
* ``npz``: ``NAME.packed.npz``, weight codes bit-packed per channel width, scales, biases;
  :func:`read_packed` reads it back.
* ``c``: integer-only C99 (``NAME.h``, ``NAME.c``, the runtime ``jointopt_runtime.c/.h`` and the host
  program ``NAME_main.c``) that equals :func:`jointopt.export.integer.run_reference` bit for bit.
* ``onnx_int8``: ``NAME.int8.onnx``, the same integer network as ONNX integer operators.

Every format records the :class:`~.preprocessing.Preprocessing` (raw data → network input, class
names) when it is known; :func:`read_preprocessing` reads it back. ONNX and onnxruntime are
imported only when the ``onnx`` format is written or verified.
"""
from ._api import FORMATS, ExportOptions, ExportResult, export, parse_formats
from ._run import export_trial, select_trial
from .npz_format import read_packed
from .packing import PackedLayer, pack_network
from .preprocessing import Preprocessing, read_preprocessing
from .torch_format import load

__all__ = ["FORMATS", "ExportOptions", "ExportResult", "PackedLayer", "Preprocessing", "export", "load",
           "pack_network", "export_trial", "parse_formats", "read_packed", "read_preprocessing", "select_trial"]
