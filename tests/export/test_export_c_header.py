"""The C header compiles as C99 and a C program reading it unpacks exactly the network's codes."""
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

static int code(const jointopt_layer_t *l, uint32_t c, uint32_t i) {
    uint32_t b = l->bits[c], bit = l->bit_offset[c] + i * b, v = 0, k;
    for (k = 0; k < b; ++k, ++bit)
        v |= (uint32_t)((l->weight[bit / 8] >> (bit % 8)) & 1u) << k;
    return (v & (1u << (b - 1))) ? (int)v - (int)(1u << b) : (int)v;
}

int main(void) {
    int n, c, i;
    for (n = 0; n < NET_NUM_LAYERS; ++n) {
        const jointopt_layer_t *l = &net_layers[n];
        printf("%s %u %u %.9g %.9g\n", l->name, l->out_channels, l->packed_bytes, l->scale[0], l->act_scale);
        for (c = 0; c < l->out_channels; ++c)
            for (i = 0; i < (int)l->codes_per_channel; ++i)
                printf("%d ", code(l, c, i));
        printf("\n");
    }
    return 0;
}
"""


def test_header_compiles_and_unpacks_to_the_codes(tmp_path):
    _, frozen, x = mixed_frozen("residual")
    export(frozen, tmp_path, x, "c,npz", options=ExportOptions(name="net"))
    (tmp_path / "main.c").write_text(PROGRAM)
    subprocess.run([GCC, *FLAGS, "-O1", "-o", str(tmp_path / "main"), str(tmp_path / "main.c")], check=True,
                   cwd=tmp_path, capture_output=True)
    lines = subprocess.run([str(tmp_path / "main")], check=True, capture_output=True, text=True).stdout.splitlines()
    packed = read_packed(tmp_path / "net.packed.npz")
    assert len(lines) == 2 * len(packed) == 2 * len(frozen_layers(frozen))
    for k, ((name, module), layer) in enumerate(zip(frozen_layers(frozen), packed)):
        head = lines[2 * k].split()
        assert head[:3] == [name, str(module.geometry.out_channels), str(layer.weight.size)]
        assert np.float32(float(head[3])) == layer.scale[0] and np.float32(float(head[4])) == np.float32(layer.act_scale)
        codes = np.array(lines[2 * k + 1].split(), dtype=np.int64)
        assert np.array_equal(codes, module.weight_codes()[0].numpy().reshape(-1))


def test_two_headers_in_one_translation_unit(tmp_path):
    for name, case in (("first", "concat"), ("second", "temporal")):
        _, frozen, x = mixed_frozen(case)
        export(frozen, tmp_path, x, "c", options=ExportOptions(name=name))
    (tmp_path / "both.c").write_text('#include "first.h"\n#include "second.h"\n'
                                     "int total(void) { return FIRST_NUM_LAYERS + SECOND_NUM_LAYERS + "
                                     "(int)first_layers[0].out_channels + (int)second_layers[0].packed_bytes; }\n")
    subprocess.run([GCC, *FLAGS, "-c", "-o", str(tmp_path / "both.o"), str(tmp_path / "both.c")], check=True,
                   cwd=tmp_path, capture_output=True)
    text = (tmp_path / "first.h").read_text()
    assert "static const uint8_t first_l0_weight[" in text and "FIRST_WEIGHT_BITS" in text
