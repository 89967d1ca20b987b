"""Methods: the ways a study can produce its trials, all on the same data, model, cost models and budget.

``joint`` (the default) is the library's joint pruning + channel-wise mixed-precision search; the
others are the methods engineers use today and the ones the literature compares against — uniform
quantization, per-layer mixed precision (EdMIPS-style), sequential pruning-then-mixed-precision,
magnitude and random structured pruning, sensitivity-based allocation, pruning at initialization
and gradual pruning. ``jointopt search --method NAME`` chooses one; ``jointopt methods`` lists them.
Every method writes its trials in the same run-directory format, so reports and exports work on all.

A method's own knobs are the config section ``methods.<name>`` (its ``Options`` dataclass).
"""
from ._base import Method, fixed, spread, trial_index
from ._registry import get_method, list_methods, method_summary, register_method

__all__ = ["Method", "accuracy", "finish", "fix_bits", "fix_gates", "fixed", "get_method", "keep_masks", "l1_scores",
           "list_methods", "method_summary", "producers", "register_method", "resolve_sections", "searchable", "spread",
           "trial_index"]


def resolve_sections(config) -> dict:
    """``config.methods`` checked and completed: every section names a registered method and holds only
    its knobs; the chosen method's section gets every default filled in (what ``config.yaml`` shows).
    Raises :class:`jointopt.ConfigError` otherwise."""
    import dataclasses

    from ..errors import ConfigError, UnknownNameError

    try:
        chosen = get_method(config.method)
    except UnknownNameError as exc:
        raise ConfigError(f"method={config.method!r}: {exc}; `jointopt methods` lists them") from None
    sections = dict(config.methods or {})
    for name in sections:
        if name not in list_methods():
            raise ConfigError(f"methods.{name}: no method is called {name!r}; choose among {', '.join(list_methods())}")
        if not isinstance(sections[name], dict):
            raise ConfigError(f"methods.{name} must be a mapping of that method's knobs, got {sections[name]!r}")
    for name in sections:
        method = get_method(name)
        if method.Options is None and sections[name]:
            raise ConfigError(f"methods.{name}: method {name!r} has no knobs of its own (its knobs are the "
                              "search and tuner sections)")
        if method.Options is not None:
            sections[name] = dataclasses.asdict(method.options(config))
    if chosen.Options is not None:
        sections[chosen.name] = dataclasses.asdict(chosen.options(config))
    return sections


# what a method of your own can build on (jointopt.methods._common documents each)
HELPERS = ("finish", "searchable", "fix_gates", "fix_bits", "keep_masks", "l1_scores", "producers", "accuracy")


def __getattr__(name: str):
    if name in HELPERS:  # the training helpers import torch: only when asked for
        from . import _common

        return getattr(_common, name)
    raise AttributeError(f"module 'jointopt.methods' has no attribute {name!r}")
