"""benchmarks/methods.py: its table from study summaries, and a smoke record that says it is one."""
import json

from benchmarks._studies import analyse
from benchmarks.methods import FULL_COMMAND, earlier_benches, render


def _result(trial, val, test, cost, **params):
    return {"trial": trial, "val_acc": val, "test_acc": test, "costs": {"memory": cost}, "params": params}


BASELINES = {"float": {"val_acc": 90.0, "test_acc": 89.0, "costs": {}},
             "w8": _result(None, 89.2, 88.5, 80000.0), "w4": _result(None, 88.9, 88.0, 40000.0)}


def _record(smoke):
    def method(results):
        summary = {"target": "memory", "results": results, "front": results, "baselines": BASELINES}
        timing = {"warmup_s": 10.0, "baselines_s": 20.0, "trials_total_s": 120.0, "trial_mean_s": 60.0}
        return {"analysis": analyse(summary), "timing": timing, "run_dir": "/runs/b/m", "overrides": ["method=x"],
                "schedule": {"search": {"epochs": 4, "max_steps": 100}, "finetune": {"epochs": 5, "max_steps": 100},
                             "warmup": {"epochs": 5}, "batch_size": 64}, "dataset": {}}
    bench = {"title": "Fashion-MNIST / ResNet-8", "config": "configs/fashion_mnist_resnet8.yaml", "figure": "f.png",
             "command": "python -m benchmarks methods --only fashion_mnist", "date_utc": "2026-12-03", "wall_s": 300.0,
             "notes": ["a note"], "machine": {"git_commit": "abc", "cpu": "cpu", "logical_cpus": 2},
             "methods": {"joint": method([_result(0, 88.8, 88.1, 30000.0, **{"lambda": 1.0})]),
                         "random": method([_result(0, 85.0, 84.0, 30000.0, keep=0.5, bits=8)])}}
    return {"smoke": smoke, "full_command": FULL_COMMAND, "benches": {"fashion_mnist": bench}}


def test_table_row_per_method_with_iso_accuracy_against_w8_and_w4():
    text = render(_record(False))
    joint = next(line for line in text.splitlines() if line.startswith("| joint |"))
    assert "3.75 kB (-62.5 %)" in joint and "3.75 kB (-25.0 %)" in joint  # memory in bits; within 0.5 of w8, w4
    random = next(line for line in text.splitlines() if line.startswith("| random |"))
    assert random.count("none within 0.5") == 2
    assert "SMOKE" not in text and "meaningless" not in text


def test_a_smoke_record_says_so_and_names_the_full_command():
    text = render(_record(True))
    assert text.startswith("# Methods compared — SMOKE RUN, NOT THE BENCHMARK")
    assert "say nothing about the methods" in text and FULL_COMMAND in text


def test_each_benchmark_says_which_run_its_rows_come_from():
    text = render(_record(False))
    section = text[text.index("## Fashion-MNIST"):]
    assert "- command: `python -m benchmarks methods --only fashion_mnist`" in section
    assert "commit abc" in section and "- note: a note" in section


def test_a_run_of_one_benchmark_keeps_the_others_already_recorded(tmp_path):
    old = _record(False)
    fm = old["benches"]["fashion_mnist"]
    for key in ("command", "date_utc", "machine", "notes", "wall_s"):  # a record from before per-bench provenance
        old[key] = fm.pop(key)
    old["benches"]["synthetic_kws"] = dict(fm, title="KWS")
    path = tmp_path / "methods.json"
    path.write_text(json.dumps(old))
    kept = earlier_benches(path, redone={"synthetic_kws"})
    assert list(kept) == ["fashion_mnist"]
    assert kept["fashion_mnist"]["command"] == "python -m benchmarks methods --only fashion_mnist"
    assert kept["fashion_mnist"]["machine"]["git_commit"] == "abc"
    assert earlier_benches(tmp_path / "missing.json", redone=set()) == {}


