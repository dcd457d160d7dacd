"""`fwp ablate` on an existing sweep: a bare re-run resumes the stored sweep, options left out
keep their stored values, changes need --change, and unusable sweep files are one-line errors."""

import json
import shutil
import sys

import pytest
from click.testing import CliRunner
from fwp_test_utils import TINY_CLI_SHORT_RUN

from fwp.cli.main import cli
from fwp.gan.sweep import read_state, read_sweep

#: the command that made the sweep of the ``finished`` fixture (less the directory)
ORIGINAL = ["--rule", "delta", "--rule", "hebb", *TINY_CLI_SHORT_RUN, "--fid-num", "50"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished sweep of delta and hebb (4 steps, fid_num 50 but no FID during training)."""
    path = tmp_path_factory.mktemp("rerun") / "sweep"
    result = invoke("ablate", str(path), *ORIGINAL, "--in-process")
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of the finished sweep that a test may change."""
    return shutil.copytree(finished, tmp_path / "sweep")


def without(args: list[str], option: str) -> list[str]:
    """``args`` less ``option`` and its value."""
    at = args.index(option)
    return args[:at] + args[at + 2 :]


def test_the_whole_sweep_is_stored(finished):
    stored = json.loads((finished / "sweep.json").read_text())
    assert stored["preset"] == "quick" and stored["rules"] == ["delta", "hebb"]
    assert stored["seeds"] == [0] and stored["axes"] == [] and stored["plugins"] == []
    assert stored["budget"] == {"run.steps": 4, "run.minutes": 0.0}
    assert stored["fid"] == {"run.fid_every": 0, "run.fid_num": 50}
    assert stored["options"]["painter.hidden_size"] == 32
    assert stored["options"]["run.device"] == "cpu"
    assert stored["cells"] == ["delta-seed0", "hebb-seed0"]


def test_a_bare_rerun_resumes_exactly_the_stored_sweep(finished):
    listing = invoke("ablate", str(finished), "--dry-run")
    assert listing.exit_code == 0, listing.output
    assert listing.output.count(" done\n") == 2 and "budget changed" not in listing.output
    assert "each trains for 4 steps; no FID" in listing.output
    assert "This changes" not in listing.output
    result = invoke("ablate", str(finished), "--quiet")
    assert result.exit_code == 0, result.output
    assert "0 trained, 2 already done, 0 failed" in result.output


@pytest.mark.parametrize("dropped", ["--fid-num", "--steps", "--preset"])
def test_options_left_out_of_a_rerun_keep_their_stored_values(finished, dropped):
    result = invoke("ablate", str(finished), *without(ORIGINAL, dropped), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.count(" done\n") == 2, result.output
    assert "budget changed" not in result.output and "This changes" not in result.output


def test_changing_the_budget_needs_change_and_says_what_changes(copy):
    before = read_sweep(copy)
    refused = invoke("ablate", str(copy), "--steps", "6", "--in-process", "--quiet")
    assert refused.exit_code != 0
    assert "run.steps: 4 -> 6" in refused.output and "--change" in refused.output
    assert "Traceback" not in refused.output
    assert read_sweep(copy) == before and read_state(copy / "delta-seed0").attempts == 1
    result = invoke("ablate", str(copy), "--steps", "6", "--change", "--in-process", "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 trained" in result.output
    assert read_state(copy / "hebb-seed0").final_step == 6
    assert read_sweep(copy).spec.options["run.steps"] == 6
    assert "2 already done" in invoke("ablate", str(copy), "--quiet").output


def test_changing_the_grid_needs_change(copy):
    refused = invoke("ablate", str(copy), "--rule", "oja", "--dry-run")
    assert refused.exit_code == 0  # a dry run previews the change
    assert "new cells: oja-seed0" in refused.output
    assert "cells left out of the sweep (their folders stay): delta-seed0, hebb-seed0" in (
        refused.output
    )
    assert "Running it needs --change." in refused.output
    more = ["--rule", "delta", "--rule", "hebb", "--rule", "oja"]
    assert invoke("ablate", str(copy), *more).exit_code != 0
    result = invoke("ablate", str(copy), *more, "--change", "--in-process", "--quiet")
    assert result.exit_code == 0, result.output
    assert "1 trained, 2 already done" in result.output
    assert read_sweep(copy).spec.rules == ["delta", "hebb", "oja"]


def test_a_change_that_makes_started_cells_other_runs_is_refused(copy):
    result = invoke("ablate", str(copy), "--set", "painter.hidden_size=16", "--change")
    assert result.exit_code != 0
    assert "cell delta-seed0 was started with other settings" in result.output
    assert "cannot change painter.hidden_size" in result.output
    assert read_sweep(copy).spec.options["painter.hidden_size"] == 32


def test_a_directory_without_a_sweep_needs_the_sweep(tmp_path):
    result = invoke("ablate", str(tmp_path / "typo"))
    assert result.exit_code != 0 and "holds no sweep (no sweep.json)" in result.output
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    "command", [["--dry-run"], ["--quiet"], None], ids=["dry", "run", "report"]
)
@pytest.mark.parametrize(
    ("target", "text", "message"),
    [
        ("sweep.json", "{oops", "sweep.json: not valid JSON"),
        ("sweep.json", '{"version": 2, "preset": "quick"}', "the key 'budget'"),
        ("hebb-seed0/cell.json", '{"name": "hebb-seed0"}', "cell.json: the key 'configuration'"),
    ],
)
def test_unusable_sweep_files_are_one_line_errors(copy, command, target, text, message):
    (copy / target).write_text(text)
    args = ["ablate", str(copy), *command] if command else ["ablate", "report", str(copy)]
    result = invoke(*args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert message in result.output and "Traceback" not in result.output
    (error_line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert str(copy / target) in error_line


def test_help_shows_the_run_options():
    result = invoke("ablate", "--help")
    assert result.exit_code == 0
    for option in ("--rule", "--seeds", "--set", "--steps", "--fid-every", "--jobs", "--change"):
        assert f"{option} " in result.output or f"{option}," in result.output, option
    assert "report" in result.output and "fwp ablate run SWEEP_DIR" in result.output


GENTLE_PLUGIN = '''
from fwp.rules import register_rule
from fwp.rules.hebbian import HebbianRule


class GentleRule(HebbianRule):
    """Hebbian, under another name: a rule that exists only through this plugin."""

    family = "gentle"


register_rule("ablate_gentle")(GentleRule)
'''


def test_plugins_are_stored_and_loaded_for_a_bare_rerun(tmp_path):
    from fwp.rules import unregister_rule

    plugin = tmp_path / "ablate_gentle_plugin.py"
    plugin.write_text(GENTLE_PLUGIN)
    path = tmp_path / "sweep"

    def forget_plugin():
        unregister_rule("ablate_gentle")
        sys.modules.pop("fwp_plugin_ablate_gentle_plugin", None)

    try:
        made = invoke(
            "--plugin",
            str(plugin),
            "ablate",
            str(path),
            "--rule",
            "ablate_gentle",
            *TINY_CLI_SHORT_RUN,
            "--in-process",
        )
        assert made.exit_code == 0, made.output
        assert read_sweep(path).spec.plugins == [str(plugin.resolve())]
        forget_plugin()  # as in a new process: only sweep.json knows the plugin
        listing = invoke("ablate", str(path), "--dry-run")
        assert listing.exit_code == 0, listing.output
        assert "ablate_gentle-seed0  ablate_gentle" in listing.output
        assert listing.output.count(" done\n") == 1
    finally:
        forget_plugin()
