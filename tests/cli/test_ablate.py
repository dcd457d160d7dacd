"""`fwp ablate`: a grid of tiny training runs, resumption, failure isolation and the report.

Most sweeps here train in process (``--in-process``) to stay fast; the failure-isolation test
also runs the default child-process path with ``--jobs 2`` (and a rule plugin passed on to the
children).
"""

import csv
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner
from fwp_test_utils import TINY_CLI_SHORT_RUN
from PIL import Image

from fwp.cli.main import cli
from fwp.gan import trainer
from fwp.gan.checkpoint import load_generator
from fwp.gan.sweep import PALETTE, TRACEBACK_FILE, read_state, read_sweep, write_state

TINY_SWEEP = TINY_CLI_SHORT_RUN


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A finished 2-rule x 2-seed sweep (and the arguments that made it)."""
    path = tmp_path_factory.mktemp("ablate") / "sweep"
    args = [
        "ablate",
        str(path),
        "--rule",
        "delta",
        "--rule",
        "hebb",
        "--seeds",
        "2",
        *TINY_SWEEP,
        "--in-process",
    ]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return path, args, result


def test_two_rules_two_seeds_sweep_writes_table_and_pictures(sweep):
    path, _, result = sweep
    assert "4 trained, 0 already done, 0 failed" in result.output
    names = ["delta-seed0", "delta-seed1", "hebb-seed0", "hebb-seed1"]
    for name in names:
        state = read_state(path / name)
        assert state.status == "done" and state.final_step == 4 and state.wall_s > 0
    # every cell is an ordinary run directory
    generator, config = load_generator(path / "hebb-seed1")
    assert config.painter.rule == "hebb" and config.run.seed == 1
    assert generator.sample(2).shape == (2, 3, 16, 16)

    rows = read_csv(path / "results.csv")
    assert [r["cell"] for r in rows if r["row"] == "cell"] == names
    assert [(r["row"], r["configuration"]) for r in rows if r["row"] != "cell"] == [
        ("mean", "delta"),
        ("std", "delta"),
        ("mean", "hebb"),
        ("std", "hebb"),
    ]
    for row in rows[:4]:
        assert row["steps"] == "4" and row["final_fid"] == "" and row["best_kid"] == ""
        assert float(row["img_per_s"]) > 0 and int(row["parameters"]) > 0
        assert float(row["wall_s"]) > 0
    assert rows[4]["seeds"] == "2" and rows[5]["steps"] == "0"  # std of 4 and 4

    markdown = (path / "results.md").read_text()
    assert "4 cells: 4 done." in markdown and "no FID during training" in markdown
    assert "| delta | delta | – | 2/2 | 4 ± 0 |" in markdown
    assert "| hebb-seed1 | done | hebb | – | 1 | 4 |" in markdown
    assert Image.open(path / "fid_curves.png").size == (960, 560)
    paintings = Image.open(path / "paintings.png")
    assert paintings.height > 2 * 128  # one row of pictures per configuration


def test_rerun_skips_finished_cells(sweep):
    path, args, _ = sweep
    before = {p: p.stat().st_mtime_ns for p in path.glob("*/checkpoints/last.pt")}
    assert len(before) == 4
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "0 trained, 4 already done, 0 failed" in result.output
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert all(read_state(p.parent.parent).attempts == 1 for p in before)
    listing = invoke(*args, "--dry-run")
    assert listing.output.count(" done") == 4 and "Nothing was run" in listing.output


def test_interrupted_sweep_resumes_unfinished_cells_only(tmp_path, monkeypatch):
    path = tmp_path / "sweep"
    args = ["ablate", str(path), "--rule", "delta", "--seeds", "2", *TINY_SWEEP, "--in-process"]
    real_update = trainer.ema_update
    calls = {"n": 0}

    def interrupt_at_call_7(*a, **k):  # seed 0 takes calls 1-4; seed 1 stops during step 3
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real_update(*a, **k)

    monkeypatch.setattr(trainer, "ema_update", interrupt_at_call_7)
    result = invoke(*args)
    assert result.exit_code == 130, result.output
    assert read_state(path / "delta-seed0").status == "done"
    interrupted = read_state(path / "delta-seed1")
    assert interrupted.status == "interrupted" and interrupted.error is None
    assert "1 done, 1 interrupted" in (path / "results.md").read_text()

    # as if the sweep had been killed outright: a "running" cell whose owner is gone
    interrupted.status = "running"
    interrupted.owner = {"pid": dead_pid(), "host": socket.gethostname()}
    write_state(path / "delta-seed1", interrupted)
    assert "interrupted" in invoke(*args, "--dry-run").output

    finished = (path / "delta-seed0" / "checkpoints" / "last.pt").stat().st_mtime_ns
    calls["n"] = 0
    monkeypatch.setattr(
        trainer,
        "ema_update",
        lambda *a, **k: (calls.update(n=calls["n"] + 1), real_update(*a, **k)),
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "1 trained, 1 already done" in result.output
    assert calls["n"] == 2  # seed 1 resumed from its step-2 checkpoint: steps 3 and 4 only
    assert (path / "delta-seed0" / "checkpoints" / "last.pt").stat().st_mtime_ns == finished
    resumed = read_state(path / "delta-seed1")
    assert resumed.status == "done" and resumed.attempts == 2 and resumed.final_step == 4

    # a larger budget extends finished cells, once the change of the stored sweep is confirmed
    longer = [a if a != "4" else "6" for a in args]
    preview = invoke(*longer, "--dry-run").output
    assert "budget changed" in preview and "run.steps: 4 -> 6" in preview
    refused = invoke(*longer)
    assert refused.exit_code != 0 and "run.steps: 4 -> 6" in refused.output
    assert "--change" in refused.output
    assert (path / "delta-seed0" / "checkpoints" / "last.pt").stat().st_mtime_ns == finished
    result = invoke(*longer, "--change")
    assert result.exit_code == 0 and "2 trained" in result.output, result.output
    assert [read_state(path / f"delta-seed{s}").final_step for s in (0, 1)] == [6, 6]
    assert read_sweep(path).spec.options["run.steps"] == 6


PLUGIN = '''
from fwp.rules import register_rule
from fwp.rules.hebbian import HebbianRule


class ExplodingRule(HebbianRule):
    """A rule that raises as soon as it paints."""

    family = "exploding"

    def step(self, W, k, v, lr):
        raise RuntimeError("boom: the exploding rule exploded")

    def paint(self, K, V, LR, W0=None, frames=False):
        raise RuntimeError("boom: the exploding rule exploded")


register_rule("ablate_exploding")(ExplodingRule)
'''


@pytest.mark.parametrize("mode", [["--jobs", "2"], ["--in-process"]], ids=["processes", "inline"])
def test_a_failing_cell_does_not_stop_the_others(tmp_path, mode):
    plugin = tmp_path / "ablate_exploding_plugin.py"
    plugin.write_text(PLUGIN)
    path = tmp_path / "sweep"
    try:
        result = invoke(
            "--plugin",
            str(plugin),
            "ablate",
            str(path),
            "--rule",
            "ablate_exploding",
            "--rule",
            "delta",
            *TINY_SWEEP,
            *mode,
        )
    finally:
        from fwp.rules import unregister_rule

        unregister_rule("ablate_exploding")
        sys.modules.pop("fwp_plugin_ablate_exploding_plugin", None)
    assert result.exit_code == 1, result.output
    assert "1 trained, 0 already done, 1 failed" in result.output
    assert "1 of 2 cells failed" in result.output
    assert (
        "ablate_exploding-seed0: RuntimeError: boom: the exploding rule exploded" in result.output
    )
    failed = read_state(path / "ablate_exploding-seed0")
    assert failed.status == "failed" and failed.error.type == "RuntimeError"
    assert failed.error.message == "boom: the exploding rule exploded"
    assert failed.error.traceback_file == TRACEBACK_FILE
    traceback_text = (path / "ablate_exploding-seed0" / TRACEBACK_FILE).read_text()
    assert traceback_text.startswith("Traceback (most recent call last)")
    assert "ablate_exploding_plugin.py" in traceback_text  # it names the plugin's line
    assert read_sweep(path).spec.plugins == [str(plugin.resolve())]
    assert read_state(path / "delta-seed0").status == "done"
    markdown = (path / "results.md").read_text()
    assert "## Failed cells" in markdown and "the exploding rule exploded" in markdown
    rows = {r["cell"]: r for r in read_csv(path / "results.csv") if r["row"] == "cell"}
    assert rows["ablate_exploding-seed0"]["status"] == "failed"
    assert rows["delta-seed0"]["steps"] == "4"


def _add_fid_rows(metrics, values):
    rows = read_csv(metrics)
    with metrics.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        for step, fid in values:
            writer.writerow({"step": step, "fid": fid, "kid": fid / 1000, "kid_std": 0.001})


def test_report_is_rebuilt_from_a_partial_sweep(sweep, tmp_path):
    import shutil

    source, _, _ = sweep
    path = tmp_path / "partial"
    shutil.copytree(source, path)
    for name in ("results.csv", "results.md", "fid_curves.png", "paintings.png"):
        (path / name).unlink()
    # hebb-seed1 never started; delta-seed1 was running when its sweep was killed
    pending = read_state(path / "hebb-seed1")
    pending.status, pending.wall_s, pending.final_step = "pending", 0.0, None
    write_state(path / "hebb-seed1", pending)
    for name in ("metrics.csv", "samples", "checkpoints", "config.json"):
        target = path / "hebb-seed1" / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    running = read_state(path / "delta-seed1")
    running.status, running.owner = "running", {"pid": dead_pid(), "host": socket.gethostname()}
    write_state(path / "delta-seed1", running)
    # FID rows as the trainer writes them (only step, fid, kid, kid_std filled)
    _add_fid_rows(path / "delta-seed0" / "metrics.csv", [(2, 100.0), (4, 80.0)])
    _add_fid_rows(path / "delta-seed1" / "metrics.csv", [(2, 120.0), (4, 90.0)])
    _add_fid_rows(path / "hebb-seed0" / "metrics.csv", [(2, 60.0), (4, 70.0)])

    result = invoke("ablate", "report", str(path))
    assert result.exit_code == 0, result.output
    rows = {(r["row"], r["cell"] or r["configuration"]): r for r in read_csv(path / "results.csv")}
    assert rows[("cell", "delta-seed0")]["final_fid"] == "80"
    assert rows[("cell", "delta-seed1")]["status"] == "interrupted"
    assert rows[("cell", "hebb-seed0")]["best_fid"] == "60"
    assert rows[("cell", "hebb-seed0")]["final_fid"] == "70"
    assert rows[("cell", "hebb-seed0")]["best_kid"] == "0.06"
    assert rows[("cell", "hebb-seed1")]["status"] == "pending"
    assert rows[("cell", "hebb-seed1")]["steps"] == ""
    # configuration means are over finished seeds only
    assert rows[("mean", "delta")]["final_fid"] == "80" and rows[("mean", "delta")]["seeds"] == "1"
    assert rows[("std", "delta")]["final_fid"] == ""
    markdown = (path / "results.md").read_text()
    assert "4 cells: 2 done, 1 interrupted, 1 pending." in markdown
    assert "| delta | delta | – | 1/2 |" in markdown

    fid_rows = [
        (r["configuration"], r["step"], r["fid_mean"]) for r in read_csv(path / "fid_curves.csv")
    ]
    assert fid_rows == [
        ("delta", "2", "110"),
        ("delta", "4", "85"),
        ("hebb", "2", "60"),
        ("hebb", "4", "70"),
    ]
    plot = Image.open(path / "fid_curves.png").convert("RGB")
    colours = {colour for _, colour in plot.getcolors(maxcolors=1 << 20)}
    assert PALETTE[0] in colours and PALETTE[1] in colours  # one line per configuration
    paintings = Image.open(path / "paintings.png")
    assert paintings.width > 200 and paintings.height > 2 * 128


def test_dry_run_lists_the_grid_and_writes_nothing(tmp_path):
    path = tmp_path / "sweep"
    result = invoke(
        "ablate",
        str(path),
        "--rules",
        "hebb*",
        "--rule",
        "delta",
        "--seeds",
        "0,3",
        "--set",
        "painter.steps=4,6",
        "--set",
        "optim.batch_size=8",
        *TINY_SWEEP,
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    cells = [line.split()[0] for line in lines[2:] if line and not line.startswith(" ")]
    assert "hebb-painter.steps=4-seed3" in cells and "delta-painter.steps=6-seed0" in cells
    assert "hebb_sum-painter.steps=6-seed0" in cells
    assert not any("batch_size" in c for c in cells)  # a single value is fixed, not swept
    assert cells.index("hebb-painter.steps=4-seed0") < cells.index("hebb-painter.steps=4-seed3")
    assert "each trains for 4 steps; no FID" in result.output
    assert not path.exists()


def test_sweep_file_with_command_line_overrides(tmp_path):
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(
        '[sweep]\npreset = "quick"\nrules = ["delta", "oja"]\nseeds = [0, 5]\nsteps = 3\n'
        "fid_every = 2\nfid_num = 50\n"
        '[sweep.set]\n"painter.steps" = [4, 6]\n'
        "[base.data]\nsize = 16\n[base.optim]\nbatch_size = 4\n"
    )
    path = tmp_path / "sweep"
    result = invoke("ablate", str(path), "--sweep", str(sweep_file), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "oja-painter.steps=6-seed5" in result.output
    assert "8 cells" in result.output and "each trains for 3 steps; FID every 2" in result.output
    result = invoke(
        "ablate",
        str(path),
        "--sweep",
        str(sweep_file),
        "--seeds",
        "1",
        "--rule",
        "hebb",
        "--set",
        "painter.steps=8",
        "--steps",
        "7",
        "--dry-run",
    )
    assert "1 cells" in result.output and "hebb-seed0" in result.output
    assert "each trains for 7 steps" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", "nomatch*"], "no registered rule matches 'nomatch*'"),
        (["--rule", "deltta"], "Did you mean: delta"),
        (["--gpus", "0", "--jobs", "2"], "do not combine it with --jobs"),
        (["--in-process", "--jobs", "2"], "--in-process trains one cell at a time"),
        (["--set", "run.steps=4,8"], "share one training budget"),
        (["--set", "run.seed=1,2"], "sweep run.seed with --seeds"),
        (["--set", "painter.steps=0,4"], "cell delta-painter.steps=0-seed0: painter option steps"),
        (["--set", "painter.colour=1,2"], "unknown option 'painter.colour'"),
        (["--seeds", "many"], "--seeds expects a count"),
        (["--sweep", "no-such-sweep.toml"], "does not exist"),
    ],
)
def test_bad_sweeps_are_refused_before_any_work(tmp_path, args, message):
    result = invoke("ablate", str(tmp_path / "sweep"), *TINY_SWEEP, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "sweep").exists()


def test_report_of_a_folder_without_cells_is_an_error(tmp_path):
    result = invoke("ablate", "report", str(tmp_path))
    assert result.exit_code != 0 and "holds no ablation cells" in result.output
