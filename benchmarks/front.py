"""Pareto front: full studies on Fashion-MNIST/ResNet-8 and synthetic KWS/DS-CNN, three seeds each, on 2 cores.

    python -m benchmarks front                         # both studies x seeds 0 1 2, results in benchmarks/results/front.*
    python -m benchmarks.front --only fashion_mnist --seeds 1    # one study, one seed (the others' records are kept)
    python -m benchmarks.front --from-run runs/bench-front/fashion_mnist-...   # re-analyse a finished run
    python -m benchmarks.front --only synthetic_kws --trials 2 --set search.epochs=3 --results /tmp/x  # smoke

Each study is ``jointopt.search`` on ``configs/<name>.yaml`` (warm-up once, the uniform w8/w4/w2
baselines trained with the same budget as a trial, then the trials), timed end to end by listening to
the study's events. The front is read in the normalised plane (x = memory / memory of uniform w8,
y = validation accuracy / 100); its hypervolume is taken against the reference point (x = 1.1,
y = 0). "Iso-accuracy" against a uniform baseline means the smallest trial network whose validation
accuracy is at least the baseline's minus 0.5 points; its test accuracy is reported next to the
baseline's. The keyword-spotting data are a synthetic substitute (espeak-ng voices, not people).

A seed changes everything that is random: the validation split, the warm-up's initial weights and
batches, the trials' batches. Each study is recorded per seed; the summary gives the mean and the
range over the seeds. Records of earlier code (``earlier`` in front.json) are kept and shown last.
"""
from __future__ import annotations

import os

# Passive OpenMP waiting: on a shared machine spinning threads cost 3-4x in wall time (see
# benchmarks/fashion_mnist_float.py); set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, List

try:  # run as part of the benchmarks package, or as a script
    from ._studies import BENCHES, KWS_SPEAKERS, REPO, RESULTS, Timer, analyse, kb, kws_root, log_timing, \
        machine, schedule, write_results
except ImportError:
    from _studies import BENCHES, KWS_SPEAKERS, REPO, RESULTS, Timer, analyse, kb, kws_root, log_timing, \
        machine, schedule, write_results

BUDGET_S = 30 * 60

SEEDS = (0, 1, 2)
TARGETS = {"w8": 55.0, "w4": 25.0}  # issue 12: mean reduction at iso-accuracy (validation) over the seeds, in %


# -- over the seeds ---------------------------------------------------------------------------------
def summarise(per_seed: Dict[str, dict]) -> dict:
    """Mean and range over seeds of the figures the issue judges; a seed with no iso-accuracy trial counts as missing."""
    def stat(values):
        values = [v for v in values if v is not None]
        if not values:
            return None
        return {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "n": len(values)}

    studies = list(per_seed.values())
    out = {"seeds": sorted(per_seed, key=int), "iso": {}, "hypervolume": {}, "baselines": {}}
    for name in ("w8", "w4", "w2"):
        isos = [(s["analysis"]["iso_accuracy"].get(name) or {}).get("val") for s in studies]
        out["iso"][name] = {"reduction_pct": stat([i["reduction_pct"] if i else None for i in isos]),
                            "test_delta": stat([i["test_delta"] if i else None for i in isos]),
                            "missing": sum(i is None for i in isos)}
        base = [s["analysis"]["baselines"].get(name) for s in studies]
        out["baselines"][name] = {k: stat([b[k] if b else None for b in base]) for k in ("val_acc", "test_acc")}
    for key in ("front_val", "front_test", "uniform_val", "uniform_test"):
        out["hypervolume"][key] = stat([s["analysis"]["hypervolume"][key] for s in studies])
    out["soft_hard_gap"] = stat([(s["analysis"].get("relaxation") or {}).get("gap_mean") for s in studies])
    out["entropy"] = stat([(s["analysis"].get("relaxation") or {}).get("entropy_mean") for s in studies])
    out["wall_s"] = stat([(s.get("timing") or {}).get("total_s") for s in studies])
    out["targets"] = {name: {"target_pct": want, "mean_pct": (out["iso"][name]["reduction_pct"] or {}).get("mean"),
                             "met": out["iso"][name]["missing"] == 0 and out["iso"][name]["reduction_pct"] is not None
                             and out["iso"][name]["reduction_pct"]["mean"] >= want}
                      for name, want in TARGETS.items()}
    return out


