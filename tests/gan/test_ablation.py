"""fwp.gan.ablation without training: the grid, cell names, sweep files, state and pictures."""

import json
import os
import sys

import pytest
from fwp_test_utils import TINY

from fwp.gan.ablation import (
    CellResult,
    SweepProgress,
    SweepSpec,
    _error_from_log,
    cell_status,
    config_changes,
    draw_fid_curves,
    draw_paintings,
    expand,
    fid_series,
    load_sweep_file,
    nice_ticks,
    parse_axis,
    parse_seeds,
    read_state,
    run_sweep,
    split_values,
    summarize,
    write_state,
)
from fwp.gan.config import ConfigError


def spec(**kwargs) -> SweepSpec:
    kwargs.setdefault("options", dict(TINY))
    return SweepSpec(preset="quick", **kwargs)


def test_split_values_keeps_quoted_strings_and_tables_whole():
    assert split_values("16,64") == ["16", "64"]
    assert split_values('"translation,cutout",none') == ['"translation,cutout"', "none"]
    assert split_values("{a=1,b=2}, {a=3}") == ["{a=1,b=2}", "{a=3}"]
    assert split_values("[16,16],[32,32]") == ["[16,16]", "[32,32]"]


def test_parse_axis_reads_values_as_toml():
    assert parse_axis("painter.steps=16,64") == ("painter.steps", [16, 64])
    assert parse_axis("optim.lr_generator=1e-4,2e-4") == ("optim.lr_generator", [1e-4, 2e-4])
    assert parse_axis('objective.augment="translation,cutout"') == (
        "objective.augment",
        ["translation,cutout"],
    )
    assert parse_axis("painter.rule_options={decay=0.5},{decay=0.9}")[1] == [
        {"decay": 0.5},
        {"decay": 0.9},
    ]
    with pytest.raises(ConfigError, match=r"section\.name=value"):
        parse_axis("painter.steps")
    with pytest.raises(ConfigError, match="empty value"):
        parse_axis("painter.steps=4,")


def test_parse_seeds():
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds(2) == [0, 1]
    assert parse_seeds("0,7") == [0, 7]
    assert parse_seeds([4]) == [4]
    for bad in ("0", "x", "1,1", "-1,2", 0):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


def test_expand_orders_and_names_cells(tmp_path):
    cells = expand(
        spec(
            rules=["delta", "hebb"],
            seeds=[0, 1],
            axes=[("painter.steps", [4, 6]), ("optim.batch_size", [8])],
        ),
        tmp_path,
    )
    assert [c.name for c in cells[:4]] == [
        "delta-painter.steps=4-seed0",
        "delta-painter.steps=4-seed1",
        "delta-painter.steps=6-seed0",
        "delta-painter.steps=6-seed1",
    ]
    assert len(cells) == 8 and cells[-1].name == "hebb-painter.steps=6-seed1"
    cell = cells[5]
    assert cell.configuration == "hebb-painter.steps=4" and cell.options_label == "painter.steps=4"
    assert cell.config.painter.rule == "hebb" and cell.config.run.seed == 1
    assert cell.config.painter.steps == 4 and cell.config.optim.batch_size == 8
    assert cell.run_dir == tmp_path / cell.name
    # without rules and seeds: the base configuration's
    (only,) = expand(spec(), tmp_path)
    assert only.name == "delta-seed0"


def test_cell_names_are_safe_and_unique(tmp_path):
    cells = expand(
        spec(axes=[("objective.augment", ["a b", "a_b", "translation,cutout"])]), tmp_path
    )
    names = [c.name for c in cells]
    assert len(set(names)) == 3
    assert names[0] == "delta-objective.augment=a_b-seed0"
    assert names[1].startswith("delta-objective.augment=a_b-") and names[1] != names[0]
    assert all("/" not in n and " " not in n and "," not in n for n in names)
    folder = "/data/" + "very-long-folder-name/" * 8
    cells = expand(spec(axes=[("data.source", ["emoji", folder])]), tmp_path)
    assert cells[0].name == "delta-data.source=emoji-seed0"
    assert len(cells[1].name) <= 100 + len("-seed0") and cells[1].name.endswith("-seed0")
    assert (
        expand(spec(axes=[("data.source", ["emoji", folder])]), tmp_path)[1].name == cells[1].name
    )  # stable


