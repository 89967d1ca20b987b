"""The per-layer table printed with every export: channels kept / total, bits histogram, weight bytes."""
from __future__ import annotations

from typing import Dict, List, Optional

from .packing import PackedLayer


def original_channels(reference) -> Dict[str, int]:
    """Output channels of each layer before pruning, from a searchable network (or {} when None)."""
    if reference is None:
        return {}
    if hasattr(reference, "searchable_layers"):
        return {name: layer.geometry.out_channels for name, layer in reference.searchable_layers()}
    return dict(reference)


def summary_rows(layers: List[PackedLayer], totals: Optional[Dict[str, int]] = None) -> List[dict]:
    """One row per layer, in execution order."""
    totals = totals or {}
    rows = []
    for layer in layers:
        hist = {int(b): int((layer.bits == b).sum()) for b in sorted(set(layer.bits.tolist()), reverse=True)}
        rows.append({"layer": layer.name, "kind": layer.geometry.kind, "kept": len(layer.bits),
                     "total": totals.get(layer.name), "in_channels": layer.geometry.in_channels, "bits": hist,
                     "act_bits": layer.act_bits, "weights": len(layer.bits) * layer.codes_per_channel,
                     "weight_bits": layer.packed_bits, "weight_bytes": int(layer.weight.size),
                     "overhead_bytes": 8 * len(layer.bits)})
    return rows


def summary_table(rows: List[dict]) -> str:
    """The rows as text, with a total line (weights only; scale + bias overhead shown apart)."""
    width = max([len("layer")] + [len(r["layer"]) for r in rows])
    lines = [f"{'layer':<{width}}  {'kind':<6}  {'kept/total':>10}  {'weight bits (channels)':<24}  {'act':>3}  "
             f"{'weights':>9}  {'bytes':>8}"]
    for r in rows:
        kept = f"{r['kept']}/{r['total'] if r['total'] is not None else '?'}"
        hist = " ".join(f"{b}b:{n}" for b, n in r["bits"].items())
        lines.append(f"{r['layer']:<{width}}  {r['kind']:<6}  {kept:>10}  {hist:<24}  {r['act_bits']:>3}  "
                     f"{r['weights']:>9,}  {r['weight_bytes']:>8,}")
    kept = sum(r["kept"] for r in rows)
    known = all(r["total"] is not None for r in rows)
    total = f"{kept}/{sum(r['total'] for r in rows) if known else '?'}"
    bits = sum(r["weight_bits"] for r in rows)
    lines.append(f"{'total':<{width}}  {'':<6}  {total:>10}  {'':<24}  {'':>3}  {sum(r['weights'] for r in rows):>9,}  "
                 f"{sum(r['weight_bytes'] for r in rows):>8,}")
    lines.append(f"weights: {bits:,} bits = {bits / 8000:.4g} kB (memory cost); per-channel scale + bias "
                 f"(float32): {sum(r['overhead_bytes'] for r in rows):,} bytes more")
    return "\n".join(lines)