def check_targets(analysis: dict, targets: dict) -> Dict[str, dict]:
    out = {}
    w8 = analysis["iso_accuracy"].get("w8", {}).get("val")
    w4 = analysis["iso_accuracy"].get("w4", {}).get("val")
    if "reduction_vs_w8_pct" in targets:
        want = targets["reduction_vs_w8_pct"]
        got = w8["reduction_pct"] if w8 else None
        out["reduction_vs_w8"] = {"target_pct": want, "got_pct": got, "met": got is not None and got >= want,
                                  "shortfall_pct": None if got is None else max(0.0, want - got)}
    if targets.get("beats_w4"):
        b = analysis["baselines"]["w4"]
        out["beats_w4"] = {"met": bool(w4) and w4["cost"] < b["cost"],
                           "best_reduction_vs_w4_pct": w4["reduction_pct"] if w4 else None,
                           "note": "a trial smaller than uniform w4 with val acc >= w4 val acc - 0.5"}
    return out


# -- running ----------------------------------------------------------------------------------------
def run_bench(name: str, args, seed: int = 0) -> dict:
    import torch

    import jointopt
    from jointopt.config import Config
    from jointopt.tune.study import Study

    spec = BENCHES[name]
    config = Config.from_yaml(REPO / spec["config"])
    overrides = [f"seed={seed}", *(args.set or [])]
    if args.trials:
        overrides.append(f"tuner.trials={args.trials}")
    if name == "synthetic_kws":
        overrides.append(f"data.root={kws_root(args.data_dir, args.kws_speakers)}")
    elif args.data_dir:
        overrides.append(f"data.root={args.data_dir}")
    config = config.override(overrides) if overrides else config
    from jointopt.tune.setup import load_dataset

    data = load_dataset(config)  # sizes and provenance for the report (cached: ~1 s)
    data_note = (f"train {len(data.train):,} / val {len(data.val):,} / test {len(data.test):,}"
                 + (f" (limit_train {config.data.limit_train})" if config.data.limit_train else "")
                 + (f"; {data.notes}" if getattr(data, "notes", None) else ""))
    if name == "synthetic_kws":
        data_note += f"; a {args.kws_speakers}-speaker corpus under {config.data.root}"
    del data
    run_dir = Path(args.runs) / f"{name}-seed{seed}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    load_start = [round(v, 2) for v in os.getloadavg()]
    timer = Timer()
    started = datetime.datetime.now(datetime.timezone.utc)
    summary = Study(config, run_dir, listeners=[timer], argv=[sys.executable, *sys.argv]).run()
    end = time.time()
    timer.close()
    env = json.loads((run_dir / "environment.json").read_text())
    dataset = json.loads((run_dir / "dataset.json").read_text())
    return {"bench": name, "seed": seed, "title": spec["title"], "config": spec["config"], "overrides": overrides,
            "run_dir": str(run_dir), "date_utc": started.isoformat(timespec="seconds"),
            "dataset": dataset, "data_root": config.data.root, "data_note": data_note, "schedule": schedule(config),
            "timing": timer.summary(end), "load_average_start": load_start,
            "load_average_end": [round(v, 2) for v in os.getloadavg()],
            "within_budget": end - timer.t0 <= BUDGET_S, "budget_s": BUDGET_S,
            "versions": {"jointopt": jointopt.__version__, "torch": torch.__version__,
                         "optuna": env.get("optuna"), "numpy": env.get("numpy"), "python": env.get("python")},
            "machine": machine(), "analysis": analyse(summary),
            "targets": check_targets(analyse(summary), spec["targets"])}


