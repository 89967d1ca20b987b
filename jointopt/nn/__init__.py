"""Searchable layers, their selectors, and the fixed-precision layers a frozen network is made of."""
from ._op import LayerGeometry
from .frozen import FrozenLayer
from .layers import SearchableLayer, Segment
from .selectors import GroupGate, SearchState

__all__ = ["FrozenLayer", "GroupGate", "LayerGeometry", "SearchState", "SearchableLayer", "Segment"]
