"""jointopt's built-in hardware cost models.

They register through the entry-point group ``jointopt.cost_models`` declared in
``pyproject.toml``, exactly as a third-party package would. ``BUILTINS`` mirrors those entry points
for a source tree that has not been installed.
"""

BUILTINS = {
    "memory": "cost_models.memory:MemoryCost",
    "memory_total": "cost_models.memory:MemoryTotalCost",
    "bitops": "cost_models.bitops:BitOpsCost",
    "macs": "cost_models.macs:MacsCost",
    "mpic": "cost_models.mpic:MpicCost",
    "ne16": "cost_models.ne16:Ne16Cost",
    "lut": "cost_models.lut:LutCost",
    "ram": "cost_models.ram:RamCost",
}
