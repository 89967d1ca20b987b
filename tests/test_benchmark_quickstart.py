"""The quickstart benchmark's phase accounting, on a search.log written by hand."""
import datetime
import json
from pathlib import Path

from benchmarks.quickstart import parse_log, phases

DAY = datetime.date(2026, 12, 4)


def _line(stamp: str, kind: str, where: str = "", **data) -> str:
    return f"{stamp} pid=7 {kind} {where} {json.dumps(data)}".replace("  ", " ")


def test_phases_are_read_from_the_log_with_milliseconds(tmp_path: Path):
    log = tmp_path / "search.log"
    log.write_text("\n".join([
        _line("10:00:00.000", "study_start", run_dir="r"),
        _line("10:00:00.500", "phase_start", "phase=warmup", epochs=2, steps=10),
        _line("10:00:01.000", "epoch", "phase=warmup epoch=0", loss=1.0),
        _line("10:00:01.500", "epoch", "phase=warmup epoch=1", loss=0.5),
        _line("10:00:01.750", "phase_end", "phase=warmup", best_epoch=1),
        _line("10:00:02.000", "phase_start", "baseline=w8 phase=finetune", epochs=3, steps=10),
        _line("10:00:02.100", "epoch", "baseline=w8 phase=finetune epoch=0"),
        _line("10:00:02.200", "phase_end", "baseline=w8 phase=finetune"),
        _line("10:00:02.300", "phase_start", "trial=-4 phase=finetune", epochs=3, steps=10),  # an older log
        _line("10:00:02.400", "epoch", "trial=-4 phase=finetune epoch=0"),
        _line("10:00:02.500", "phase_end", "trial=-4 phase=finetune"),
        _line("10:00:03.000", "trial_start", "trial=0", params={"lambda": 1.0}),
        _line("10:00:03.250", "phase_start", "trial=0 phase=search", epochs=4, steps=5),
        _line("10:00:04.000", "epoch", "trial=0 phase=search epoch=0"),
        _line("10:00:05.000", "epoch", "trial=0 phase=search epoch=1"),
        _line("10:00:05.250", "phase_end", "trial=0 phase=search"),
        _line("10:00:05.500", "phase_start", "trial=0 phase=finetune", epochs=1, steps=5),
        _line("10:00:06.000", "epoch", "trial=0 phase=finetune epoch=0"),
        _line("10:00:06.500", "phase_end", "trial=0 phase=finetune"),
        _line("10:00:07.000", "trial_end", "trial=0"),
        _line("10:00:07.500", "study_end"),
        "a line that is not an event",
    ]) + "\n")
    events = parse_log(log, DAY)
    assert len(events) == 21
    start = datetime.datetime(2026, 12, 4, 9, 59, 58).timestamp()
    p = phases(events, start, events[-1]["time"] + 0.25)
    assert p["startup_s"] == 2.0 and p["end_s"] == 0.25
    assert p["warmup"] == {"s": 1.25, "steps": 20}  # two epochs run of 10 steps
    assert p["baselines"]["steps"] == 20 and p["baselines"]["s"] == 1.25  # warm-up end -> first trial start
    t = p["trials"][0]
    assert (t["search_s"], t["search_steps"]) == (2.0, 10)  # 2 of 4 epochs ran (early stop)
    assert (t["finetune_s"], t["finetune_steps"]) == (1.0, 5)
    assert t["total_s"] == 4.0 and t["rest_s"] == 1.0
    assert p["trials_s"] == 4.0 and p["after_trials_s"] == 0.5


def test_second_resolution_logs_still_parse(tmp_path: Path):
    log = tmp_path / "search.log"
    log.write_text(_line("10:00:00", "study_start") + "\n" + _line("10:00:03", "study_end") + "\n")
    events = parse_log(log, DAY)
    assert events[1]["time"] - events[0]["time"] == 3.0
