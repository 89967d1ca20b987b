"""Trace a network, find its channel groups, make it searchable, fold BatchNorm, freeze it."""
from .analysis import Analysis, GroupInfo, LayerInfo, analyze
from .convert import convert
from .fold import fold_bn
from .freeze import freeze, frozen_cost, frozen_layer_stats
from .network import SearchableNetwork

__all__ = ["Analysis", "GroupInfo", "LayerInfo", "SearchableNetwork", "analyze", "convert", "fold_bn", "freeze",
           "frozen_cost", "frozen_layer_stats"]
