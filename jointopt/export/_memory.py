"""The activation arena: one static buffer, every tensor at a fixed offset, reused when lifetimes allow.

A tensor lives from the operation that writes it to the last operation that reads it; tensors whose
lifetimes overlap must not overlap in memory. :func:`plan_arena` places them (offsets aligned to
4 bytes, sizes rounded up to 4) and returns the arena size. The same function runs on the
integer program at export time (the C runtime's ``static`` arena) and inside the ``ram`` cost
model on sizes computed from layer statistics, so the two agree to the byte.

Placement tries three strategies and keeps the smallest arena: *greedy by size* (largest tensor
first, lowest free offset — the TensorFlow Lite Micro planner's idea), *by time* (in order of
creation, lowest free offset) and *by time, alternating* (outputs packed alternately from the
bottom and from the top of the arena, which for a chain of layers reaches the lower bound
``max over operations of the bytes live during it``).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

ALIGN = 4


def aligned(size: int) -> int:
    return -(-int(size) // ALIGN) * ALIGN


def _overlap(a: Tuple[int, int], b: Tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _fit(size: int, busy: List[Tuple[int, int]], top: int = None) -> int:
    """Lowest offset (or highest ending at ``top``) where ``size`` bytes avoid every busy interval."""
    busy = sorted(busy)
    if top is None:
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        return offset
    end_at = top
    for start, end in sorted(busy, key=lambda iv: -iv[1]):
        if end <= end_at - size:
            break
        end_at = min(end_at, start)
    return end_at - size


def _place(order: Sequence[int], sizes, lives, alternate: bool, bound: int) -> Tuple[List[int], int]:
    offsets = [-1] * len(sizes)
    side = 0
    for i in order:
        busy = [(offsets[j], offsets[j] + sizes[j]) for j in range(len(sizes))
                if offsets[j] >= 0 and sizes[j] and _overlap(lives[i], lives[j])]
        offset = _fit(sizes[i], busy)
        if alternate and lives[i][0] != lives[i][1]:  # one-operation buffers (scratch) stay at the bottom
            if side == 1:
                high = _fit(sizes[i], busy, top=bound)
                if high >= 0:
                    offset = high
            side = 1 - side
        offsets[i] = offset
    arena = max([o + s for o, s in zip(offsets, sizes)], default=0)
    return offsets, arena


def peak_live(sizes: Sequence[int], lives: Sequence[Tuple[int, int]]) -> int:
    """The lower bound of any plan: the most bytes live at one operation."""
    steps = {t for life in lives for t in life}
    return max([sum(s for s, life in zip(sizes, lives) if life[0] <= t <= life[1]) for t in steps], default=0)


def plan_arena(sizes: Sequence[int], lives: Sequence[Tuple[int, int]]) -> Tuple[List[int], int]:
    """Offsets of every buffer and the arena size.

    Args:
        sizes: bytes of each buffer (rounded up to 4 here).
        lives: (first, last) operation index of each buffer, inclusive.
    """
    sizes = [aligned(s) for s in sizes]
    lives = [tuple(life) for life in lives]
    bound = peak_live(sizes, lives)
    # ties are broken by the whole buffer, so equal inputs in another order give the same arena
    by_size = sorted(range(len(sizes)), key=lambda i: (-sizes[i], lives[i], i))
    by_time = sorted(range(len(sizes)), key=lambda i: (lives[i][0], -sizes[i], lives[i][1], i))
    best = None
    for order, alternate in ((by_size, False), (by_time, True), (by_time, False)):
        offsets, arena = _place(order, sizes, lives, alternate, bound)
        if best is None or arena < best[1]:
            best = (offsets, arena)
    return best
