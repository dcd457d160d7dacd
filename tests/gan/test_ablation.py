"""fwp.gan.sweep without training: the grid, cell names, sweep files, state, scheduling and
pictures."""

import json
import os
import signal
import sys

import pytest
from fwp_test_utils import TINY, tiny_config
from fwp_test_utils import tiny_sweep_request as request
from PIL import Image

from fwp.gan.config import ConfigError, config_changes
from fwp.gan.sweep import (
    CellResult,
    Schedule,
    SweepProgress,
    SweepRequest,
    SweepSpec,
    cell_status,
    draw_paintings,
    expand,
    fid_series,
    load_sweep_file,
    parse_axis,
    parse_seeds,
    plan_sweep,
    plot_fid_curves,
    read_state,
    run_sweep,
    split_values,
    summarize,
    write_state,
)
from fwp.gan.sweep.launch import ERROR_FILE, error_from_child
from fwp.gan.sweep.plots import FID_PLOT_SIZE, save_figure
from fwp.gan.sweep.state import EXITED, KILLED_BY_SIGNAL, TRACEBACK_FILE, new_state


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
    cells = expand(spec(axes=[("data.source", ["a b", "a_b", "emoji,textures"])]), tmp_path)
    names = [c.name for c in cells]
    assert len(set(names)) == 3
    assert names[0] == "delta-data.source=a_b-seed0"
    assert names[1].startswith("delta-data.source=a_b-") and names[1] != names[0]
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
    loaded = load_sweep_file(path)  # a request: what the file gives, nothing else
    assert loaded.preset == "quick" and loaded.rules == ["delta", "oja*"]
    assert loaded.seeds == [0, 1]
    assert loaded.axes == [("painter.steps", [4, 6]), ("optim.ema_decay", [0.9])]
    assert loaded.options == {"run.minutes": 1.5, "painter.rule_options": {}, "run.fid_num": 100}
    assert loaded.plugins == [str((tmp_path / "rules" / "mine.py").resolve()), "some.module"]
    assert loaded.config_file is None
    assert load_sweep_file(path).then(SweepRequest(seeds=[3])).seeds == [3]
    path.write_text("[sweep]\nrule = 'delta'\n")
    with pytest.raises(ConfigError, match=r"unknown \[sweep\] key\(s\) \['rule'\]"):
        load_sweep_file(path)
    path.write_text("[base]\nsteps = 3\n")
    with pytest.raises(ConfigError, match=r"\[base.steps\] must be a table"):
        load_sweep_file(path)


def test_config_changes_lists_only_differences():
    saved = tiny_config(run__steps=4)
    requested = tiny_config(run__steps=8)
    requested.preset = "paper"  # a label, not an option
    assert config_changes(saved, requested) == {"run.steps": 8}
    assert config_changes(saved, tiny_config(run__steps=4)) == {}


def test_cell_state_round_trip_and_stale_running(tmp_path):
    (cell,) = expand(spec(), tmp_path)
    state = new_state(cell)
    state.status, state.owner = "running", {"pid": 2**22 + 12345, "host": "elsewhere"}
    write_state(cell.run_dir, state)
    loaded = read_state(cell.run_dir)
    assert loaded == state
    assert cell_status(loaded) == "interrupted"
    assert read_state(tmp_path / "nothing") is None
    assert json.loads((cell.run_dir / "cell.json").read_text())["budget"]["run.steps"] == 6


def test_error_from_child(tmp_path):
    error_file = tmp_path / ERROR_FILE
    error_file.write_text(
        json.dumps(
            {
                "type": "TrainingError",
                "message": "non-finite loss (g_loss)",
                "traceback": 'Traceback (most recent call last):\n  File "a.py", line 1\n',
            }
        )
    )
    error = error_from_child(tmp_path, 1, error_file)
    assert (error.type, error.message, error.exit_status) == (
        "TrainingError",
        "non-finite loss (g_loss)",
        1,
    )
    assert error.headline() == "TrainingError: non-finite loss (g_loss)"
    assert error.traceback_file == TRACEBACK_FILE
    assert 'File "a.py"' in (tmp_path / TRACEBACK_FILE).read_text()
    assert not error_file.exists()  # read once, then the cell.json holds it
    killed = error_from_child(tmp_path, -signal.SIGKILL, error_file)
    assert killed.type == KILLED_BY_SIGNAL and killed.signal == "SIGKILL"
    assert killed.headline() == "killed by SIGKILL (out of memory?)"
    assert killed.exit_status == -9 and killed.traceback_file is None
    error_file.write_text("{not json")  # an unusable record counts as none
    exited = error_from_child(tmp_path, 3, error_file)
    assert exited.type == EXITED and exited.exit_status == 3
    assert exited.headline().startswith("training exited with status 3 without an error record")


def test_fid_plot_axes_cover_every_series():
    results = [
        _result("a-seed0", "a", 0, curve=[(500, 80.0), (1000, 60.0)]),
        _result("a-seed1", "a", 1, curve=[(500, 90.0), (1000, 70.0)]),
        _result("b-seed0", "b", 0, curve=[(500, 120.0), (1000, 110.0)]),
    ]
    figure = plot_fid_curves(fid_series(results))
    (axes,) = figure.axes
    assert axes.get_xlabel() == "training step" and axes.get_ylabel() == "FID"
    low, high = axes.get_ylim()
    assert low <= 85.0 - 7.08 and high >= 110.0  # the band of a and the line of b
    left, right = axes.get_xlim()
    assert left == 0 and right >= 1000


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


