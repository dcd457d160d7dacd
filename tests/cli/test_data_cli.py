"""Tests of the ``fwp data`` commands, invoked through click's test runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from fwp.cli.data_cmd import data
from fwp.gan.data import datasets


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    return CliRunner()


def test_list_shows_every_builtin(runner: CliRunner) -> None:
    result = runner.invoke(data, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "AVAILABLE", "DESCRIPTION"]
    emoji = next(line for line in lines if line.startswith("emoji "))
    assert emoji.split()[1] == "yes"
    assert any(line.startswith("textures:brick ") for line in lines)
    fashion = next(line for line in lines if line.startswith("fashion-mnist "))
    assert fashion.split()[1] in {"yes", "no"}
    if fashion.split()[1] == "no":
        assert "apt-get install dataset-fashion-mnist" in fashion


def test_show_a_folder_writes_a_png_and_prints_its_path(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (20, 30), (40 * i, 0, 0)).save(folder / f"{i}.png")
    out = tmp_path / "out" / "grid.png"
    result = runner.invoke(
        data, ["show", str(folder), "--size", "16x24", "--num", "4", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    with Image.open(out) as img:
        assert img.size == (2 * (24 + 2) + 2, 2 * (16 + 2) + 2)  # 4 samples: 2 x 2


def test_show_a_builtin_with_progress_on_stderr(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "emoji.png"
    args = ["show", "emoji", "--size", "16", "--num", "9", "--limit", "20", "--out", str(out)]
    result = runner.invoke(data, [*args, "--scale", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert "emoji" in result.stderr
    with Image.open(out) as img:
        assert img.size == (2 * (3 * 18 + 2), 2 * (3 * 18 + 2))


def test_show_default_output_name(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        data, ["show", "textures:brick", "--limit", "8", "--size", "8", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "textures-brick-8x8-samples.png"
    assert (tmp_path / "textures-brick-8x8-samples.png").is_file()


def test_show_errors_are_clean_messages(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(data, ["show", "no-such-dataset"])
    assert result.exit_code == 1
    assert "unknown dataset" in result.output and "emoji" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(data, ["show", "emoji", "--size", "12x"])
    assert result.exit_code == 2 and "HxW" in result.output


def test_show_a_misspelt_builtin_suggests_the_name(runner: CliRunner) -> None:
    result = runner.invoke(data, ["show", "emojis", "--quiet"])
    assert result.exit_code == 1
    assert "unknown dataset 'emojis' (did you mean 'emoji'?)" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_list_tells_how_to_install_fashion_mnist_as_root(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIRS", [tmp_path / "nothing-here"])
    result = runner.invoke(data, ["list"])
    assert result.exit_code == 0, result.output
    fashion = next(line for line in result.stdout.splitlines() if line.startswith("fashion-mnist"))
    assert fashion.split()[1] == "no"
    assert "[install: apt-get install dataset-fashion-mnist" in fashion and "as root" in fashion
