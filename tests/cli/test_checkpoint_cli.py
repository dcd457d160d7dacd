"""Every command that reads a checkpoint refuses unsafe and bad files with a one-line error and
never runs their code; `fwp checkpoint convert` is the explicit way to convert old ones."""

import sys

import pytest
import torch
from checkpoint_files import format_1_state, write_malicious_checkpoint
from click.testing import CliRunner
from fwp_test_utils import random_inception_weights, tiny_config

from fwp.cli.main import cli
from fwp.gan.checkpoint import load_checkpoint
from fwp.gan.rundir import RunDir
from fwp.gan.trainer import Trainer
from fwp.rules import unregister_rule


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _refused(result, *phrases: str) -> None:
    """A clean click error (exit status 1, no traceback): one last line "Error: ..." that
    contains ``phrases``."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    last = result.output.rstrip("\n").splitlines()[-1]
    assert last.startswith("Error: "), result.output
    for phrase in phrases:
        assert phrase in last, result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_emoji):
    run_dir = tmp_path_factory.mktemp("cli-trained") / "run"
    config = tiny_config(run__steps=2, run__checkpoint_every=2, run__sample_every=1000)
    Trainer(config, run_dir, images=tiny_emoji, progress=False).run()
    return run_dir


def test_paint_refuses_the_malicious_pickle_without_running_it(tmp_path):
    marker = tmp_path / "SOMEFILE"
    evil = write_malicious_checkpoint(tmp_path / "evil.pt", marker)
    result = invoke("paint", str(evil), "--num", "4", "--out", str(tmp_path / "out"))
    _refused(result, str(evil), "is not a safe checkpoint", "posix.system")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_fid_refuses_the_malicious_pickle_without_running_it(tmp_path):
    marker = tmp_path / "SOMEFILE"
    evil = write_malicious_checkpoint(tmp_path / "evil.pt", marker)
    weights = random_inception_weights(tmp_path / "inception.pth")
    result = invoke(
        "fid", str(evil), "--num", "8", "--inception-weights", str(weights), "--device", "cpu"
    )
    _refused(result, str(evil), "is not a safe checkpoint")
    assert not marker.exists()


def test_train_resume_refuses_the_malicious_pickle_without_running_it(tmp_path):
    marker = tmp_path / "SOMEFILE"
    run = RunDir(tmp_path / "run")
    run.write_config(tiny_config())
    run.checkpoint_dir.mkdir()
    write_malicious_checkpoint(run.last_checkpoint, marker)
    result = invoke("train", "--resume", str(run.path), "--quiet")
    _refused(result, str(run.last_checkpoint), "is not a safe checkpoint")
    assert not marker.exists()


def test_paint_explains_bad_files_and_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(invoke("paint", str(empty)), "is not a run directory")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    _refused(invoke("paint", str(text)), "is a text file, not a checkpoint")
    fpa = tmp_path / "fpa.pt"
    torch.save({"model_state_dict": {"w": torch.zeros(2)}, "epoch": 1}, fpa)
    _refused(invoke("paint", str(fpa)), "is not an fwp checkpoint")


def test_an_old_checkpoint_is_converted_only_on_request(tmp_path, trained):
    old = tmp_path / "old.pt"
    torch.save(format_1_state(load_checkpoint(trained / "checkpoints" / "last.pt")), old)
    _refused(
        invoke("paint", str(old), "--out", str(tmp_path / "out")),
        f"fwp checkpoint convert {old} --trust-checkpoint",
    )
    _refused(invoke("checkpoint", "convert", str(old)), "pass --trust-checkpoint")
    converted = invoke("checkpoint", "convert", str(old), "--trust-checkpoint")
    assert converted.exit_code == 0, converted.output
    assert f"converted {old} (step 2) to checkpoint format 2" in converted.output
    painted = invoke("paint", str(old), "--num", "2", "--strips", "1", "--out", str(tmp_path / "o"))
    assert painted.exit_code == 0, painted.output
    again = invoke("checkpoint", "convert", str(old))
    assert again.exit_code == 0 and "already in checkpoint format 2" in again.output


def test_convert_refuses_the_malicious_pickle_even_when_trusted(tmp_path):
    marker = tmp_path / "SOMEFILE"
    evil = write_malicious_checkpoint(tmp_path / "evil.pt", marker)
    result = invoke("checkpoint", "convert", str(evil), "--trust-checkpoint")
    _refused(result, "refusing to convert it, even with --trust-checkpoint")
    assert not marker.exists()


def test_a_plugin_rule_needs_its_plugin(tmp_path, trained):
    """A checkpoint names its rule; the code of the rule comes only from --plugin."""
    state = load_checkpoint(trained / "checkpoints" / "last.pt")
    state["config"]["painter"]["rule"] = "delta_from_test_plugin"
    path = tmp_path / "plugin-rule.pt"
    torch.save(state, path)
    plugin = tmp_path / "checkpoint_cli_rules.py"
    plugin.write_text(
        "from fwp.rules import DeltaRule, register_rule\n\n"
        "register_rule('delta_from_test_plugin')(DeltaRule)\n"
    )
    out = tmp_path / "out"
    _refused(
        invoke("paint", str(path), "--out", str(out)),
        "learning rule 'delta_from_test_plugin', which is not registered",
        "fwp --plugin FILE_OR_MODULE",
    )
    try:
        result = invoke(
            "--plugin", str(plugin), "paint", str(path), "--num", "2", "--strips", "1",
            "--out", str(out),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    finally:
        unregister_rule("delta_from_test_plugin")
        sys.modules.pop("fwp_plugin_checkpoint_cli_rules", None)


def test_train_resume_names_the_bad_entry_of_config_json(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config(tiny_config())
    text = run.config_file.read_text().replace('"hidden_size": 32', '"hidden_size": "32"')
    run.config_file.write_text(text)
    result = invoke("train", "--resume", str(run.path), "--quiet")
    _refused(result, str(run.config_file), "painter.hidden_size must be of type int")


def test_train_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[painter]\nsteps = 'many'\n")
    result = invoke("train", "--config", str(bad), "--dry-run")
    _refused(result, str(bad), "painter.steps must be an integer")
