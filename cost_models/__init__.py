"""jointopt's built-in hardware cost models.

They register through the entry-point group ``jointopt.cost_models`` declared in
``pyproject.toml``, exactly as a third-party package would. ``BUILTINS`` mirrors those entry points
for a source tree that has not been installed.
"""

BUILTINS = {
    "memory": "jointopt.cost_models.memory:MemoryCost",
    "memory_total": "jointopt.cost_models.memory:MemoryTotalCost",
    "bitops": "jointopt.cost_models.bitops:BitOpsCost",
    "macs": "jointopt.cost_models.macs:MacsCost",
    "mpic": "jointopt.cost_models.mpic:MpicCost",
    "ne16": "jointopt.cost_models.ne16:Ne16Cost",
    "lut": "jointopt.cost_models.lut:LutCost",
    "ram": "jointopt.cost_models.ram:RamCost",
}
