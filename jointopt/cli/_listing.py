"""One form for every listing: zoo models, data sets, cost models.

Each kind is a :class:`Listing`: a function that returns one dict per registered name (``name``,
the kind's own columns, ``description`` and an optional ``note``) plus how to use a name. The same
rows feed the text table and ``--format json``, and ``jointopt list``, ``jointopt inspect --list``,
``jointopt data list`` and ``jointopt cost-models`` all print through here. A new kind of plug-in
(a ``methods`` registry, say) becomes listable with one call::

    register_listing(Listing("methods", "search methods", (), _method_rows,
                             "--set method=NAME, or method: NAME in a config"))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple


@dataclass(frozen=True)
class Listing:
    """How to list one kind of registered thing.

    Attributes:
        kind: the key in ``jointopt list KIND`` and in the JSON output (``models``, ``cost_models``).
        title: plural noun for the heading ("data sets").
        columns: (JSON key, column heading) shown between the name and the description.
        rows: ``rows(**options)`` → one dict per entry; options are e.g. ``root`` for data sets.
        usage: where a listed name can be used, printed in the heading.
        note: the key whose value the text form prints in brackets after the description.
    """

    kind: str
    title: str
    columns: Tuple[Tuple[str, str], ...]
    rows: Callable[..., List[dict]]
    usage: str
    note: str = "note"


LISTINGS: Dict[str, Listing] = {}


def register_listing(listing: Listing) -> Listing:
    LISTINGS[listing.kind] = listing
    return listing


def resolve_kinds(names: Sequence[str]) -> List[str]:
    """CLI spellings (``cost-models``, ``data-sets``, ``datasets``) → listing kinds; none = all of them."""
    from ..errors import UnknownNameError

    kinds = []
    for name in names:
        key = name.replace("-", "_").lower()
        key = {"data_sets": "datasets", "data": "datasets", "costs": "cost_models", "model": "models"}.get(key, key)
        if key not in LISTINGS:
            raise UnknownNameError(f"nothing to list called {name!r}; choose from {', '.join(LISTINGS)}")
        kinds.append(key)
    return list(dict.fromkeys(kinds)) or list(LISTINGS)


def as_json(kinds: Sequence[str], **options) -> dict:
    return {kind: LISTINGS[kind].rows(**options) for kind in kinds}


def as_text(kind: str, rows: List[dict]) -> str:
    """Heading with count and usage, then an aligned table: name, the kind's columns, description [note]."""
    listing = LISTINGS[kind]
    header = ["name", *(title for _, title in listing.columns)]
    cells = [[str(row["name"]), *(_cell(row.get(key)) for key, _ in listing.columns)] for row in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    lines = [f"{listing.title} ({len(rows)}) · use: {listing.usage}",
             "  " + "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  description"]
    for row, line in zip(rows, cells):
        note = f"  [{row[listing.note]}]" if row.get(listing.note) else ""
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(line, widths)) + f"  {row.get('description', '')}{note}")
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value))
    return str(value)


# -- the built-in kinds ---------------------------------------------------------------------------
def model_rows(**_) -> List[dict]:
    from ..zoo import list_models, model_info

    rows = []
    for name in list_models():
        info = model_info(name)
        rows.append({"name": name, "input_shape": list(info.input_shape) if info.input_shape else None,
                     "num_classes": info.num_classes, "dataset": info.dataset, "description": info.description})
    return rows


def dataset_rows(root=None, **_) -> List[dict]:
    from pathlib import Path

    from ..data import default_root, describe_dataset, list_datasets, locate_dataset

    folder = Path(root).expanduser() if root is not None else default_root()
    return [{"name": name, "description": describe_dataset(name), "state": _dataset_state(name, folder, locate_dataset)}
            for name in list_datasets()]


def _dataset_state(name: str, root, locate) -> str:
    if (root / name / "cache.pt").is_file():
        return "prepared"
    if (root / name).is_dir():
        return "files present"
    return locate(name) or ""


def cost_model_rows(**_) -> List[dict]:
    from ..cost import list_cost_models

    sources = _cost_sources()
    rows = []
    for name in list_cost_models():
        unit, description, note = _describe_cost_model(name)
        rows.append({"name": name, "unit": unit, "source": sources.get(name, "registered at run time "
                                                                              "(register_cost_model)"),
                     "description": description, "note": note})
    return rows


def _cost_sources() -> dict:
    """name → the package (and object) whose entry point provides it."""
    from importlib.metadata import entry_points

    from ..cost import ENTRY_POINT_GROUP

    sources = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else "entry point"
        sources[ep.name] = f"{origin} ({ep.value})"
    return sources


def _describe_cost_model(name: str):
    """(display unit, one-line description, note) of a registered cost model.

    The unit is an instance's: a model that cannot be built without arguments (``lut`` needs its
    table) takes its unit from them, so the listing says so instead of showing a class default.
    """
    from ..cost import cost_model_factory

    try:
        factory = cost_model_factory(name)
    except Exception as exc:  # a broken plug-in must not hide the others
        return None, "", f"cannot load: {type(exc).__name__}: {exc}"
    description = (getattr(factory, "description", "") or getattr(factory, "__doc__", "") or "").strip()
    description = description.splitlines()[0] if description else ""
    try:
        instance = factory() if callable(factory) else factory
    except Exception:  # needs arguments: its unit is whatever they say
        return None, description, "unit set by its arguments (for lut: the table's unit column or header)"
    unit = getattr(instance, "display_unit", "") or getattr(instance, "unit", "")
    return unit or None, description, ""


def method_rows(**_) -> List[dict]:
    from ..methods._registry import list_methods, method_knobs, method_summary

    rows = []
    for name in list_methods():
        try:
            description = method_summary(name)
        except Exception as exc:  # a broken plug-in must not hide the others
            description = f"cannot load: {type(exc).__name__}: {exc}"
        rows.append({"name": name, "section": method_knobs(name),
                     "description": description})
    return rows


register_listing(Listing("models", "zoo models", (("input_shape", "input"), ("num_classes", "classes"),
                                                  ("dataset", "data set")), model_rows,
                         "jointopt inspect NAME; model.name in a config; jointopt.create_model(NAME)"))
register_listing(Listing("datasets", "data sets", (), dataset_rows,
                         "jointopt data prepare NAME; data.name in a config; jointopt.get_dataset(NAME)", note="state"))
register_listing(Listing("cost_models", "cost models", (("unit", "unit"), ("source", "from")), cost_model_rows,
                         "jointopt search --target NAME / --cost-model NAME; cost.target in a config"))
register_listing(Listing("methods", "search methods", (("section", "knobs"),), method_rows,
                         "jointopt search --method NAME; method: NAME in a config"))
