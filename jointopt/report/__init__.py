"""Reports: TensorBoard events during a study, and figures, tables and an HTML page after it.

The search never imports this package; it listens to the search's events::

    from jointopt.report import tensorboard_listener
    jointopt.search(config, "runs/a", listeners=[tensorboard_listener("runs/a")])

and, from the files of a run directory alone (live, finished, or copied from another machine)::

    from jointopt.report import write_report
    write_report("runs/a", compare=["runs/b"], log_cost=True)

``progress_listener()`` prints a study's progress (``jointopt search`` and ``jointopt.search`` attach
it). TensorBoard and matplotlib are imported only when something is written or drawn.
"""
from ._allocation import allocation_figure, evolution_figure
from ._pareto import compare_figure, pareto_figure
from ._progress import Progress, progress_listener
from ._replay import write_tensorboard
from ._report import ReportFiles, write_report
from ._rundata import RunData, load_run, pareto_front
from ._tensorboard import TensorBoardListener, tensorboard_command, tensorboard_listener
from ._units import CostUnit, cost_unit

__all__ = ["CostUnit", "Progress", "ReportFiles", "RunData", "TensorBoardListener", "allocation_figure",
           "compare_figure", "cost_unit", "evolution_figure", "load_run", "pareto_figure", "pareto_front",
           "progress_listener", "tensorboard_command", "tensorboard_listener", "write_report", "write_tensorboard"]
