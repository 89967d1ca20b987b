"""TensorBoard events written during a real (tiny) study, read back with TensorBoard's own readers."""
import io
import json
import subprocess
import sys
import textwrap

import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

ALL = {"images": 0, "scalars": 0, "tensors": 0}


def accumulate(folder):
    ea = EventAccumulator(str(folder), size_guidance=ALL)
    ea.Reload()
    return ea


def results(run):
    return {int(p.parent.name): json.loads(p.read_text()) for p in run.glob("trials/*/result.json")}


def text(ea, tag):
    return tensor_util.make_ndarray(ea.Tensors(f"{tag}/text_summary")[-1].tensor_proto).item().decode()


def test_trial_runs_hold_per_epoch_scalars_in_human_units(live_run):
    for trial, result in results(live_run).items():
        ea = accumulate(live_run / "tb" / f"trial_{trial}")
        scalars = set(ea.Tags()["scalars"])
        expected = {"search/task_loss", "search/reg", "search/loss", "search/val_acc", "search/temperature",
                    "search/kept_pct", "search/mean_bits", "search/lr", "finetune/val_acc", "finetune/loss"}
        expected |= {f"search/{kind}_cost/{name}" for kind in ("soft", "hard")
                     for name in ("memory_kB", "bitops_Gbitop")}
        assert expected <= scalars
        metrics = live_run / "trials" / str(trial) / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]
        search = [r for r in rows if r["phase"] == "search"]
        assert [s.step for s in ea.Scalars("search/val_acc")] == [r["epoch"] for r in search]
        # values: kB = bits / 8000, kept in %, accuracy in %
        for s, r in zip(ea.Scalars("search/hard_cost/memory_kB"), search):
            assert s.value == pytest.approx(r["hard_cost/memory"] / 8000, rel=1e-6)
        for s, r in zip(ea.Scalars("search/soft_cost/bitops_Gbitop"), search):
            assert s.value == pytest.approx(r["soft_cost/bitops"] * 1e-9, rel=1e-6)
        for s, r in zip(ea.Scalars("search/kept_pct"), search):
            assert s.value == pytest.approx(100 * r["kept_fraction"], rel=1e-6)
        assert ea.Scalars("search/temperature")[-1].value == pytest.approx(search[-1]["temperature"], rel=1e-6)
        # final metrics equal the trial's result file
        assert ea.Scalars("final/val_acc")[-1].value == pytest.approx(result["val_acc"], rel=1e-6)
        assert ea.Scalars("final/test_acc")[-1].value == pytest.approx(result["test_acc"], rel=1e-6)
        assert ea.Scalars("final/cost/memory_kB")[-1].value == pytest.approx(result["costs"]["memory"] / 8000, rel=1e-6)
        assert ea.Scalars("final/kept_pct")[-1].value == pytest.approx(100 * result["kept_fraction"], rel=1e-6)


