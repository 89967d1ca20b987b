"""The one tqdm set-up of jointopt: data preparation bars and the live line of ``jointopt search``."""
from __future__ import annotations

import os
import shutil


def terminal_bar(stream, **options):
    """A :class:`tqdm.tqdm` display on ``stream`` (a terminal) that follows the terminal's width.

    A terminal that reports a size of 0 (a pseudo-terminal nobody sized: some CI runners, a
    container before its first resize) would make tqdm cut every line to nothing, or hide it; it
    gets ``$COLUMNS`` x ``$LINES`` or 80 x 24 instead. Also the live line of ``jointopt search``.
    """
    from tqdm import tqdm

    try:
        size = os.get_terminal_size(stream.fileno())
        sized = size.columns > 0 and size.lines > 0
    except (AttributeError, OSError, ValueError):  # not a real file (io.UnsupportedOperation is both)
        sized = True  # tqdm finds no size either, and then does not cut
    if sized:
        return tqdm(file=stream, dynamic_ncols=True, **options)
    fallback = shutil.get_terminal_size()
    return tqdm(file=stream, ncols=fallback.columns, nrows=fallback.lines, **options)