def from_run(path: str) -> dict:
    """Re-analyse a finished run directory (no timing: the events were not observed)."""
    from jointopt.config import Config

    run = Path(path)
    summary = json.loads((run / "front.json").read_text())
    name = json.loads((run / "dataset.json").read_text())["name"]  # the bench names are the data-set names
    spec = BENCHES.get(name, {"title": name, "config": "?", "targets": {}})
    config = Config.from_yaml(run / "config.yaml")
    return {"bench": name, "seed": config.seed, "title": spec["title"], "config": spec["config"], "run_dir": str(run),
            "dataset": json.loads((run / "dataset.json").read_text()), "schedule": schedule(config),
            "timing": log_timing(run), "timing_source": "the run's search.log (1 s resolution, no load samples)",
            "analysis": analyse(summary), "targets": check_targets(analyse(summary), spec["targets"]),
            "environment": json.loads((run / "environment.json").read_text())}


# -- the markdown ------------------------------------------------------------------------------------
def _hist(h: dict) -> str:
    return " ".join(f"{b}b:{n}" for b, n in sorted(((int(b), n) for b, n in h.items()), reverse=True))


def _lambda_text(sch: dict) -> str:
    lo, hi = sch["lambda"]
    return "found from the trials" if lo is None else f"{lo:g}..{hi:g}"


def _schedule_text(sch: dict) -> str:
    if sch.get("temperature_decay") is None and sch.get("selector_lr") is None:
        search = (f"selectors Adam at {sch.get('selector_travel')}/steps, T 1 -> {sch.get('final_temperature')} per step, "
                  f"last {100 * sch.get('hard_fraction', 0):.0f} % of the steps straight-through hard")
    else:
        search = f"selector lr {sch['selector_lr']}, T x exp(-{sch['temperature_decay']}) per search epoch"
    return (f"warm-up {sch['warmup']['epochs']} epochs x {sch['warmup']['max_steps'] or 'all'} steps; "
            f"{sch['trials']} trials ({sch['sampler']} sampler, lambda {_lambda_text(sch)}), "
            f"each search {sch['search']['epochs']} x {sch['search']['max_steps'] or 'all'} steps + fine-tune "
            f"{sch['finetune']['epochs']} x {sch['finetune']['max_steps'] or 'all'} steps at batch {sch['batch_size']}"
            f"{' with distillation' if sch.get('distill') else ''}; uniform baselines "
            f"{', '.join(f'w{b}' for b in sch['baselines'])} fine-tuned for "
            f"{sch['search']['epochs'] + sch['finetune']['epochs']} x {sch['finetune']['max_steps'] or 'all'} steps; "
            f"{search}; {sch['threads']} threads")