def test_expand_refuses_what_cannot_be_swept(tmp_path):
    with pytest.raises(ConfigError, match="one training budget"):
        expand(spec(axes=[("run.minutes", [1, 2])]), tmp_path)
    with pytest.raises(ConfigError, match="--rule/--rules"):
        expand(spec(axes=[("painter.rule", ["delta", "hebb"])]), tmp_path)
    with pytest.raises(ConfigError, match="repeats a value"):
        expand(spec(axes=[("painter.steps", [4, 4])]), tmp_path)
    with pytest.raises(ConfigError, match="no registered rule matches 'zzz\\*'"):
        expand(spec(rules=["zzz*"]), tmp_path)
    with pytest.raises(ConfigError, match=r"cell delta-data\.size=15-seed0"):
        expand(spec(axes=[("data.size", [16, 15])]), tmp_path)


def test_sweep_file(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(
        '[sweep]\npreset = "quick"\nrules = ["delta", "oja*"]\nseeds = 2\nminutes = 1.5\n'
        'plugins = ["rules/mine.py", "some.module"]\n'
        '[sweep.set]\n"painter.steps" = [4, 6]\n"optim.ema_decay" = 0.9\n'
        "[base.painter]\nrule_options = {}\n[base.run]\nfid_num = 100\n"
    )
    loaded = load_sweep_file(path)
    assert loaded.preset == "quick" and loaded.rules == ["delta", "oja*"]
    assert loaded.seeds == [0, 1]
    assert loaded.axes == [("painter.steps", [4, 6]), ("optim.ema_decay", [0.9])]
    assert loaded.options == {"run.minutes": 1.5, "painter.rule_options": {}, "run.fid_num": 100}
    assert loaded.plugins == [str((tmp_path / "rules" / "mine.py").resolve()), "some.module"]
    path.write_text("[sweep]\nrule = 'delta'\n")
    with pytest.raises(ConfigError, match=r"unknown \[sweep\] key\(s\) \['rule'\]"):
        load_sweep_file(path)
    path.write_text("[base]\nsteps = 3\n")
    with pytest.raises(ConfigError, match=r"\[base.steps\] must be a table"):
        load_sweep_file(path)


def test_config_changes_lists_only_differences():
    saved = {"run": {"steps": 4, "seed": 0}, "painter": {"steps": 6}, "preset": "quick"}
    requested = {"run": {"steps": 8, "seed": 0}, "painter": {"steps": 6}, "preset": "paper"}
    assert config_changes(saved, requested) == {"run.steps": 8}


def test_cell_state_round_trip_and_stale_running(tmp_path):
    (cell,) = expand(spec(), tmp_path)
    from fwp.gan.ablation import _new_state

    state = _new_state(cell)
    state.status, state.owner = "running", {"pid": 2**22 + 12345, "host": "elsewhere"}
    write_state(cell.run_dir, state)
    loaded = read_state(cell.run_dir)
    assert loaded == state
    assert cell_status(loaded) == "interrupted"
    assert read_state(tmp_path / "nothing") is None
    assert json.loads((cell.run_dir / "cell.json").read_text())["budget"]["run.steps"] == 6


def test_error_from_log():
    log = (
        'fwp: run directory x\nTraceback (most recent call last):\n  File "a.py", line 1\n'
        "    boom()\n    ^^^^^^\nfwp.gan.trainer.TrainingError: non-finite loss (g_loss)\n"
    )
    message, tail = _error_from_log(log, 1)
    assert message == "fwp.gan.trainer.TrainingError: non-finite loss (g_loss)"
    assert "^^^" not in tail and "boom()" in tail
    assert _error_from_log("Error: unknown dataset 'x'\n", 1)[0] == "unknown dataset 'x'"
    assert _error_from_log("", -9)[0] == "killed by SIGKILL (out of memory?)"
    assert _error_from_log("", 3)[0] == "training exited with status 3"


def test_nice_ticks():
    assert nice_ticks(0, 1000, 5) == [0, 200, 400, 600, 800, 1000]
    assert nice_ticks(43.2, 97.1, 5) == [40, 60, 80, 100]
    assert nice_ticks(5, 5) == [5, 6, 7, 8, 9, 10]
    assert nice_ticks(0, 2, 6) == [0, 0.5, 1, 1.5, 2]
    assert nice_ticks(0, 2, 6, integer=True) == [0, 1, 2]


def _result(name, configuration, seed, status="done", curve=(), **values):
    return CellResult(
        name=name,
        configuration=configuration,
        rule=configuration,
        options="",
        seed=seed,
        status=status,
        fid_curve=list(curve),
        **values,
    )


def test_summaries_and_pictures_handle_missing_values():
    results = [
        _result("a-seed0", "a", 0, final_fid=10.0, steps=4, curve=[(2, 20.0), (4, 10.0)]),
        _result("a-seed1", "a", 1, final_fid=14.0, steps=4, curve=[(2, 30.0), (4, 14.0)]),
        _result("b-seed0", "b", 0, status="failed", error="boom"),
    ]
    first, second = summarize(results)
    assert first.mean["final_fid"] == 12.0 and first.std["final_fid"] == pytest.approx(2.828427)
    assert first.finished == 2 and second.finished == 0 and second.mean["final_fid"] is None
    (series,) = fid_series(results)
    assert series.steps == [2, 4] and series.mean == [25.0, 12.0]
    assert series.std[0] == pytest.approx(7.0710678)
    plot = draw_fid_curves([series])
    assert plot.size == (960, 560) and plot.mode == "RGB"
    assert draw_fid_curves([]).size == (960, 560)
    paintings = draw_paintings(results)  # no samples on disk: placeholders
    assert paintings.height > 2 * 128


def test_progress_eta():
    progress = SweepProgress(total=5, slots=2, enabled=False)
    assert progress.eta() is None
    progress.done, progress.durations = 1, [100.0]
    assert progress.eta() == pytest.approx(200.0)  # 4 cells of 100 s, two at a time


class ScriptLauncher:
    """Runs a small Python script per cell instead of training (argv[1] is the run directory)."""

    def __init__(self, scripts: dict[str, str]) -> None:
        self.scripts = scripts

    def argv(self, cell) -> list[str]:
        return [sys.executable, "-c", self.scripts[cell.name], str(cell.run_dir)]

    def run_inline(self, cell) -> None:  # pragma: no cover - these tests use child processes
        raise AssertionError("not used")


ENV_PROBE = (
    "import os, sys, time, pathlib; time.sleep(0.3); pathlib.Path(sys.argv[1], 'env.txt')"
    ".write_text(os.environ.get('CUDA_VISIBLE_DEVICES', '-') + ' ' + "
    "os.environ.get('OMP_NUM_THREADS', '-'))"
)


def test_scheduler_places_one_cell_per_gpu(tmp_path):
    cells = expand(spec(seeds=[0, 1, 2]), tmp_path)
    summary = run_sweep(
        cells,
        ScriptLauncher({c.name: ENV_PROBE for c in cells}),
        gpus=["3", "5"],
        progress=False,
        poll_s=0.05,
    )
    assert sorted(summary.done) == sorted(c.name for c in cells) and not summary.failed
    seen = [(c.run_dir / "env.txt").read_text().split()[0] for c in cells]
    assert set(seen) == {"3", "5"} and seen[:2] in (["3", "5"], ["5", "3"])
    for cell in cells:
        state = read_state(cell.run_dir)
        assert state.status == "done" and state.device.startswith("cuda (GPU")
        assert state.parameters > 0 and state.owner == {}
    assert json.loads((tmp_path / "sweep.json").read_text())["cells"] == [c.name for c in cells]
    with pytest.raises(ConfigError, match="do not combine"):
        run_sweep(cells, ScriptLauncher({}), gpus=["0"], jobs=2)


def test_scheduler_records_each_kind_of_failure(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cells = expand(spec(seeds=[0, 1, 2, 3]), tmp_path)
    scripts = {
        cells[0].name: ENV_PROBE,
        cells[1].name: "import sys; print('Error: the data folder is empty'); sys.exit(1)",
        cells[2].name: "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        cells[3].name: "raise MemoryError('CUDA out of memory. Tried to allocate 2 GiB')",
    }
    summary = run_sweep(cells, ScriptLauncher(scripts), jobs=2, progress=False, poll_s=0.05)
    assert summary.done == [cells[0].name]
    assert summary.failed == {
        cells[1].name: "the data folder is empty",
        cells[2].name: "killed by SIGKILL (out of memory?)",
        cells[3].name: "MemoryError: CUDA out of memory. Tried to allocate 2 GiB",
    }
    threads = (cells[0].run_dir / "env.txt").read_text().split()[1]
    assert threads == str(max(1, (os.cpu_count() or 1) // 2))
    failed = read_state(cells[3].run_dir)
    assert failed.status == "failed" and "Traceback" in failed.traceback
    assert "=== attempt 1" in (cells[3].run_dir / "train.log").read_text()
    # skip failed cells on request; retry them by default
    again = run_sweep(
        cells, ScriptLauncher(scripts), jobs=2, progress=False, poll_s=0.05, retry_failed=False
    )
    assert len(again.failed) == 3 and again.skipped == []
    assert again.done == [cells[0].name]  # retrained: a script leaves no checkpoint behind
    assert read_state(cells[1].run_dir).attempts == 1


def test_fid_reference_statistics_are_prepared_once(tmp_path, monkeypatch):
    from fwp.gan import metrics
    from fwp.gan.ablation import prepare_fid_references

    calls = []
    monkeypatch.setattr(
        metrics, "reference_stats", lambda *args, **kwargs: calls.append((args, kwargs["limit"]))
    )
    assert prepare_fid_references(expand(spec(seeds=[0, 1]), tmp_path)) == 0  # no FID: nothing
    cells = expand(
        spec(
            seeds=[0, 1],
            axes=[("painter.steps", [4, 6])],
            options={**TINY, "run.fid_every": 2, "run.fid_num": 10},
        ),
        tmp_path,
    )
    assert prepare_fid_references(cells, progress=False) == 1
    assert calls == [(("emoji", (16, 16), 3), 64)]

    def missing(*args, **kwargs):
        raise RuntimeError("no Inception weights found")

    monkeypatch.setattr(metrics, "reference_stats", missing)
    with pytest.raises(ConfigError, match="no Inception weights found"):
        prepare_fid_references(cells)


def test_progress_eta_before_any_cell_finished(tmp_path):
    cells = expand(spec(seeds=[0, 1, 2]), tmp_path)  # 6 steps each
    progress = SweepProgress(total=3, slots=1, enabled=False)
    progress.started(cells[0])
    progress.running[cells[0].name] -= 30.0  # started 30 s ago
    assert progress.eta() is None  # no metrics yet
    cells[0].run_dir.mkdir()
    (cells[0].run_dir / "metrics.csv").write_text("step,elapsed_s\n2,20.0\n")
    # a third of the budget in 30 s: 60 s left for it, then 90 s for each of the other two
    assert progress.eta() == pytest.approx(240.0, rel=0.01)