def test_summaries_and_pictures_handle_missing_values(tmp_path):
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
    for name, curves in (("one.png", [series]), ("none.png", [])):
        save_figure(plot_fid_curves(curves), tmp_path / name)
        with Image.open(tmp_path / name) as plot:
            assert plot.size == FID_PLOT_SIZE == (960, 560) and plot.format == "PNG"
    paintings = draw_paintings(results)  # no samples on disk: placeholders
    assert paintings.height > 2 * 128


def test_progress_eta():
    progress = SweepProgress(total=5, slots=2, enabled=False)
    assert progress.eta() is None
    progress.done, progress.durations = 1, [100.0]
    assert progress.eta() == pytest.approx(200.0)  # 4 cells of 100 s, two at a time


class ScriptLauncher:
    """Runs a small Python script per cell instead of training (argv[1] is the run directory,
    argv[2] the error file)."""

    def __init__(self, scripts: dict[str, str]) -> None:
        self.scripts = scripts

    def command(self, cell, error_file) -> list[str]:
        return [sys.executable, "-c", self.scripts[cell.name], str(cell.run_dir), str(error_file)]

    def train_inline(self, cell) -> None:  # pragma: no cover - these tests use child processes
        raise AssertionError("not used")


ENV_PROBE = (
    "import os, sys, time, pathlib; time.sleep(0.3); pathlib.Path(sys.argv[1], 'env.txt')"
    ".write_text(os.environ.get('CUDA_VISIBLE_DEVICES', '-') + ' ' + "
    "os.environ.get('OMP_NUM_THREADS', '-'))"
)


def test_scheduler_places_one_cell_per_gpu(tmp_path):
    plan = plan_sweep(tmp_path, request(seeds=[0, 1, 2], options={**TINY, "run.device": "auto"}))
    cells = plan.cells
    summary = run_sweep(
        plan,
        Schedule(gpus=("3", "5")),
        launcher=ScriptLauncher({c.name: ENV_PROBE for c in cells}),
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
        assert json.loads((cell.run_dir / "config.json").read_text())["run"]["device"] == "cuda"
    assert json.loads((tmp_path / "sweep.json").read_text())["cells"] == [c.name for c in cells]
    with pytest.raises(ConfigError, match="do not combine"):
        Schedule(gpus=("0",), jobs=2)
    with pytest.raises(ConfigError, match="drop --device cpu"):
        Schedule(gpus=("0",)).check_cells(expand(spec(), tmp_path))


#: what ``python -m fwp.gan.run --error-file FILE`` does when training raises
RAISE_AND_RECORD = """
import json, sys, traceback
try:
    raise MemoryError("CUDA out of memory. Tried to allocate 2 GiB")
except MemoryError as err:
    record = {"type": type(err).__name__, "message": str(err), "traceback": traceback.format_exc()}
    open(sys.argv[2], "w").write(json.dumps(record))
    sys.exit(1)
"""


def test_scheduler_records_each_kind_of_failure(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    plan = plan_sweep(tmp_path, request(seeds=[0, 1, 2, 3, 4]))
    cells = plan.cells
    scripts = {
        cells[0].name: ENV_PROBE,
        cells[1].name: "import sys; print('the data folder is empty'); sys.exit(1)",
        cells[2].name: "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        cells[3].name: RAISE_AND_RECORD,
        cells[4].name: RAISE_AND_RECORD.replace("MemoryError", "KeyboardInterrupt"),
    }
    jobs = Schedule(jobs=2)
    launcher = ScriptLauncher(scripts)
    summary = run_sweep(plan, jobs, launcher=launcher, progress=False, poll_s=0.05)
    assert summary.done == [cells[0].name]
    assert summary.failed == {
        cells[1].name: "training exited with status 1 without an error record (see train.log)",
        cells[2].name: "killed by SIGKILL (out of memory?)",
        cells[3].name: "MemoryError: CUDA out of memory. Tried to allocate 2 GiB",
    }
    threads = (cells[0].run_dir / "env.txt").read_text().split()[1]
    assert threads == str(max(1, (os.cpu_count() or 1) // 2))
    failed = read_state(cells[3].run_dir)
    assert failed.status == "failed" and failed.error.type == "MemoryError"
    assert failed.error.message == "CUDA out of memory. Tried to allocate 2 GiB"
    traceback_text = (cells[3].run_dir / failed.error.traceback_file).read_text()
    assert "Traceback" in traceback_text and "MemoryError" in traceback_text
    assert not (cells[3].run_dir / ERROR_FILE).exists()
    killed = read_state(cells[2].run_dir).error
    assert (killed.type, killed.signal, killed.exit_status) == (KILLED_BY_SIGNAL, "SIGKILL", -9)
    assert read_state(cells[1].run_dir).error.exit_status == 1
    stopped = read_state(cells[4].run_dir)  # a child stopped by SIGINT: resumed, not failed
    assert stopped.status == "interrupted" and stopped.error is None
    assert "=== attempt 1" in (cells[3].run_dir / "train.log").read_text()
    assert "the data folder is empty" in (cells[1].run_dir / "train.log").read_text()
    # skip failed cells on request; retry them by default
    again = run_sweep(
        plan, jobs, launcher=launcher, progress=False, poll_s=0.05, retry_failed=False
    )
    assert len(again.failed) == 3 and again.skipped == []
    assert again.done == [cells[0].name]  # retrained: a script leaves no checkpoint behind
    assert read_state(cells[1].run_dir).attempts == 1


def test_fid_reference_statistics_are_prepared_once(tmp_path, monkeypatch):
    from fwp.gan import metrics
    from fwp.gan.sweep import prepare_fid_references

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
