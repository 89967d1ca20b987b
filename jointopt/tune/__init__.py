"""The Optuna study: warm-up once, tune λ over trials, keep the Pareto front."""
from .front import front_csv, front_table, pareto_front
from .setup import quickstart_config
from .study import Study, search
from .trials import load_trial

__all__ = ["Study", "front_csv", "front_table", "load_trial", "pareto_front", "quickstart_config", "search"]
