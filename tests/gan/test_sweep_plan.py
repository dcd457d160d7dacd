"""fwp.gan.sweep without training: the stored sweep (sweep.json), what a request changes in it,
and unusable sweep.json / cell.json files."""

import json

import pytest
from fwp_test_utils import tiny_sweep_request as request

from fwp.gan.config import ConfigError
from fwp.gan.sweep import (
    SweepFileError,
    SweepRequest,
    plan_sweep,
    read_state,
    read_sweep,
    run_sweep,
)
from fwp.gan.sweep.runner import record_sweep
from fwp.gan.sweep.state import new_state, write_state


@pytest.fixture
def stored(tmp_path):
    """A recorded (not trained) sweep of delta and oja (a pattern) x seeds 0, 1."""
    plan = plan_sweep(tmp_path, request(rules=["delta", "oj?"], seeds=[0, 1]))
    record_sweep(plan)
    return tmp_path


def test_sweep_json_holds_the_whole_sweep_explicitly(stored):
    values = json.loads((stored / "sweep.json").read_text())
    assert values["version"] == 2 and values["preset"] == "quick"
    assert values["rules"] == ["delta", "oja"]  # patterns resolved when stored
    assert values["seeds"] == [0, 1]
    assert values["budget"] == {"run.steps": 6, "run.minutes": 0.0}
    assert values["fid"] == {"run.fid_every": 0, "run.fid_num": 1000}  # from the preset
    assert values["options"]["data.limit"] == 64 and "run.steps" not in values["options"]
    assert values["cells"] == ["delta-seed0", "delta-seed1", "oja-seed0", "oja-seed1"]
    loaded = read_sweep(stored)
    assert loaded.spec.options["run.steps"] == 6 and loaded.cells == values["cells"]


def test_a_bare_request_plans_exactly_the_stored_sweep(stored):
    plan = plan_sweep(stored, SweepRequest())
    assert plan.changes == [] and not plan.is_new
    assert [c.name for c in plan.cells] == read_sweep(stored).cells
    assert plan.cells[0].config.run.steps == 6 and plan.cells[0].config.data.limit == 64
    # the original request again, and with options left out: no change either
    assert plan_sweep(stored, request(rules=["delta", "oj?"], seeds=[0, 1])).changes == []
    assert plan_sweep(stored, SweepRequest(options={"run.fid_num": 1000})).changes == []


def test_what_a_request_changes_is_listed_and_needs_change(stored):
    longer = plan_sweep(stored, SweepRequest(options={"run.steps": 8}))
    assert longer.changes == ["run.steps: 6 -> 8"]
    with pytest.raises(ConfigError, match=r"(?s)run.steps: 6 -> 8.*--change"):
        run_sweep(longer, progress=False)
    assert read_sweep(stored).spec.options["run.steps"] == 6  # refused before writing anything
    grid = plan_sweep(stored, SweepRequest(rules=["delta", "hebb"], seeds=[0]))
    assert grid.changes == [
        "new cells: hebb-seed0",
        "cells left out of the sweep (their folders stay): delta-seed1, oja-seed0, oja-seed1",
    ]
    some = plan_sweep(stored, SweepRequest(axes=[("optim.batch_size", [8, 4])]))
    assert "optim.batch_size: 8 -> 4" not in some.changes  # the cells have new names instead
    assert some.changes[0].startswith("new cells: delta-optim.batch_size=8-seed0")


def test_the_configuration_file_is_stored_not_read_again(tmp_path):
    config_file = tmp_path / "base.toml"
    config_file.write_text("[optim]\nema_decay = 0.9\n")
    sweep_dir = tmp_path / "sweep"
    record_sweep(plan_sweep(sweep_dir, request(config_file=str(config_file))))
    stored = json.loads((sweep_dir / "sweep.json").read_text())
    assert stored["config"] == {"optim": {"ema_decay": 0.9}}
    assert stored["config_file"] == str(config_file.resolve())
    config_file.write_text("[optim]\nema_decay = 0.8\n")  # edited after the sweep was made
    bare = plan_sweep(sweep_dir, SweepRequest())
    assert bare.changes == [] and bare.cells[0].config.optim.ema_decay == 0.9
    again = plan_sweep(sweep_dir, SweepRequest(config_file=str(config_file)))
    assert again.changes == ["optim.ema_decay: 0.9 -> 0.8"]