def test_continue_reads_finished_studies_and_runs_the_rest_sharing_the_first_warmup(tmp_path, monkeypatch):
    import argparse

    from benchmarks import methods as bench_methods

    base = tmp_path / "fashion_mnist-seed0-20261204"
    (base / "joint").mkdir(parents=True)
    for name in ("baselines.json", "front.json"):  # finished, with the shared warm-up and baselines
        (base / "joint" / name).write_text("{}")
    (base / "uniform").mkdir()
    (base / "uniform" / "config.yaml").write_text("")  # stopped part-way: it resumes in its own folder
    monkeypatch.setattr(bench_methods, "recorded_method", lambda bench, method, run_dir: (
        {"method": method, "read": True} if (run_dir / "front.json").is_file() else None))
    calls = []
    monkeypatch.setattr(bench_methods, "run_method", lambda bench, method, args, shared, run_dir: (
        calls.append((method, shared, run_dir)) or {"method": method, "run_dir": str(run_dir)}))
    args = argparse.Namespace(from_runs=None, continue_dir=str(base), runs=str(tmp_path / "elsewhere"), seed=0)
    out = bench_methods.run_bench("fashion_mnist", ["joint", "uniform", "random"], args, "20261205-000000")
    assert out["methods"]["joint"] == {"method": "joint", "read": True}
    assert calls == [("uniform", base / "joint", base / "uniform"), ("random", base / "joint", base / "random")]


def test_a_study_resumed_on_another_day_is_timed_without_its_stop(tmp_path):
    from benchmarks._studies import log_timing

    (tmp_path / "environment.json").write_text(json.dumps({"started": "2026-12-04T13:00:00",
                                                           "resumed": ["2026-12-05T16:30:00"]}))
    lines = ["13:00:00.0 pid=1 study_start  {}", "13:00:10.0 pid=1 trial_start trial=0 {}",
             "13:02:10.0 pid=1 trial_end trial=0 {}", "13:03:00.0 pid=1 trial_start trial=1 {}",  # stopped here
             "16:30:00.0 pid=2 study_start  {}", "16:30:05.0 pid=2 trial_start trial=1 {}",  # the next day, later
             "16:33:05.0 pid=2 trial_end trial=1 {}", "16:33:10.0 pid=2 study_end  {}"]
    (tmp_path / "search.log").write_text("\n".join(lines) + "\n")
    timing = log_timing(tmp_path)
    assert timing["trials_s"] == {0: 120.0, 1: 180.0}
    assert timing["total_s"] == 180.0 + 190.0  # 13:00:00-13:03:00 and 16:30:00-16:33:10: not the day between


def test_run_method_resumes_a_stopped_study_and_shares_the_warmup_only_with_a_new_one(tmp_path, monkeypatch):
    import argparse

    import jointopt.tune.study
    from benchmarks import methods as bench_methods

    shared = tmp_path / "joint"
    (shared / "warmup").mkdir(parents=True)
    (shared / "warmup" / "abc.pt").write_bytes(b"weights")
    (shared / "baselines.json").write_text("{}")
    seen = []

    class FakeStudy:
        def __init__(self, config, run_dir, resume=False, **kwargs):
            self.run_dir, self.resume = run_dir, resume

        def run(self):
            seen.append((self.run_dir.name, self.resume, (self.run_dir / "warmup" / "abc.pt").is_file()))
            (self.run_dir / "dataset.json").write_text("{}")
            (self.run_dir / "environment.json").write_text('{"started": "2026-12-04T13:00:00"}')
            return {}

    monkeypatch.setattr(jointopt.tune.study, "Study", FakeStudy)
    monkeypatch.setattr(bench_methods, "analyse", lambda summary: {})
    args = argparse.Namespace(seed=0, smoke=False, set=None, trials=None, data_dir=None)
    bench_methods.run_method("fashion_mnist", "random", args, shared, tmp_path / "random")  # a new study
    stopped = tmp_path / "magnitude"
    stopped.mkdir()
    (stopped / "config.yaml").write_text("")  # a study stopped part-way: resumed, nothing copied over it
    bench_methods.run_method("fashion_mnist", "magnitude", args, shared, stopped)
    assert seen == [("random", False, True), ("magnitude", True, False)]
