"""Searchable layers, their selectors, and the fixed-precision layers a frozen network is made of."""
from .frozen import FrozenLayer
from .layers import SearchableLayer, Segment
from .selectors import GroupGate, SearchState

__all__ = ["FrozenLayer", "GroupGate", "SearchState", "SearchableLayer", "Segment"]
