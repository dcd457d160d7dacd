"""The paper's other generators on the command line: --generator conv, the refinement stage
(--init-from RUN --refiner) with its paintings, and both in fwp ablate."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner
from fwp_test_utils import TINY_CLI, TINY_CLI_SHORT_RUN

from fwp.cli.main import cli

STAGE_TWO = ["--refiner", "--refiner-depth", "1", "--refiner-base-channels", "4"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_help_offers_the_generators_and_the_stage():
    text = " ".join(invoke("train", "--help").output.split())
    assert "--generator, --generator-kind [painter|conv]" in text
    assert "--init-from, --generator-init-from TEXT" in text
    assert "--discriminator-architecture [fwp|official]" in text
    assert "--objective-intermediate-images INT" in text


def test_conv_dry_run_resolves_the_conv_options():
    result = invoke("train", *TINY_CLI, "--generator", "conv", "--dry-run")
    assert result.exit_code == 0, result.output
    config = json.loads(result.output)
    assert config["generator"]["kind"] == "conv" and config["generator"]["latent_dim"] == 64
    refused = invoke("train", *TINY_CLI, "--generator", "conv", "--refiner", "--dry-run")
    assert refused.exit_code != 0 and "takes no refiner" in refused.output


def test_refinement_stage_from_a_painter_run_then_paint(tmp_path, monkeypatch):
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    first, second = tmp_path / "painter", tmp_path / "refined"
    result = invoke("train", *TINY_CLI_SHORT_RUN, "--run-dir", str(first))
    assert result.exit_code == 0, result.output

    differing = invoke(
        "train", *TINY_CLI, *STAGE_TWO, "--init-from", str(first), "--painter-steps", "4",
        "--dry-run",
    )  # fmt: skip
    assert differing.exit_code != 0 and "painter.steps 6 there, 4 here" in differing.output

    result = invoke(
        "train", *TINY_CLI_SHORT_RUN, *STAGE_TWO, "--init-from", str(first),
        "--run-dir", str(second),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((second / "config.json").read_text())["generator"]["init_from"] == str(first)

    out = tmp_path / "paintings"
    result = invoke("paint", str(second), "--out", str(out), "--num", "4", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "painter_grid.png" in result.output
    assert (out / "grid.png").is_file() and (out / "painter_grid.png").is_file()


def test_ablate_sweeps_the_generator_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "sweep"
    args = ["ablate", str(path), "--set", "generator.kind=painter,conv", *TINY_CLI_SHORT_RUN]
    listing = invoke(*args, "--dry-run")
    assert listing.exit_code == 0, listing.output
    assert "generator.kind=painter" in listing.output and "generator.kind=conv" in listing.output
    result = invoke(*args, "--in-process")
    assert result.exit_code == 0, result.output
    with (path / "results.csv").open(newline="") as handle:
        cells = {r["options"]: r for r in csv.DictReader(handle) if r["row"] == "cell"}
    assert {r["status"] for r in cells.values()} == {"done"}
    conv, painter = cells["generator.kind=conv"], cells["generator.kind=painter"]
    assert int(conv["parameters"]) > int(painter["parameters"])  # two different networks
    kinds = {
        json.loads((cell / "config.json").read_text())["generator"]["kind"]
        for cell in path.iterdir()
        if (cell / "config.json").is_file()
    }
    assert kinds == {"painter", "conv"}