def test_a_new_directory_needs_a_sweep(tmp_path):
    with pytest.raises(ConfigError, match="holds no sweep"):
        plan_sweep(tmp_path / "typo", SweepRequest())
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda v: "{not json", "not valid JSON"),
        (lambda v: "[1, 2]", "must hold a JSON object, not list"),
        (lambda v: {k: x for k, x in v.items() if k != "rules"}, "the key 'rules'"),
        (lambda v: {**v, "seeds": "0,1"}, "'seeds' must be a list of integer seeds"),
        (lambda v: {**v, "budget": {"run.steps": 6, "steps": 8}}, "'budget' holds ['steps']"),
        (lambda v: {**v, "axes": [["painter.steps", [4]]]}, "'axes' must be a list of"),
        (lambda v: {"version": 1, "cells": []}, "written by an older fwp"),
    ],
)
def test_unusable_sweep_json_is_a_named_error(stored, corrupt, message):
    path = stored / "sweep.json"
    values = corrupt(json.loads(path.read_text()))
    path.write_text(values if isinstance(values, str) else json.dumps(values))
    with pytest.raises(SweepFileError) as caught:
        plan_sweep(stored, SweepRequest())
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda v: '{"name": ', "not valid JSON"),
        (lambda v: {k: x for k, x in v.items() if k != "status"}, "the key 'status'"),
        (
            lambda v: {**v, "status": "finished"},
            "'status' must be one of done, running, queued, failed, interrupted, pending",
        ),
        (lambda v: {**v, "seed": "zero"}, "'seed' must be an integer"),
        (lambda v: {**v, "error": {"type": "X"}}, "the key 'message'"),
        (lambda v: {**v, "command": "python"}, "'command' must be a list of strings"),
    ],
)
def test_unusable_cell_json_is_a_named_error(tmp_path, corrupt, message):
    plan = plan_sweep(tmp_path, request())
    (cell,) = plan.cells
    write_state(cell.run_dir, new_state(cell))
    path = cell.run_dir / "cell.json"
    values = corrupt(json.loads(path.read_text()))
    path.write_text(values if isinstance(values, str) else json.dumps(values))
    with pytest.raises(SweepFileError) as caught:
        read_state(cell.run_dir)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_rule_entry_with_options_gives_them_to_its_cells_only(tmp_path):
    """``NAME{TABLE}`` sets painter.rule_options for that rule's cells; the other rules keep
    their own (here: none), the entry is stored in canonical form and names its cells."""
    plan = plan_sweep(
        tmp_path, request(rules=["delta", "oja{ bounded_rate=true }", "hebb_sum"], seeds=[0])
    )
    by_name = {cell.name: cell for cell in plan.cells}
    assert list(by_name) == ["delta-seed0", "oja-bounded_rate=true-seed0", "hebb_sum-seed0"]
    oja = by_name["oja-bounded_rate=true-seed0"]
    assert oja.config.painter.rule == "oja"
    assert oja.config.painter.rule_options == {"bounded_rate": True}
    assert oja.rule == "oja{bounded_rate = true}"
    assert by_name["hebb_sum-seed0"].config.painter.rule_options == {}
    record_sweep(plan)
    stored_rules = json.loads((tmp_path / "sweep.json").read_text())["rules"]
    assert stored_rules == ["delta", "oja{bounded_rate = true}", "hebb_sum"]
    assert plan_sweep(tmp_path, SweepRequest()).changes == []  # read back as it was stored
    again = plan_sweep(tmp_path, request(rules=["delta", "oja{bounded_rate = true}", "hebb_sum"]))
    assert again.changes == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "oja{bounded = true}",
            r"rule 'oja' has no option 'bounded' \(did you mean 'bounded_rate'",
        ),
        ("oja{bounded_rate = }", r"must be a TOML inline table such as oja\{bounded_rate = true\}"),
        ("oj?{bounded_rate = true}", "options go with one rule name, not a pattern"),
        ("hebb_sum{bounded_rate = true}", "rule 'hebb_sum' has no option 'bounded_rate'"),
    ],
)
def test_a_bad_rule_entry_is_refused_before_anything_is_written(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message):
        plan_sweep(tmp_path / "sweep", request(rules=["delta", entry]))
    assert not (tmp_path / "sweep").exists()


def test_rule_options_given_twice_are_refused(tmp_path):
    axes = [("painter.rule_options", ["{}", "{bounded_rate = true}"])]
    with pytest.raises(ConfigError, match="give the options in one place"):
        plan_sweep(tmp_path, request(rules=["oja{bounded_rate = true}"], axes=axes))
