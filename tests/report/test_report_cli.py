"""`jointopt report RUN`: files, tables, the HTML page, regenerated TensorBoard runs, --compare, --target."""
import csv
import io
import json
import re
import shutil

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from jointopt.cli.main import main
from jointopt.errors import ConfigError
from jointopt.report import load_run
from fronts import expected_front


def tags(folder):
    ea = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_report_writes_figures_csv_and_a_self_contained_html(run_copy, capsys):
    assert main(["report", str(run_copy)]) == 0
    out = capsys.readouterr().out
    assert f"tensorboard --logdir {run_copy}" in out
    data = load_run(run_copy)
    by_trial = {r["trial"]: r for r in data.results}
    front = [by_trial[n] for n in expected_front(data.results, "memory")]
    rows = list(csv.DictReader(io.StringIO((run_copy / "pareto.csv").read_text())))
    assert [int(r["trial"]) for r in rows] == [r["trial"] for r in front]
    assert [float(r["memory (kB)"]) for r in rows] == pytest.approx([r["costs"]["memory"] / 8000 for r in front])
    for name in ("pareto.png", *[f"trials/{r['trial']}/allocation.png" for r in data.results],
                 *[f"trials/{r['trial']}/allocation_evolution.png" for r in data.results]):
        image = Image.open(run_copy / name)
        assert image.width > 500 and image.height > 200, name
    page = (run_copy / "report.html").read_text()
    assert not re.search(r"https?://", page)  # opens with no network
    assert not re.search(r"<(script|link)\b", page)
    assert len(re.findall(r'src="data:image/png;base64,', page)) >= 1 + 2 * len(data.results)
    front_section = page.split('id="front"')[1].split('id="baselines"')[0]
    for r in front:  # the front table: trial, accuracy, cost in kB
        assert re.search(rf"<tr><td>{r['trial']}</td>.*?<td class=num>{r['val_acc']:.2f}</td>", front_section)
        assert f"{r['costs']['memory'] / 8000:.4g}" in front_section
    assert "memory (kB)" in front_section and "bitops (Mbitop)" in front_section
    assert "uniform w8a8" in page
    assert "TensorBoard runs" not in out  # the live run already had every TensorBoard run: none rewritten


def test_report_regenerates_missing_tensorboard_runs_with_the_live_tags(run_copy, live_run):
    shutil.rmtree(run_copy / "tb")
    assert main(["report", str(run_copy)]) == 0
    result = json.loads((run_copy / "trials" / "1" / "result.json").read_text())
    live, replayed = tags(live_run / "tb" / "trial_1"), tags(run_copy / "tb" / "trial_1")
    assert replayed.Tags()["scalars"] == live.Tags()["scalars"]
    assert replayed.Tags()["images"] == live.Tags()["images"]
    assert replayed.Scalars("final/val_acc")[-1].value == pytest.approx(result["val_acc"], rel=1e-6)
    assert [s.value for s in replayed.Scalars("search/hard_cost/memory_kB")] == \
        [s.value for s in live.Scalars("search/hard_cost/memory_kB")]
    assert tags(run_copy / "tb" / "study").Images("pareto/front")
    assert tags(run_copy / "tb" / "baseline_w8").Scalars("final/val_acc")


def test_report_compare_overlays_fronts(run_copy, live_run, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["report", str(run_copy), "--compare", str(live_run), "--label", "first", "--label", "second",
                 "--log-cost", "--accuracy", "test", "--out", str(out), "--no-tensorboard"]) == 0
    rows = list(csv.DictReader(io.StringIO((out / "compare.csv").read_text())))
    n_front = len(expected_front(load_run(live_run).results, "memory", "test_acc"))
    assert [r["run"] for r in rows] == ["first"] * n_front + ["second"] * n_front
    assert Image.open(out / "compare.png").width > 500
    page = (out / "report.html").read_text()
    assert 'id="compare"' in page and "<h3>second</h3>" in page
    assert not (run_copy / "report.html").exists()  # --out: nothing written into the run
    assert str(out / "compare.png") in capsys.readouterr().out


def test_report_target_plots_another_reported_cost(run_copy):
    assert main(["report", str(run_copy), "--target", "bitops", "--no-tensorboard"]) == 0
    rows = list(csv.DictReader(io.StringIO((run_copy / "pareto.csv").read_text())))
    data = load_run(run_copy)
    assert [int(r["trial"]) for r in rows] == expected_front(data.results, "bitops")
    assert {r["target"] for r in rows} == {"bitops"}
    assert "target cost <b>bitops</b> (the study tuned for memory)" in (run_copy / "report.html").read_text()


