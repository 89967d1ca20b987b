"""The C files compile as C99 and a program reading the layer table unpacks exactly the network's codes."""
import shutil
import subprocess

import numpy as np
import pytest

from jointopt.export import ExportOptions, export, read_packed
from export_cases import frozen_layers, mixed_frozen

GCC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(GCC is None, reason="no C compiler on this machine")
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]

PROGRAM = r"""
#include <stdio.h>
#include "net.h"

int main(void) {
    unsigned n, c, i;
    for (n = 0; n < NET_NUM_LAYERS; ++n) {
        const jointopt_conv_t *l = &net_layers[n];
        uint32_t per = jointopt_codes_per_channel(l);
        printf("%u %u %u\n", (unsigned)l->out_c, (unsigned)jointopt_bit_offset(l, l->out_c), (unsigned)per);
        for (c = 0; c < l->out_c; ++c)
            printf("%u ", (unsigned)jointopt_weight_bits(l, c));
        printf("\n");
        for (c = 0; c < l->out_c; ++c)
            for (i = 0; i < per; ++i)
                printf("%d ", (int)jointopt_weight_code(l, c, i));
        printf("\n");
    }
    return 0;
}
"""


def test_layer_table_unpacks_to_the_codes(tmp_path):
    _, frozen, x = mixed_frozen("residual")
    export(frozen, tmp_path, x, "c,npz", options=ExportOptions(name="net"))
    (tmp_path / "net_main.c").write_text(PROGRAM)  # this program instead of infer
    sources = [str(tmp_path / f) for f in ("net_main.c", "net.c", "jointopt_runtime.c")]
    subprocess.run([GCC, *FLAGS, "-O1", "-I", str(tmp_path), *sources, "-lm", "-o", str(tmp_path / "main")], check=True,
                   capture_output=True)
    lines = subprocess.run([str(tmp_path / "main")], check=True, capture_output=True, text=True).stdout.splitlines()
    packed = read_packed(tmp_path / "net.packed.npz")
    assert len(lines) == 3 * len(packed) == 3 * len(frozen_layers(frozen))
    for k, ((name, module), layer) in enumerate(zip(frozen_layers(frozen), packed)):
        out_c, total_bits, per = map(int, lines[3 * k].split())
        assert out_c == module.geometry.out_channels and total_bits == layer.packed_bits
        assert per == layer.codes_per_channel
        assert [int(b) for b in lines[3 * k + 1].split()] == layer.bits.tolist()
        codes = np.array(lines[3 * k + 2].split(), dtype=np.int64)
        assert np.array_equal(codes, module.weight_codes()[0].numpy().reshape(-1))


def test_two_headers_in_one_translation_unit(tmp_path):
    for name, case in (("first", "concat"), ("second", "temporal")):
        _, frozen, x = mixed_frozen(case)
        export(frozen, tmp_path, x, "c", options=ExportOptions(name=name))
    (tmp_path / "both.c").write_text('#include "first.h"\n#include "second.h"\n'
                                     "int total(void) { return FIRST_NUM_LAYERS + SECOND_NUM_LAYERS + "
                                     "(int)first_layers[0].out_c + (int)SECOND_ARENA_BYTES; }\n")
    subprocess.run([GCC, *FLAGS, "-c", "-I", str(tmp_path), "-o", str(tmp_path / "both.o"), str(tmp_path / "both.c")],
                   check=True, capture_output=True)
    text = (tmp_path / "first.c").read_text()
    assert "static const uint8_t first_l0_weight[" in text and "FIRST_WEIGHT_BITS" in (tmp_path / "first.h").read_text()
