"""A cell's child process is the library's run entry point (``python -m fwp.gan.run``), not the
command line: its failures arrive as structured errors with the library's exception types."""

import sys

import pytest
from fwp_test_utils import TINY

from fwp.gan.data import load_images
from fwp.gan.sweep import Schedule, SweepRequest, plan_sweep, read_state, run_sweep

PROBE_PLUGIN = '''
import sys

from fwp.rules import register_rule
from fwp.rules.hebbian import HebbianRule


class CliProbeRule(HebbianRule):
    """Fails as soon as it paints, saying whether the command line was imported."""

    family = "cli-probe"

    def step(self, W, k, v, lr):
        raise RuntimeError(f"fwp.cli imported: {'fwp.cli' in sys.modules}")

    def paint(self, K, V, LR, W0=None, frames=False):
        raise RuntimeError(f"fwp.cli imported: {'fwp.cli' in sys.modules}")


register_rule("sweep_cli_probe")(CliProbeRule)
'''


@pytest.fixture
def probe_plugin(tmp_path):
    from fwp.rules import unregister_rule

    plugin = tmp_path / "sweep_cli_probe_plugin.py"
    plugin.write_text(PROBE_PLUGIN)
    yield plugin
    unregister_rule("sweep_cli_probe")
    sys.modules.pop("fwp_plugin_sweep_cli_probe_plugin", None)


def test_child_failures_are_library_errors_without_the_cli(tmp_path, probe_plugin):
    empty = tmp_path / "no-images"
    empty.mkdir()
    with pytest.raises(Exception) as expected:  # what the library raises for an empty folder
        load_images(str(empty), (16, 16), 3, limit=None, progress=False)
    request = SweepRequest(
        preset="quick",
        rules=["sweep_cli_probe"],
        axes=[("data.source", ["emoji", str(empty)])],
        options=dict(TINY),
        plugins=[str(probe_plugin)],
    )
    plan = plan_sweep(tmp_path / "sweep", request)
    summary = run_sweep(plan, Schedule(jobs=2), progress=False, poll_s=0.1)
    assert summary.done == [] and len(summary.failed) == 2
    painting, data = (read_state(cell.run_dir) for cell in plan.cells)

    # the rule ran in a child that never imported the command line
    assert painting.error.type == "RuntimeError"
    assert painting.error.message == "fwp.cli imported: False"
    assert painting.error.exit_status == 1
    command = painting.command
    assert command[:4] == [sys.executable, "-m", "fwp.gan.run", str(plan.cells[0].run_dir)]
    assert command[-2:] == ["--plugin", str(probe_plugin.resolve())]

    # a library exception keeps its own type and message
    assert data.error.type == type(expected.value).__name__
    assert data.error.message == str(expected.value)
    for cell, state in zip(plan.cells, (painting, data), strict=True):
        traceback_text = (cell.run_dir / state.error.traceback_file).read_text()
        assert traceback_text.startswith("Traceback (most recent call last)")
        assert state.error.type in traceback_text
