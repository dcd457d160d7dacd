"""The command surface a newcomer meets: help that explains itself, plugins remembered by their
runs, resume and paint that say what to do."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from fwp_test_utils import TINY_CLI, TINY_CLI_SHORT_RUN

from fwp.cli.main import cli
from fwp.cli.options import MAIN_OPTIONS
from fwp.gan.config import option_table
from fwp.rules import unregister_rule


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def _help_of(*args: str) -> str:
    result = invoke(*args, "--help")
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # unwrap the formatter's line breaks


def test_every_option_has_a_meaning_and_its_choices_in_help():
    text = _help_of("train")
    for info in option_table():
        if not info.cli:
            continue
        section, name = info.dotted.split(".")
        flag = f"--{section}-{name.replace('_', '-')}"
        assert info.help, f"{info.dotted} has no meaning"
        assert flag in text, f"{flag} missing from fwp train --help"
        first_words = " ".join(info.help.split()[:4])
        assert first_words in text, f"the meaning of {info.dotted} is not shown"
        if info.choices:
            assert "[" + "|".join(info.choices) + "]" in text, f"choices of {info.dotted}"


def test_help_lists_main_options_first_then_sections():
    text = _help_of("train")
    main_at = text.index("Main options:")
    sections = [text.index(f"{title} options:") for title in ("Painter", "Objective", "Run")]
    assert main_at < min(sections)
    main_block = text[main_at : min(sections)]
    for flag in ("--preset", "--data", "--size", "--rule", "--steps", "--batch-size", "--seed"):
        assert flag in main_block
    assert "--resume" in main_block and len(MAIN_OPTIONS) <= 15


def test_help_shows_the_selected_presets_defaults():
    paper = _help_of("train")
    quick = _help_of("train", "--preset", "quick")
    assert re.search(r"--steps, --run-steps INT .*?\[default: 100000\]", paper)
    assert "[quick preset: 2500; paper: 100000]" in quick


def test_help_explains_size_and_the_off_augmentation():
    text = _help_of("train")
    assert "--size, --data-size N|HxW" in text and "48x64" in text
    augment = text[text.index("--objective-augment TEXT") :][:250]
    assert "off by default" in augment


def test_plugin_is_accepted_after_the_subcommand_and_recorded_in_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    plugin = tmp_path / "after_rule.py"
    plugin.write_text(
        "from fwp.rules import register_rule\n"
        "from fwp.rules.hebbian import HebbianRule\n"
        "register_rule('after_subcommand_hebb', decay=0.5, description='test')(HebbianRule)\n"
    )
    run = tmp_path / "run"
    try:
        result = invoke(
            "train",
            "--plugin",
            str(plugin),
            *TINY_CLI_SHORT_RUN,
            "--rule",
            "after_subcommand_hebb",
            "--run-dir",
            str(run),
        )
        assert result.exit_code == 0, result.output
        recorded = json.loads((run / "config.json").read_text())["run"]["plugins"]
        assert len(recorded) == 1 and recorded[0].startswith(str(plugin.resolve()) + "#sha256=")
    finally:
        unregister_rule("after_subcommand_hebb")
    # a fresh process does not know the rule: the run loads its recorded plugin and says so
    result = fresh_fwp("paint", str(run), "--num", "2", "--strips", "1", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert f"loading plugin {plugin.resolve()}" in result.stderr
    # a changed plugin file is not loaded; the error says how to load one by hand
    plugin.write_text(plugin.read_text() + "# changed\n")
    result = fresh_fwp("paint", str(run), "--num", "2", "--device", "cpu")
    assert result.returncode != 0
    assert "changed; not loading" in result.stderr and "--plugin" in result.stderr


def fresh_fwp(*args: str) -> subprocess.CompletedProcess:
    """``fwp ARGS`` in a new Python process (nothing registered by this test process)."""
    return subprocess.run(
        [sys.executable, "-m", "fwp.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_paint_explains_what_is_not_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("paint", str(empty))
    assert result.exit_code != 0 and "is not a run directory" in result.output
    assert "train longer" not in result.output
    sweep = tmp_path / "sweep"
    (sweep / "delta-seed0").mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}")
    (sweep / "delta-seed0" / "config.json").write_text("{}")
    result = invoke("paint", str(sweep))
    assert result.exit_code != 0 and "is a sweep directory" in result.output
    assert "delta-seed0" in result.output


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("first-hour")
    run = root / "run"
    result = CliRunner().invoke(
        cli, ["train", *TINY_CLI_SHORT_RUN, "--run-dir", str(run)], env={"FWP_CACHE": str(root)}
    )
    assert result.exit_code == 0, result.output
    return run


def test_paint_best_without_fid_says_why(finished_run):
    result = invoke("paint", str(finished_run), "--best", "--device", "cpu")
    assert result.exit_code != 0
    assert "--fid-every" in result.output and "train longer" not in result.output


def test_raw_paintings_do_not_replace_the_ema_paintings(finished_run):
    for extra in ((), ("--raw",)):
        result = invoke("paint", str(finished_run), "--num", "2", "--device", "cpu", *extra)
        assert result.exit_code == 0, result.output
    assert (finished_run / "paintings" / "seed-0" / "grid.png").is_file()
    assert (finished_run / "paintings" / "raw-seed-0" / "grid.png").is_file()


def test_resume_of_a_finished_run_says_how_to_extend_it(finished_run):
    result = invoke("train", "--resume", str(finished_run), "--quiet")
    assert result.exit_code == 0, result.output
    assert "is finished" in result.output and "--steps" in result.output


def test_resume_refuses_a_preset_and_allows_cosmetic_options(finished_run):
    result = invoke("train", "--resume", str(finished_run), "--preset", "paper")
    assert result.exit_code != 0 and "--preset" in result.output
    result = invoke("train", "--resume", str(finished_run), "--run-sample-every", "3", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["run"]["sample_every"] == 3
    result = invoke("train", "--resume", str(finished_run), "--painter-steps", "3", "--dry-run")
    assert result.exit_code != 0 and "cannot change painter.steps" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", 'objective.augment="translaton"'], "translaton"),
        (["--painter-rule-options", "{decay = 0.5}", "--rule", "delta"], "decay"),
    ],
)
def test_dry_run_validates_everything(args, message):
    result = invoke("train", *TINY_CLI, *args, "--dry-run")
    assert result.exit_code != 0 and message in result.output


def test_rule_options_take_the_toml_syntax_of_set():
    result = invoke(
        "train",
        *TINY_CLI,
        "--rule",
        "hebb_decay",
        "--painter-rule-options",
        "{decay = 0.5}",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["painter"]["rule_options"] == {"decay": 0.5}


def test_no_run_directory_is_made_when_the_data_is_bad(tmp_path):
    run = tmp_path / "run"
    result = invoke("train", *TINY_CLI, "--data", str(tmp_path / "missing"), "--run-dir", str(run))
    assert result.exit_code != 0
    assert not run.exists() and "run directory" not in result.output


def test_fid_and_paint_on_an_empty_folder_give_one_line_errors(tmp_path):
    for command in (("paint",), ("fid", "--num", "100")):
        result = invoke(*command[:1], str(tmp_path), *command[1:])
        assert result.exit_code != 0
        assert "Traceback" not in result.output and "not a run directory" in result.output


def test_samples_beside_a_raw_grid_during_training(finished_run):
    names = {p.name for p in (finished_run / "samples").iterdir()}
    assert "raw_0000004.png" in names and "samples_0000004.png" in names


def test_dry_run_refuses_a_missing_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = invoke("train", *TINY_CLI, "--device", "cuda", "--dry-run")
    assert result.exit_code != 0 and "CUDA" in result.output


def test_ablate_takes_plugin_after_the_subcommand(tmp_path):
    plugin = tmp_path / "ablate_after_rule.py"
    plugin.write_text(
        "from fwp.rules import register_rule\n"
        "from fwp.rules.hebbian import HebbianRule\n"
        "register_rule('ablate_after_hebb', decay=0.5, description='test')(HebbianRule)\n"
    )
    try:
        result = invoke(
            "ablate",
            str(tmp_path / "sweep"),
            "--plugin",
            str(plugin),
            "--rule",
            "ablate_after_hebb",
            *TINY_CLI_SHORT_RUN,
            "--dry-run",
        )
        assert result.exit_code == 0, result.output
        assert "ablate_after_hebb-seed0" in result.output
    finally:
        unregister_rule("ablate_after_hebb")
