"""The onnxruntime floor: what pyproject.toml declares is what the ONNX export needs, and README says so.

Measured (README, Deploy → Versions): onnxruntime 1.18 cannot load INT4 tensors, 1.19.0 runs every
test export; native INT2 (opset 25, IR 13) needs 1.24.
"""
import re
from pathlib import Path

import onnx

from jointopt.export import export
from jointopt.export.verify import MIN_ONNXRUNTIME
from export_cases import mixed_frozen

ROOT = Path(__file__).resolve().parents[2]
# (max IR version, max opset, INT4 tensors) of each onnxruntime minor version, from its release notes
# and checked here by loading the exports (README): the floor must cover what the export writes
ONNXRUNTIME = {(1, 17): (9, 20, False), (1, 18): (10, 21, False), (1, 19): (10, 21, True)}


def declared_floor() -> tuple:
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'"onnxruntime>=([0-9.]+)"', text)
    assert found, "pyproject.toml must declare an onnxruntime floor"
    return tuple(int(p) for p in found.group(1).split(".")[:2])


def test_declared_floor_runs_the_default_export(tmp_path):
    floor = declared_floor()
    assert floor == tuple(int(p) for p in MIN_ONNXRUNTIME.split("."))
    max_ir, max_opset, int4 = ONNXRUNTIME[floor]
    _, frozen, x = mixed_frozen("residual")
    export(frozen, tmp_path, x, "onnx")
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert model.ir_version <= max_ir and model.opset_import[0].version <= max_opset
    uses_int4 = any(t.data_type == onnx.TensorProto.INT4 for t in model.graph.initializer)
    assert int4 or not uses_int4


def test_readme_states_the_verified_range():
    readme = (ROOT / "README.md").read_text()
    floor = ".".join(map(str, declared_floor()))
    assert re.search(rf"onnxruntime (>= ?|≥ ?){re.escape(floor)}", readme), f"README must state onnxruntime >= {floor}"