def render_study(r: dict) -> str:
    a, t, sch = r["analysis"], r.get("timing"), r["schedule"]
    ds = r["dataset"]
    level = "###" if r.get("seed") is not None else "##"
    seed = f", seed {r['seed']}" if r.get("seed") is not None else ""
    lines = [f"{level} {r['title']}{seed}" + (" (earlier run)" if r.get("superseded") else ""), ""]
    if r.get("superseded"):
        lines += [f"*{r['superseded']}*", ""]
    if ds.get("substitute"):
        lines += [f"**The data are a synthetic substitute**: {ds['substitute']}.", ""]
    if r.get("command"):
        lines.append(f"- command: `{r['command']}`")
    if r.get("machine"):
        mm = r["machine"]
        lines.append(f"- code: commit {mm['git_commit']}" + (" (with uncommitted changes under jointopt/ by other "
                                                             "sessions)" if mm.get("jointopt_uncommitted_changes") else ""))
    lines += [f"- config: `{r['config']}`" + (f", overrides `{' '.join(r['overrides'])}`" if r.get("overrides") else ""),
              f"- run directory: `{r['run_dir']}`" + (f", started {r['date_utc']}" if r.get("date_utc") else ""),
              f"- schedule: {_schedule_text(sch)}",
              f"- data: {ds['name']}, input {ds['input_shape']}, {ds['num_classes']} classes" +
              (f"; {r['data_note']}" if r.get("data_note") else "")]
    if t:
        load = t["load_1min_during"] or {}
        within = t["total_s"] <= BUDGET_S
        lines.append(f"- wall time: **{t['total_s'] / 60:.1f} min** total (budget {BUDGET_S // 60} min: "
                     f"{'within' if within else 'OVER'}); data + setup {t['data_and_setup_s']:.0f} s, "
                     f"warm-up {t['warmup_s']:.0f} s, float eval + uniform baselines {t['baselines_s']:.0f} s, "
                     f"{len(t['trials_s'])} trials {t['trials_total_s']:.0f} s ({t['trial_mean_s']:.0f} s mean; per trial: "
                     + ", ".join(f"{v:.0f}" for v in t["trials_s"].values()) + " s)"
                     + (f"; timed from {r['timing_source']}" if r.get("timing_source") else ""))
        if r.get("load_average_start"):
            lines.append(f"- load average: {r['load_average_start']} at the start, {r['load_average_end']} at the end, "
                         f"1-min load during the run {load.get('min')}..{load.get('max')} (mean {load.get('mean')}) on "
                         f"{os.cpu_count()} cores" + ("; **the machine was heavily loaded, so wall times over-state the "
                                                      "cost**" if load.get("mean", 0) > 4 else ""))
    lines += ["", "| | trial | lambda | val acc % | test acc % | memory kB | vs w8 | kept | mean bits | weight bits (channels) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for p in a["front"]:
        lines.append(f"| front | {p['trial']} | {p['lambda']:.3g} | {p['val_acc']:.2f} | {p['test_acc']:.2f} | "
                     f"{kb(p['cost'])} | {100 * p['cost_norm']:.1f} % | {100 * (p['kept_fraction'] or 1):.0f} % | "
                     f"{p['mean_bits']:.2f} | {_hist(p['bits_histogram'])} |")
    for name, b in a["baselines"].items():
        norm = f"{100 * b['cost_norm']:.1f} %" if b["cost_norm"] is not None else "—"
        lines.append(f"| uniform | {name} | | {b['val_acc']:.2f} | {b['test_acc']:.2f} | {kb(b['cost'])} | {norm} | | | |")
    hv = a["hypervolume"]
    lines += ["", f"{a['trials']} trials, {len(a['front'])} on the front (selected on validation accuracy). "
              f"Memory = conv/linear weight bits, kB = 1000 bytes; float = the warm-up network; uniform networks "
              f"have 8-bit activations like the trials.", "",
              f"Hypervolume in the plane {hv['plane']}, reference point (x = {hv['reference_point']['cost_norm']}, "
              f"y = {hv['reference_point']['accuracy']}): joint front **{hv['front_val']:.4f}** (validation), "
              f"{hv['front_test']:.4f} (test accuracy of all trials); the uniform {'/'.join(k for k in a['baselines'] if k != 'float')} points alone: "
              f"{hv['uniform_val']:.4f} (validation), {hv['uniform_test']:.4f} (test).", "",
              "| iso-accuracy vs | smallest trial within 0.5 pt | memory kB (trial / uniform) | reduction | "
              "val acc % (trial / uniform) | test acc % (trial / uniform) |", "|---|---:|---:|---:|---:|---:|"]
    for name, iso in a["iso_accuracy"].items():
        for label, row in (("validation", iso["val"]), ("test (optimistic)", iso["test_selected"])):
            if row is None:
                lines.append(f"| {name}, selected on {label} | none | | | | |")
                continue
            lines.append(f"| {name}, selected on {label} | {row['trial']} | {kb(row['cost'])} / {kb(row['baseline_cost'])} "
                         f"| **{row['reduction_pct']:.1f} %** | {row['val_acc']:.2f} / {row['baseline_val_acc']:.2f} | "
                         f"{row['test_acc']:.2f} / {row['baseline_test_acc']:.2f} ({row['test_delta']:+.2f}) |")
    if r.get("repeats"):
        lines += ["", "Repeats: single trials at a fixed lambda on this study's warm-up and baselines (another trial "
                  "seed), against the study's trial at the nearest lambda. The difference is the run-to-run noise of "
                  "one trial at this budget (`--repeat LAMBDA ...`).", "",
                  "| lambda | repeat: val % / test % / kB | study trial (lambda): val % / test % / kB | val difference |",
                  "|---:|---|---|---:|"]
        for x in r["repeats"]:
            st = x["study_trial"]
            other = "—" if st is None else (f"trial {st['trial']} ({st['lambda']:.3g}): {st['val_acc']:.2f} / "
                                            f"{st['test_acc']:.2f} / {kb(st['cost'])}")
            diff = "—" if st is None else f"{x['val_acc'] - st['val_acc']:+.2f}"
            lines.append(f"| {x['lambda']:g} | {x['val_acc']:.2f} / {x['test_acc']:.2f} / {kb(x['cost'])} | {other} | {diff} |")
    targets = r.get("targets") or {}
    if targets:
        lines += ["", "Targets (issue 7):"]
        if "reduction_vs_w8" in targets:
            x = targets["reduction_vs_w8"]
            got = "no trial reaches iso-accuracy" if x["got_pct"] is None else f"{x['got_pct']:.1f} %"
            lines.append(f"- >= {x['target_pct']} % memory reduction vs uniform w8 at iso-accuracy (validation): {got} "
                         f"-> **{'met' if x['met'] else 'NOT met'}**" +
                         ("" if x["met"] or x["shortfall_pct"] is None else f" (short by {x['shortfall_pct']:.1f} points)"))
        if "beats_w4" in targets:
            x, iso = targets["beats_w4"], a["iso_accuracy"]["w4"]["val"]
            if iso is None:
                got = "no trial is within 0.5 pt of w4"
            else:
                size = f"{abs(iso['reduction_pct']):.1f} % {'smaller' if iso['reduction_pct'] > 0 else 'larger'}"
                got = (f"the smallest trial within 0.5 pt of w4 (trial {iso['trial']}, {kb(iso['cost'])} kB, val "
                       f"{iso['val_acc']:.2f} %) is {size} than w4 ({kb(iso['baseline_cost'])} kB, val "
                       f"{iso['baseline_val_acc']:.2f} %)")
            lines.append(f"- a point beating uniform w4 ({x['note']}): {got} -> **{'met' if x['met'] else 'NOT met'}**")
    return "\n".join(lines) + "\n"


def _stat(x, fmt="{:.1f}", unit="") -> str:
    if not x:
        return "—"
    if x["n"] == 1 or x["min"] == x["max"]:
        return fmt.format(x["mean"]) + unit
    return f"{fmt.format(x['mean'])}{unit} ({fmt.format(x['min'])}..{fmt.format(x['max'])})"


def render_summary(name: str, bench: dict) -> List[str]:
    sm = bench["summary"]
    lines = [f"## {bench['title']}: {len(sm['seeds'])} seeds ({', '.join(map(str, sm['seeds']))})", "",
             "Mean over the seeds, (min..max) in brackets. Iso-accuracy is selected on validation; a seed where no "
             "trial is within 0.5 points counts as missing.", "",
             "| vs uniform | reduction at iso-accuracy | test acc difference (trial − uniform), points | seeds with none |",
             "|---|---:|---:|---:|"]
    for w in ("w8", "w4", "w2"):
        iso = sm["iso"][w]
        lines.append(f"| {w} | **{_stat(iso['reduction_pct'], unit=' %')}** | {_stat(iso['test_delta'], '{:+.2f}')} | "
                     f"{iso['missing']} |")
    hv = sm["hypervolume"]
    lines += ["", f"- hypervolume (validation): joint **{_stat(hv['front_val'], '{:.4f}')}**, uniform points alone "
              f"{_stat(hv['uniform_val'], '{:.4f}')}; on test: {_stat(hv['front_test'], '{:.4f}')} vs "
              f"{_stat(hv['uniform_test'], '{:.4f}')}",
              "- uniform baselines, validation / test accuracy %: " + "; ".join(
                  f"{w} {_stat(sm['baselines'][w]['val_acc'], '{:.2f}')} / {_stat(sm['baselines'][w]['test_acc'], '{:.2f}')}"
                  for w in ("w8", "w4", "w2")),
              f"- relaxation at freeze (mean over a study's trials): soft − hard validation accuracy "
              f"{_stat(sm['soft_hard_gap'], '{:+.2f}', ' points')}, selector entropy {_stat(sm['entropy'], '{:.3f}')} "
              f"(1 = uniform choice, 0 = one-hot)",
              f"- wall time per study: {_stat({k: v / 60 if k != 'n' else v for k, v in sm['wall_s'].items()} if sm['wall_s'] else None, unit=' min')}",
              ""]
    for w, t in sm["targets"].items():
        got = "—" if t["mean_pct"] is None else f"{t['mean_pct']:.1f} %"
        lines.append(f"- target: a trial >= {t['target_pct']:g} % smaller than uniform {w} at iso-accuracy, mean over "
                     f"the seeds: {got} -> **{'met' if t['met'] else 'NOT met'}**")
    return lines + [""]


def render(record: dict) -> str:
    m = record["machine"]
    head = ["# Pareto front: joint pruning + channel-wise mixed precision, memory target", "",
            f"- last command: `{record['command']}`",
            f"- machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['platform']}, OMP_WAIT_POLICY="
            f"{m['omp_wait_policy']}; shared with other users, so wall times include contention (load below)", "",
            "Iso-accuracy: the smallest trial network whose **validation** accuracy is at least the uniform "
            "network's minus 0.5 points (the uniform networks are trained by the same study with the same budget "
            "as a trial: search + fine-tune epochs of fine-tuning from the same warm-up, with the same quantizers); "
            "the test accuracies of both are shown next to it. A second row selects on test accuracy instead "
            "(optimistic, for reference).", ""]
    body = []
    for name, bench in record.get("benches", {}).items():
        body += render_summary(name, bench)
        body += [render_study(bench["seeds"][k]) for k in sorted(bench["seeds"], key=int)]
    eras: dict = {}
    for s in record.get("earlier", {}).values():
        eras.setdefault(s.get("era", ERA_BEFORE_ISSUE_12), []).append(s)
    for era, earlier in sorted(eras.items(), key=lambda kv: kv[0] != ERA_BEFORE_ISSUE_12):
        body += [f"# Earlier runs ({era})", "",
                 "| study | lambda range | trials | front points | hypervolume (val / test) | uniform w8/w4/w2 HV (val) | "
                 "reduction vs w8 at iso-acc | reduction vs w4 at iso-acc (negative = larger) | wall time |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for s in earlier:
            a, t = s["analysis"], s.get("timing")
            iso = {k: (a["iso_accuracy"].get(k) or {}).get("val") for k in ("w8", "w4")}
            cell = {k: "none" if v is None else f"{v['reduction_pct']:.1f} % (trial {v['trial']})" for k, v in iso.items()}
            wall = f"{t['total_s'] / 60:.1f} min" if t else "—"
            body.append(f"| {s['bench']}{' seed ' + str(s['seed']) if 'seed' in s else ''}{' (earlier run)' if s.get('superseded') else ''} | {_lambda_text(s['schedule'])} | "
                        f"{a['trials']} | {len(a['front'])} | {a['hypervolume']['front_val']:.4f} / "
                        f"{a['hypervolume']['front_test']:.4f} | {a['hypervolume']['uniform_val']:.4f} | {cell['w8']} | "
                        f"{cell['w4']} | {wall} |")
        body.append("")
        body += [render_study(s) for s in earlier]
    return "\n".join(head + body) + "\n"


ERA_BEFORE_ISSUE_12 = ("before the search-quality work: symmetric max-scaled weight quantizer, per-epoch temperature, "
                      "SGD selectors, hand-set lambda range")


def _migrate(previous: dict) -> dict:
    """A record written before the per-seed format: its studies become ``earlier``."""
    if "benches" in previous or not previous:
        return previous
    earlier = {k if k != name else f"{name} (before issue 12)": v
               for k, v in previous.get("studies", {}).items() for name in [v.get("bench", k)]}
    return {**previous, "benches": {}, "earlier": earlier}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks front", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(BENCHES), action="append", help="run only this study (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="seeds to run (default 0 1 2)")
    parser.add_argument("--runs", default=str(REPO / "runs" / "bench-front"), help="where the run directories go")
    parser.add_argument("--results", default=str(RESULTS), help="where front.json / front.md go")
    parser.add_argument("--data-dir", default=None, help="data root (default $JOINTOPT_DATA_DIR or ~/.cache/jointopt/data)")
    parser.add_argument("--kws-speakers", type=int, default=KWS_SPEAKERS,
                        help="size of the synthetic keyword corpus (100 = the library's default corpus)")
    parser.add_argument("--trials", type=int, default=None, help="override tuner.trials")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--from-run", action="append", metavar="RUN", help="re-analyse finished run directories "
                        "(recorded under their data set and seed)")
    parser.add_argument("--render-only", action="store_true", help="only rewrite front.md from front.json")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    previous = _migrate(json.loads((out / "front.json").read_text()) if (out / "front.json").exists() else {})
    record = {"benchmark": "front", "version": 2,
              "command": "python -m benchmarks.front " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "benches": dict(previous.get("benches", {})),
              "earlier": dict(previous.get("earlier", {}))}
    if args.render_only:
        record = previous
    else:
        results = []
        if args.from_run:
            results = [from_run(path) for path in args.from_run]
        else:
            for name in args.only or list(BENCHES):
                for seed in args.seeds:
                    result = run_bench(name, args, seed)
                    result["command"] = record["command"]
                    _save(out, record, result)  # every finished study is kept, even if a later one fails
                    t = result["timing"]
                    print(f"{name} seed {seed}: {t['total_s']:.0f} s total (warm-up {t['warmup_s']:.0f} s, "
                          f"{len(t['trials_s'])} trials {t['trial_mean_s']:.0f} s each), load "
                          f"{result['load_average_start']} -> {result['load_average_end']}", file=sys.stderr)
        for result in results:
            _save(out, record, result)
    from jointopt._files import file_lock

    with file_lock(out / "front.lock"):
        if not args.render_only:
            _take_in(record, out)
        _write(out, record)
    print(f"wrote {out / 'front.json'} and {out / 'front.md'}")
    return 0


def _save(out: Path, record: dict, result: dict) -> None:
    """Store one study in ``record`` and on disk; studies run side by side share one front.json."""
    from jointopt._files import file_lock

    with file_lock(out / "front.lock"):
        _take_in(record, out)
        _store(record, result)
        _write(out, record)


def _take_in(record: dict, out: Path) -> None:
    """Take in the studies other runs wrote to ``out``/front.json meanwhile (the newer study of a seed wins)."""
    if not (out / "front.json").exists():
        return
    on_disk = _migrate(json.loads((out / "front.json").read_text()))
    for name, bench in on_disk.get("benches", {}).items():
        mine = record["benches"].setdefault(name, bench)
        for seed, study in bench.get("seeds", {}).items():
            if study.get("date_utc", "") > mine["seeds"].get(seed, {}).get("date_utc", ""):
                mine["seeds"][seed] = study
        mine["summary"] = summarise(mine["seeds"])


def _store(record: dict, result: dict) -> None:
    name = result["bench"]
    bench = record["benches"].setdefault(name, {"title": result["title"], "config": result["config"], "seeds": {}})
    bench["seeds"][str(result.get("seed", result["schedule"].get("seed", 0)))] = result
    bench["summary"] = summarise(bench["seeds"])


def _write(out: Path, record: dict) -> None:
    write_results(out, "front", record, render(record), indent=2)


if __name__ == "__main__":
    if __package__ in (None, ""):
        sys.path.insert(0, str(REPO))
    sys.exit(main())
