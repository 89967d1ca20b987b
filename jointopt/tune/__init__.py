"""The Optuna study: warm-up once, tune λ over trials, keep the Pareto front."""
from .front import front_csv, front_table, pareto_front
from .study import Study, quickstart_config, search
from .trials import load_trial

__all__ = ["Study", "front_csv", "front_table", "load_trial", "pareto_front", "quickstart_config", "search"]