def test_report_errors_are_one_line(run_copy, tmp_path, capsys):
    assert main(["report", str(run_copy), "--target", "mpic"]) == 1
    err = capsys.readouterr().err
    assert "does not report cost 'mpic'" in err and "memory, bitops" in err and "Traceback" not in err
    assert main(["report", str(tmp_path / "nowhere")]) == 1
    assert "not a jointopt run directory" in capsys.readouterr().err
    assert main(["report", str(run_copy), "--compare", str(run_copy), "--label", "only-one"]) == 1
    assert "--label given 1 times for 2 runs" in capsys.readouterr().err


def test_report_target_latency_says_what_latency_means_and_lists_every_trial(run_copy, capsys):
    assert main(["report", str(run_copy), "--target", "latency"]) == 1
    err = capsys.readouterr().err
    assert "'latency' is not a cost name" in err and "--cost-model latency" not in err
    assert "jointopt search --cost-model mpic" in err and err.count("\n") == 1
    data = load_run(run_copy)
    data.results = [dict(r, trial=n, costs={"memory": 1.0, "mpic": 2.0}) for n in range(8)
                    for r in data.results[:1]]
    with pytest.raises(ConfigError, match=r"for trials 0-7 \(8 of 8\).*this study's latency cost is 'mpic'"):
        data.check_target("latency")
    for r in data.results[:3] + data.results[4:]:
        r["costs"].pop("mpic")
    with pytest.raises(ConfigError, match=r"cost 'ne16' for trials 0-7 \(8 of 8\).*--cost-model ne16"):
        data.check_target("ne16")
    with pytest.raises(ConfigError, match=r"cost 'mpic' for trials 0-2, 4-7 \(7 of 8\)"):
        data.check_target("mpic")


def test_report_json_is_the_front_and_the_files(run_copy, capsys):
    assert main(["report", str(run_copy), "--format", "json", "--no-tensorboard"]) == 0
    report = json.loads(capsys.readouterr().out)
    data = load_run(run_copy)
    assert [r["trial"] for r in report["front"]] == expected_front(data.results, "memory")
    assert report["target"] == "memory" and report["trials"] == len(data.results)
    assert str(run_copy / "pareto.png") in report["files"] and report["tensorboard"].startswith("tensorboard --logdir")


def test_tensorboard_line_asks_for_every_image_when_there_are_more_than_ten(run_copy, live_run, capsys):
    from jointopt.report import tensorboard_command

    # the quickstart: 15 search epochs, one allocation image each; 8 trials, one front image each
    quickstart = {"search": {"epochs": 15}, "tuner": {"trials": 8}}
    assert tensorboard_command("runs/q", quickstart) == "tensorboard --logdir runs/q --samples_per_plugin images=15"
    assert tensorboard_command("r", {"search": {"epochs": 400}, "tuner": {"trials": 12}}).endswith("images=40")
    assert tensorboard_command("r", {"search": {"epochs": 5}, "tuner": {"trials": 8}}, trials=30).endswith("images=30")
    assert tensorboard_command("r", {"search": {"epochs": 5}, "tuner": {"trials": 8}}) == "tensorboard --logdir r"
    # the live run: the line covers the most images any tag holds
    assert main(["report", str(run_copy), "--no-tensorboard"]) == 0
    line = capsys.readouterr().out.rstrip().splitlines()[-1].strip()
    shown = int(line.split("images=")[1]) if "images=" in line else 10
    most = max(len(tags(folder).Images(tag)) for folder in (live_run / "tb").iterdir()
               for tag in tags(folder).Tags()["images"])
    assert most <= shown


def test_evolution_figure_marks_the_epoch_the_search_kept(live_run):
    from jointopt.report import evolution_figure
    from jointopt.report._allocation import KEPT_COLOR

    data = load_run(live_run)
    for result in data.results:
        trial = result["trial"]
        log = [json.loads(line.split(" phase=search ", 1)[1]) for line in (live_run / "search.log").read_text()
               .splitlines() if f" phase_end trial={trial} phase=search " in line]
        kept = data.kept_epoch(trial)
        assert kept == log[-1]["best_epoch"]
        fig = evolution_figure(data.allocation_history(trial), data.metrics(trial), "memory", kept_epoch=kept)
        marked = [ax for ax in fig.axes if any(line.get_color() == KEPT_COLOR and list(line.get_xdata()) == [kept, kept]
                                               for line in ax.get_lines())]
        assert len(marked) == 4  # two heat maps, two curves
        assert f"epoch {kept}, the one the search kept" in fig._suptitle.get_text()


