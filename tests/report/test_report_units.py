"""Report pieces on synthetic results: the front rule, units, tags, figures, lazy imports."""
import json
import subprocess
import sys

import pytest

from jointopt.report import CostUnit, cost_unit, load_run, pareto_front
from jointopt.report._tensorboard import final_metrics, run_name, scalar_tags


def result(trial, acc, memory, bitops=None):
    costs = {"memory": memory, **({"bitops": bitops} if bitops is not None else {})}
    return {"trial": trial, "val_acc": acc, "test_acc": acc - 1, "costs": costs, "params": {"lambda": 1.0 + trial},
            "allocation": [{"layer": "conv", "kept": 3, "total": 4, "bits": {"8": 1, "2": 2}, "act_bits": 8}],
            "kept_fraction": 0.75, "mean_bits": 4.0, "bits_histogram": {"8": 1, "2": 2}}


def test_pareto_front_keeps_non_dominated_sorted_by_cost():
    rs = [result(0, 90, 100, 5), result(1, 80, 50, 9), result(2, 85, 120, 1), result(3, 90, 100, 7),
          result(4, 70, 50, 8)]
    assert [r["trial"] for r in pareto_front(rs, "memory")] == [1, 0]  # 2 and 4 dominated; 3 duplicates 0
    assert [r["trial"] for r in pareto_front(rs, "bitops")] == [2, 0]


def test_cost_units_pick_readable_prefixes():
    memory = cost_unit("memory")
    assert (memory.unit, memory(8000)) == ("kB", 1.0)
    assert memory.fitted([114304]).format(114304) == "14.29 kB"
    assert memory.fitted([8e8]).format(8e8) == "100 MB"
    assert memory.fitted([800]).format(800) == "100 B"
    bitops = cost_unit("bitops")
    assert bitops.fitted([14766080]).label == "bitops (Mbitop)"
    assert cost_unit("mpic").fitted([5.95e6]).format(5.95e6) == "5.95 M cycles"
    assert CostUnit("x", "M cycles", 1e-6).tag == "x_Mcycles"
    unknown = cost_unit("no_such_model_here")  # a run from another machine: raw units, no crash
    assert (unknown.unit, unknown.scale) == ("", 1.0)


def test_scalar_tags_and_run_names():
    tags = scalar_tags("search", {"val_acc": 91.0, "kept_fraction": 0.5, "soft_cost/memory": 16000.0,
                                  "hard_cost/bitops": 2e9, "note": "text", "bad": float("nan")})
    assert tags == {"search/val_acc": 91.0, "search/kept_pct": 50.0, "search/soft_cost/memory_kB": 2.0,
                    "search/hard_cost/bitops_Gbitop": 2.0}
    assert final_metrics(result(0, 90, 8000))["final/cost/memory_kB"] == 1.0
    assert [run_name(3), run_name(-4), run_name(None, "warmup"), run_name(None, baseline="float"),
            run_name(None, baseline="w2"), run_name(None)] == ["trial_3", "baseline_w4", "warmup", "warmup",
                                                                "baseline_w2", None]


def test_figures_and_report_on_a_synthetic_run(tmp_path):
    """A run directory written by hand: the report reads files only, whatever wrote them."""
    from jointopt.report import write_report

    run = tmp_path / "run"
    (run / "trials").mkdir(parents=True)
    (run / "config.yaml").write_text("cost: {target: memory}\nspace: {act_bits: [8]}\nmodel: {name: toy}\n")
    for r in (result(0, 90, 80000), result(1, 85, 40000), result(2, 80, 60000)):
        (run / "trials" / str(r["trial"])).mkdir()
        (run / "trials" / str(r["trial"]) / "result.json").write_text(json.dumps(r))
    (run / "baselines.json").write_text(json.dumps({
        "float": {"val_acc": 91.0, "test_acc": 90.0, "costs": {}},
        "w8": {"val_acc": 90.5, "test_acc": 89.0, "costs": {"memory": 160000.0}, "bits": 8}}))
    from jointopt.report import pareto_figure

    files = write_report(run, log_cost=True, tensorboard=False)
    assert [r["trial"] for r in files.front] == [1, 0]
    page = files.html.read_text()
    assert "−50.0 %" in page  # trial 0 at 10 kB vs the uniform w8 at 20 kB
    assert (run / "trials" / "2" / "allocation.png").exists()
    assert not (run / "trials" / "2" / "allocation_evolution.png").exists()  # no metrics: nothing to draw
    assert load_run(run).cost_names == ["memory"]
    for log in (False, True):
        ax = pareto_figure(load_run(run), log_cost=log).axes[0]
        assert ax.get_xscale() == ("log" if log else "linear") and ax.get_xlabel().startswith("memory (kB)")
        labels = ax.get_legend_handles_labels()[1]
        assert labels == ["dominated trials (1)", "Pareto front (2 trials, selected on validation)",
                          "uniform w8a8: 90.5 % @ 20 kB", "float network (warm-up): 91.0 %"]
        front_line = [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"][0]
        assert list(front_line.get_xdata()) == [5.0, 10.0]  # the front's staircase, in kB


def test_import_jointopt_and_report_stay_light():
    code = ("import sys, jointopt, jointopt.report; "
            "print(sorted(m for m in ('tensorboard', 'matplotlib', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("bits", [{"8": 2}, {8: 2}])
def test_allocation_rows_accept_json_or_int_keys(bits):
    from jointopt.report._allocation import allocation_rows, layer_mean_bits

    row = {"layer": "a", "kept": 2, "total": 4, "bits": bits, "act_bits": 8}
    assert layer_mean_bits(row) == 8.0
    assert allocation_rows([row]) == [["a", "2/4", "8b:2", "8", "8.00"]]


def test_allocation_figure_keeps_one_legend_and_colour_per_width_of_the_search_space():
    from jointopt.report import allocation_figure
    from jointopt.report._render import bit_colors

    fig = allocation_figure([{"layer": "a", "kept": 2, "total": 4, "bits": {"8": 2}, "act_bits": 8}], "t", (0, 2, 4, 8))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["8-bit weights", "4-bit weights", "2-bit weights",
                                                                    "pruned"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a  2/4 ch · a8"]
    assert bit_colors([8, 2])[8] == bit_colors([8, 4])[8]  # a width looks the same in every figure
    assert [p.get_width() for p in ax.patches] == [50.0, 50.0]  # 8-bit half, pruned half