def test_hparams_dashboard_lists_every_trial_with_lambda_and_final_metrics(live_run):
    """Ask TensorBoard's HParams backend for the session groups, as its dashboard does."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(live_run))
    mux.Reload()
    tb = base_plugin.TBContext(logdir=str(live_run), multiplexer=mux,
                               data_provider=data_provider.MultiplexerDataProvider(mux, str(live_run)))
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=100, allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS],
        col_params=[api_pb2.ColParams(hparam="lambda", order=api_pb2.ORDER_DESC, include_in_result=True),
                    api_pb2.ColParams(metric=api_pb2.MetricName(tag="final/val_acc"), include_in_result=True)])
    response = list_session_groups.Handler(context.RequestContext(), backend_context.Context(tb), "", request).run()
    expected = results(live_run)
    groups = {g.name: g for g in response.session_groups}
    assert set(groups) == {f"tb/trial_{n}" for n in expected}
    lambdas = [g.hparams["lambda"].number_value for g in response.session_groups]
    assert lambdas == sorted(lambdas, reverse=True)  # the dashboard can sort trials by λ
    for n, result in expected.items():
        group = groups[f"tb/trial_{n}"]
        assert group.hparams["lambda"].number_value == pytest.approx(result["params"]["lambda"])
        metrics = {m.name.tag: m.value for m in group.metric_values}
        assert metrics["final/val_acc"] == pytest.approx(result["val_acc"], rel=1e-6)
        assert metrics["final/cost/bitops_Gbitop"] == pytest.approx(result["costs"]["bitops"] * 1e-9, rel=1e-6)
    ea = accumulate(live_run / "tb" / "trial_0")
    experiment = hparams_metadata.parse_experiment_plugin_data(
        ea.PluginTagToContent("hparams")[hparams_metadata.EXPERIMENT_TAG])
    assert {m.name.tag for m in experiment.metric_infos} >= {"final/val_acc", "final/test_acc", "final/cost/memory_kB"}


def test_allocation_images_per_search_epoch_and_at_the_end(live_run):
    for trial, result in results(live_run).items():
        ea = accumulate(live_run / "tb" / f"trial_{trial}")
        searched = [s.step for s in ea.Scalars("search/val_acc")]
        assert [i.step for i in ea.Images("allocation/search")] == searched
        for tag in ("allocation/final", "allocation/evolution"):
            image = Image.open(io.BytesIO(ea.Images(tag)[-1].encoded_image_string))
            assert image.width > 500 and image.height > 200
        table = text(ea, "allocation/table")
        for row in result["allocation"]:
            assert f"| {row['layer']} | {row['kept']}/{row['total']} |" in table
        history = [json.loads(line) for line in
                   (live_run / "trials" / str(trial) / "allocation.jsonl").read_text().splitlines()]
        assert [h["epoch"] for h in history] == searched
        assert [r["layer"] for r in history[-1]["layers"]] == [r["layer"] for r in result["allocation"]]


def test_study_run_has_the_pareto_figure_per_finished_trial_and_the_front_table(live_run):
    front = json.loads((live_run / "front.json").read_text())
    ea = accumulate(live_run / "tb" / "study")
    steps = [i.step for i in ea.Images("pareto/front")]
    assert steps == list(range(1, len(front["results"]) + 1))  # refreshed as each trial finished
    image = Image.open(io.BytesIO(ea.Images("pareto/front")[-1].encoded_image_string))
    assert image.width > 600
    table = text(ea, "pareto/table")
    assert f"{len(front['front'])} of {len(front['results'])} trials" in table
    for r in front["front"]:
        assert f"| {r['trial']} | " in table and f"{r['val_acc']:.2f}" in table
    assert "uniform w8a8" in table and "float (warm-up)" in table
    assert "study/config/text_summary" in ea.Tags()["tensors"]
    assert ea.Scalars("study/front_size")[-1].value == len(front["front"])


def test_warmup_and_baseline_runs(live_run):
    baselines = json.loads((live_run / "baselines.json").read_text())
    ea = accumulate(live_run / "tb" / "baseline_w8")
    assert ea.Scalars("final/val_acc")[-1].value == pytest.approx(baselines["w8"]["val_acc"], rel=1e-6)
    assert "finetune/val_acc" in ea.Tags()["scalars"]
    ea = accumulate(live_run / "tb" / "warmup")
    assert "warmup/val_acc" in ea.Tags()["scalars"]
    assert ea.Scalars("final/val_acc")[-1].value == pytest.approx(baselines["float"]["val_acc"], rel=1e-6)


WORKER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from jointopt.report import tensorboard_listener
    from jointopt.report._replay import ReplayedEvent
    run, first = Path(sys.argv[1]), int(sys.argv[2])
    listener = tensorboard_listener(run)
    result = json.loads((run / "trials/0/result.json").read_text())
    for n in range(first, first + 4, 2):   # this worker's trials, interleaved with the other's
        costs = {k: v * (1 + n) for k, v in result["costs"].items()}
        r = dict(result, trial=n, val_acc=result["val_acc"] + n, costs=costs)
        (run / "trials" / str(n)).mkdir(parents=True, exist_ok=True)
        (run / "trials" / str(n) / "result.json").write_text(json.dumps(r))
        listener(ReplayedEvent("trial_start", n, data={"params": r["params"]}))
        listener(ReplayedEvent("trial_end", n, data={"result": r}))
    listener.close()
""")


def test_two_worker_processes_share_one_run_directory(run_copy):
    """Two processes finish trials concurrently: every trial has its run, the study run stays readable."""
    import shutil

    shutil.rmtree(run_copy / "tb")
    (run_copy / "front.json").unlink()  # the worker processes below play a study still running
    for p in run_copy.glob("trials/*/result.json"):
        if p.parent.name != "0":
            p.unlink()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(run_copy), str(first)]) for first in (10, 11)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    for n in range(10, 14):
        assert accumulate(run_copy / "tb" / f"trial_{n}").Scalars("final/val_acc")
    steps = [i.step for i in accumulate(run_copy / "tb" / "study").Images("pareto/front")]
    assert steps == sorted(set(steps)) and steps[-1] == 5  # trial 0 + 4 new ones, no step written twice