# (memory in bits, validation accuracy) of made-up trials: which ones the front must hold, and why not the others
MADE_UP = {
    0: (8000, 90.0),  # dominated by 7: same cost, less accurate
    1: (16000, 95.0),  # front
    2: (12000, 89.0),  # dominated by 0 and 7
    3: (16000, 95.0),  # the same point as 1: shown once, as the lower trial number
    4: (24000, 95.0),  # dominated by 1: as accurate, costlier
    5: (4000, 80.0),  # front: the cheapest
    6: (800, 10.0),  # collapsed: cheapest of all, but no front point
    7: (8000, 91.0),  # front
    8: (30000, 96.5),  # front: the most accurate
}


def test_report_front_is_the_undominated_trials(run_copy, capsys):
    template = json.loads((run_copy / "trials" / "0" / "result.json").read_text())
    for trial, (memory, acc) in MADE_UP.items():
        folder = run_copy / "trials" / str(trial)
        if not folder.exists():
            shutil.copytree(run_copy / "trials" / "0", folder)
        result = dict(template, trial=trial, val_acc=acc, test_acc=acc - 1,
                      costs=dict(template["costs"], memory=float(memory)))
        if trial == 6:
            result["collapsed"] = "accuracy at chance"
        (folder / "result.json").write_text(json.dumps(result))
    expected = [5, 7, 1, 8]
    assert expected_front(load_run(run_copy).results, "memory") == expected  # the helper agrees with the comments
    assert main(["report", str(run_copy), "--format", "json", "--no-tensorboard"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["trial"] for r in report["front"]] == expected
    rows = list(csv.DictReader(io.StringIO((run_copy / "pareto.csv").read_text())))
    assert [int(r["trial"]) for r in rows] == expected
    assert [float(r["memory (kB)"]) for r in rows] == pytest.approx([MADE_UP[n][0] / 8000 for n in expected])


def test_every_method_gets_its_own_colour_in_a_comparison():
    """report --compare of all the registered methods draws each front in a colour of its own."""
    from jointopt.methods import list_methods
    from jointopt.report._render import RUN_COLORS

    assert len(set(RUN_COLORS)) == len(RUN_COLORS) >= len(list_methods())


def test_min_accuracy_starts_the_axis_there_and_counts_the_trials_below(live_run):
    from jointopt.report._pareto import compare_figure, pareto_figure

    data = load_run(live_run)
    accs = sorted(r["val_acc"] for r in data.results)
    floor = (accs[0] + accs[-1]) / 2 if accs[0] < accs[-1] else accs[0] + 0.5  # at least one trial below
    below = sum(a < floor for a in accs)
    for fig, n in ((pareto_figure(data, min_accuracy=floor), below),
                   (compare_figure([data, data], min_accuracy=floor), 2 * below)):  # both runs' trials count
        ax = fig.axes[0]
        assert ax.get_ylim()[0] == floor
        texts = [t.get_text() for t in ax.texts]
        note = next(t for t in texts if t.startswith(f"{n} trial") and t.endswith(f"below {floor:g} % not shown"))
        hidden = [name for name, b in data.baselines.items() if b["val_acc"] < floor]
        assert all(name in note for name in hidden) and ("baseline" in note) == bool(hidden), note
    plain = pareto_figure(data).axes[0]
    assert plain.get_ylim()[0] < floor and not any("not shown" in t.get_text() for t in plain.texts)


def test_a_latency_cost_is_known_by_its_unit_not_its_name(run_copy, tmp_path):
    table = tmp_path / "chip.csv"  # a measured table of the user's device: its unit says it is a latency
    table.write_text("# unit: us\nkind,kernel,stride,out_size,in_channels,out_channels,weight_bits,act_bits,latency\n"
                     "conv2d,3,1,8x8,16,16,8,8,12.5\n")
    data = load_run(run_copy)
    data.results = [dict(r, costs={"memory": 1.0, str(table): 2.0, "bitops": 3.0}) for r in data.results]
    with pytest.raises(ConfigError, match=f"this study's latency cost is '{table}'"):
        data.check_target("latency")
    data.results = [dict(r, costs={"memory": 1.0, "bitops": 3.0}) for r in data.results]  # bit operations: not time
    with pytest.raises(ConfigError, match="reported no latency cost"):
        data.check_target("latency")
