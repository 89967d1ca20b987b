"""The generated C99 runtime: built with the system compiler exactly as documented, its logits equal the
Python integer reference bit for bit and give the frozen network's class; header, flash and RAM figures."""
import re
import subprocess

import numpy as np
import pytest
import torch

from export_cases import mixed_frozen
from jointopt.export import ExportOptions, export
from jointopt.export.c_export import FLAGS, compile_c, find_compiler, run_infer
from jointopt.export.c_format import flash_bytes
from jointopt.export.integer import build_program, run_reference
from nets import TOPOLOGIES
from test_integer import extras_frozen

CC = find_compiler()
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler on this machine (set $CC or install cc/gcc/clang)")
CASES = ["digits_cnn"] + sorted(TOPOLOGIES) + ["extras"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """case → (frozen, batch, program, export directory, infer binary): exported and compiled once each."""
    before = torch.get_num_threads()  # one thread while building; the process keeps its setting
    torch.set_num_threads(1)
    try:
        out = {}
        for case in CASES:
            frozen, x = extras_frozen() if case == "extras" else mixed_frozen(case)[1:]
            directory = tmp_path_factory.mktemp(case)
            result = export(frozen, directory / "out", x, "c", options=ExportOptions(name="model"))
            binary = compile_c(directory / "out", directory / "infer")
            out[case] = (frozen, x, build_program(frozen, x), directory / "out", binary, result)
    finally:
        torch.set_num_threads(before)
    return out


@pytest.mark.parametrize("case", CASES)
def test_infer_prints_the_integer_reference_bit_for_bit(case, exported):
    _, x, program, _, binary, _ = exported[case]
    got = run_infer(binary, x[:24])
    want, _ = run_reference(program, x[:24])
    assert got.shape == want.shape
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("case", CASES)
def test_infer_gives_the_frozen_networks_class(case, exported):
    frozen, x, _, _, binary, _ = exported[case]
    with torch.no_grad():
        expected = frozen(x).numpy()
    got = run_infer(binary, x)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.99


def test_documented_build_command_with_pedantic_warnings(exported, tmp_path):
    directory = exported["residual"][3]
    command = f"{CC} -std=c99 -O2 -Wall -Wextra -Werror {directory}/*.c -I {directory} -lm -o {tmp_path}/infer"
    subprocess.run(command, shell=True, check=True, capture_output=True)
    for extra in (["-pedantic", "-Wshadow", "-Wconversion"], ["-O0"]):
        compile_c(directory, tmp_path / "infer2", extra=tuple(extra))
    assert FLAGS == ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def test_export_verifies_the_c_files(exported):
    _, _, program, directory, _, result = exported["residual"]
    check = result.verification["c"]
    assert check["ok"] and check["build"]["bit_exact"] and check["build"]["samples"] == 64
    assert check["arena_bytes"] == check["ram_cost_bytes"] == program.arena_bytes
    assert check["reference"]["top1_agreement"] >= 0.99
    names = sorted(p.name for p in directory.glob("*.[ch]"))
    assert names == ["jointopt_runtime.c", "jointopt_runtime.h", "model.c", "model.h", "model_main.c"]
    assert "infer == reference bit for bit on 64 samples: yes" in result.report()


def _macro(text, name):
    return int(re.search(rf"#define {name} (\d+)u?\n", text).group(1))


def test_header_states_sizes_and_the_integer_format(exported):
    _, x, program, directory, _, _ = exported["flatten_linear"]
    text = (directory / "model.h").read_text()
    assert _macro(text, "MODEL_ARENA_BYTES") == program.arena_bytes
    assert _macro(text, "MODEL_FLASH_BYTES") == flash_bytes(program)["total"]
    assert _macro(text, "MODEL_INPUT_SIZE") == int(np.prod(x.shape[1:])) and _macro(text, "MODEL_OUTPUT_SIZE") == 3
    for phrase in ("(input channel, kernel row, kernel column)", "ties toward +infinity", "ties to even",
                   "Flatten order: channel, row, column", "cc -std=c99 -O2 -Wall -Wextra -Werror"):
        assert phrase in text


def test_flash_counts_every_constant_array(exported):
    sizes = {"uint8_t": 1, "int8_t": 1, "int32_t": 4, "float": 4}
    for case in ("residual", "concat", "extras"):
        program, directory = exported[case][2], exported[case][3]
        source = (directory / "model.c").read_text()
        arrays = re.findall(r"static const (\w+) \w+\[(\d+)\]", source)
        flash = flash_bytes(program)
        assert sum(sizes[t] * int(n) for t, n in arrays) == flash["total"] - flash["descriptors"]
        assert "bit_offset" not in source  # derived from the 2-bit width fields, not stored


def test_infer_rejects_a_short_input(exported):
    binary = exported["digits_cnn"][4]
    done = subprocess.run([str(binary)], input=b"\0" * 12, capture_output=True)
    assert done.returncode == 1 and b"expected 64 float32 values" in done.stderr


def test_infer_times_itself(exported):
    from jointopt.export.c_export import time_infer

    _, x, _, _, binary, _ = exported["digits_cnn"]
    assert time_infer(binary, x[0], repeat=50) > 0


def test_two_models_link_into_one_program(exported, tmp_path):
    for name in ("first", "second"):
        frozen, x = mixed_frozen("concat" if name == "first" else "temporal")[1:]
        export(frozen, tmp_path, x, "c", options=ExportOptions(name=name))
    (tmp_path / "first_main.c").unlink()
    (tmp_path / "second_main.c").unlink()
    (tmp_path / "both.c").write_text(
        '#include "first.h"\n#include "second.h"\n'
        "static float in1[FIRST_INPUT_SIZE], in2[SECOND_INPUT_SIZE], out1[FIRST_OUTPUT_SIZE], out2[SECOND_OUTPUT_SIZE];\n"
        "int main(void) { return first_run(in1, out1) + second_run(in2, out2) + "
        "(int)first_layers[0].out_c * 0; }\n")
    compile_c(tmp_path, tmp_path / "both")
    assert subprocess.run([str(tmp_path / "both")]).returncode == 0


def test_header_carries_the_preprocessing(tmp_path):
    """The header states mean/std, layout, raw range and class names, and ``infer --raw`` on raw
    pixels gives what ``infer`` gives on the pipeline's normalised input, bit for bit."""
    import jointopt

    data = jointopt.get_dataset("digits")
    x, _ = next(data.batches("val", 32))
    torch.manual_seed(0)
    frozen = jointopt.convert(jointopt.create_model("digits_cnn").eval(), x).eval().set_mode("hard").freeze().eval()
    out = tmp_path / "out"
    export(frozen, out, x, "c", preprocessing=data)
    header = (out / "model.h").read_text()
    assert "#define MODEL_INPUT_LAYOUT \"NCHW\"" in header and '#define MODEL_RAW_DTYPE "uint8"' in header
    assert f"#define MODEL_INPUT_MEAN {{{float(data.mean.reshape(-1)[0]):.9g}f}}" in header
    assert f"#define MODEL_INPUT_STD {{{float(data.std.reshape(-1)[0]):.9g}f}}" in header
    assert f"#define MODEL_RAW_MAX {float(data.train.x.max()):.1f}f" in header and "#define MODEL_RAW_MIN 0.0f" in header
    assert '#define MODEL_CLASS_NAMES {"0", "1", "2"' in header and "#define MODEL_NUM_CLASSES 10" in header
    binary = compile_c(out, tmp_path / "infer")
    raw = data.val.x[:32].float().numpy().astype("<f4")
    done = subprocess.run([str(binary), "--raw", "32"], input=raw.tobytes(), capture_output=True, check=True)
    from_raw = np.array([np.float32(float(v)) for v in done.stdout.split()], dtype=np.float32)
    assert np.array_equal(from_raw, run_infer(binary, x).reshape(-1))


class Padded(torch.nn.Module):
    """Every padding convert turns into an explicit pad: reflect, replicate, circular, even-kernel 'same'."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 6, 3, padding=1, padding_mode="reflect")
        self.b = torch.nn.Conv2d(6, 6, 3, padding=2, padding_mode="replicate", dilation=2)
        self.c = torch.nn.Conv2d(6, 5, 4, padding="same")
        self.d = torch.nn.Conv1d(5, 4, 3, padding=1, padding_mode="circular")
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.c(torch.relu(self.b(torch.relu(self.a(x))))))
        return self.fc(torch.relu(self.d(x.mean(2))).mean(2))


def test_padding_modes_run_bit_for_bit(tmp_path):
    import jointopt

    x = torch.randn(48, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    frozen = jointopt.convert(Padded().eval(), x[:8]).eval().set_mode("hard").freeze().eval()
    result = export(frozen, tmp_path, x, "c")
    program = build_program(frozen, x)
    modes = sorted(op.mode for op in program.ops if type(op).__name__ == "PadOp")
    assert modes == ["circular", "constant", "reflect", "replicate"]
    got = run_infer(compile_c(tmp_path, tmp_path / "infer"), x)
    want, _ = run_reference(program, x)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert result.verification["c"]["reference"]["top1_agreement"] >= 0.99
