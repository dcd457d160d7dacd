import json

import pytest
from click.testing import CliRunner
from fwp_test_utils import TINY_CLI, TINY_CLI_SHORT_RUN, random_inception_weights
from PIL import Image

from fwp.cli.main import cli
from fwp.gan.checkpoint import load_generator


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_train_then_paint_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    result = invoke("train", *TINY_CLI_SHORT_RUN, "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    assert "finished at step 4" in result.output
    config = json.loads((run_dir / "config.json").read_text())
    assert config["painter"]["rule"] == "delta" and config["data"]["size"] == [16, 16]
    generator, _ = load_generator(run_dir)
    assert generator.sample(2).shape == (2, 3, 16, 16)
    assert Image.open(run_dir / "samples" / "samples_0000004.png").size[0] > 16

    out = tmp_path / "paintings"
    result = invoke(
        "paint", str(run_dir), "--out", str(out), "--num", "5", "--strips", "2", "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i:05d}.png" for i in range(5)]
    gif = Image.open(out / "painting.gif")
    assert gif.n_frames == 6  # one frame per painting step
    assert Image.open(out / "strip.png").size[1] > Image.open(out / "images" / "00000.png").size[1]
    assert (out / "grid.png").is_file()

    # FID of the run's EMA painter against its (cached) training data
    weights = random_inception_weights(tmp_path / "inception.pth")
    scores = invoke(
        "fid",
        str(run_dir),
        "--num",
        "8",
        "--inception-weights",
        str(weights),
        "--fid-method",
        "eigh",
        "--device",
        "cpu",
        "--json",
        "--quiet",
    )
    assert scores.exit_code == 0, scores.output
    result = json.loads(scores.output.strip().splitlines()[-1])
    assert result["num_fake"] == 8 and result["num_real"] == 64 and result["fid"] >= 0

    # resuming extends the run; changing the architecture on resume is refused
    result = invoke("train", "--resume", str(run_dir), "--steps", "6", "--quiet")
    assert result.exit_code == 0 and "finished at step 6" in result.output
    refused = CliRunner().invoke(cli, ["train", "--resume", str(run_dir), "--rule", "hebb"])
    assert refused.exit_code != 0 and "cannot change painter.rule when resuming" in refused.output
    again = CliRunner().invoke(cli, ["train", *TINY_CLI, "--run-dir", str(run_dir)])
    assert again.exit_code != 0 and "--resume" in again.output


def test_dry_run_prints_the_resolved_configuration(tmp_path):
    config_file = tmp_path / "ablation.toml"
    config_file.write_text('[painter]\nrule = "oja"\nsteps = 8\n[optim]\nbatch_size = 4\n')
    result = invoke(
        "train",
        "--preset",
        "quick",
        "--config",
        str(config_file),
        "--batch-size",
        "6",
        "--set",
        "painter.rule_options={activate_after_correction=true}",
        "--dry-run",
    )
    resolved = json.loads(result.output)
    assert resolved["painter"]["rule"] == "oja"
    assert resolved["painter"]["steps"] == 8
    assert resolved["optim"]["batch_size"] == 6  # the command line beats the file
    assert resolved["painter"]["rule_options"] == {"activate_after_correction": True}
    assert resolved["data"]["size"] == [32, 32]  # from the quick preset


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "48"], "power of two"),
        (["--rule", "deltta"], "Did you mean: delta"),
        (["--batch-size", "0"], "optim.batch_size must be a positive integer"),
        (["--set", "painter.colour=3"], "unknown option 'painter.colour'"),
        (["--set", "optim.batch_size=many"], "optim.batch_size must be an integer"),
        (
            ["--set", 'objective.penalty="r2"'],
            "objective.penalty must be one of one-centred, r1; got 'r2'",
        ),
        (["--refiner", "--size", "16", "--refiner-depth", "5"], "refiner.depth"),
        (["--data", "no-such-dataset-or-folder"], "unknown dataset 'no-such-dataset-or-folder'"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, args, message):
    result = CliRunner().invoke(
        cli,
        ["train", "--preset", "quick", *args, "--run-dir", str(tmp_path / "run"), "--steps", "1"],
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_rules_lists_every_rule_with_its_origin():
    result = invoke("rules")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "family", "description", "fast", "path", "origin"]
    assert any(line.startswith("delta ") and "built-in" in line for line in lines)
    assert "oja_official" in result.output
    assert "hebb" not in invoke("rules", "delta*").output


def test_plugin_file_registers_a_rule_for_the_command(tmp_path):
    plugin = tmp_path / "my_rule.py"
    plugin.write_text(
        "from fwp.rules import register_rule\n"
        "from fwp.rules.hebbian import HebbianRule\n"
        "register_rule('cli_plugin_hebb', decay=0.5, description='plugin test')(HebbianRule)\n"
    )
    try:
        result = invoke("--plugin", str(plugin), "rules", "cli_plugin*")
        assert "cli_plugin_hebb" in result.output and "module my_rule.py" in result.output
        dry = invoke("--plugin", str(plugin), "train", "--rule", "cli_plugin_hebb", "--dry-run")
        assert json.loads(dry.output)["painter"]["rule"] == "cli_plugin_hebb"
    finally:
        from fwp.rules import unregister_rule

        unregister_rule("cli_plugin_hebb")
    missing = CliRunner().invoke(cli, ["--plugin", str(tmp_path / "nope.py"), "rules"])
    assert missing.exit_code != 0 and "does not exist" in missing.output
