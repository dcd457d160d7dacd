"""A run's config.json and a --config TOML/JSON file are data: every defect is a ConfigError that
names the file and the section or option."""

import json

import pytest
from fwp_test_utils import tiny_config

from fwp.gan.config import ConfigError, TrainConfig, load_config_file
from fwp.gan.rundir import RunDir


@pytest.fixture
def run(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config(tiny_config())
    return run


def _edit(run: RunDir, change) -> None:
    values = json.loads(run.config_file.read_text())
    change(values)
    run.config_file.write_text(json.dumps(values))


def test_config_json_round_trip(run):
    assert run.read_config() == tiny_config()


CONFIG_JSON_DEFECTS = {
    "unknown section": (lambda v: v.update(extra={}), r"unknown section 'extra'"),
    "section not a table": (lambda v: v.update(run=3), r"section 'run' must be a table"),
    "unknown option": (
        lambda v: v["painter"].update(colour="red"),
        r"unknown option painter\.colour; options of 'painter': ",
    ),
    "string for an integer": (
        lambda v: v["painter"].update(steps="6"),
        r"painter\.steps must be of type int; got '6'",
    ),
    "integer for a boolean": (
        lambda v: v["run"].update(tensorboard=1),
        r"run\.tensorboard must be of type bool; got 1",
    ),
    "boolean for an integer": (
        lambda v: v["optim"].update(batch_size=True),
        r"optim\.batch_size must be of type int; got True",
    ),
    "string for a number": (
        lambda v: v["optim"].update(lr_generator="fast"),
        r"optim\.lr_generator must be of type float; got 'fast'",
    ),
    "string for a size": (
        lambda v: v["data"].update(size="16x16"),
        r"data\.size must be of type list; got '16x16'",
    ),
    "bad size": (lambda v: v["data"].update(size=[0, 16]), r"data\.size: expected a size"),
    "preset not a string": (lambda v: v.update(preset=3), r"preset must be a string"),
}


def test_options_newer_than_the_run_take_their_defaults(run):
    """A run saved before an option (or a whole section) existed loads with its default."""
    _edit(run, lambda v: (v["painter"].pop("steps"), v.pop("refiner")))
    config = run.read_config()
    assert config.painter.steps == TrainConfig().painter.steps
    assert config.refiner == TrainConfig().refiner
    assert config.optim == tiny_config().optim  # what the file holds is kept


@pytest.mark.parametrize("case", list(CONFIG_JSON_DEFECTS))
def test_config_json_defects_name_the_file_and_key(case, run):
    change, message = CONFIG_JSON_DEFECTS[case]
    _edit(run, change)
    with pytest.raises(ConfigError, match=message) as info:
        run.read_config()
    assert str(run.config_file) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"data": ', r"is not readable JSON \(Expecting value: line 1"),
        (b"\xff\xfe\x00", r"is not readable JSON"),
        (b"[1, 2]", r"must hold a table of configuration sections; got list"),
    ],
)
def test_unreadable_config_json(run, content, message):
    run.config_file.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        run.read_config()
    assert str(run.config_file) in str(info.value)


def test_a_folder_without_config_json_is_not_a_run(tmp_path):
    with pytest.raises(ConfigError, match=r"is not a run directory \(it has no config\.json\)"):
        RunDir(tmp_path).read_config()


CONFIG_FILE_DEFECTS = {
    "bad TOML": ("c.toml", b"[painter\nsteps = 3\n", r"cannot parse .*line 1"),
    "bad JSON": ("c.json", b'{"painter": {"steps": }}', r"cannot parse .*line 1"),
    "not UTF-8": ("c.toml", b"[painter]\nrule = '\xff'\n", r"cannot parse"),
    "JSON list": ("c.json", b"[1, 2]", r"must hold \[section\] tables of options; got list"),
    "option outside a table": ("c.toml", b"steps = 3\n", r"\[steps\] must be a table of options"),
    "unknown section": ("c.toml", b"[paint]\nsteps = 3\n", r"unknown option 'paint\.steps'"),
    "unknown option": ("c.toml", b"[painter]\nstep = 3\n", r"unknown option 'painter\.step'"),
    "wrong type": ("c.toml", b"[painter]\nsteps = 'many'\n", r"painter\.steps must be an integer"),
}


@pytest.mark.parametrize("case", list(CONFIG_FILE_DEFECTS))
def test_config_file_defects_name_the_file(case, tmp_path):
    name, content, message = CONFIG_FILE_DEFECTS[case]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_config_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_good_config_file_is_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("preset = 'quick'\n[painter]\nsteps = 8\nrule_options = {}\n")
    assert load_config_file(path) == {
        "preset": "quick",
        "painter": {"steps": 8, "rule_options": {}},
    }
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_config_file(tmp_path / "missing.toml")
