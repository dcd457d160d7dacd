"""Loading a checkpoint never runs code: the one loader refuses pickled objects, says what is
wrong with every kind of bad file in one line, and keeps every state exactly."""

import copy
import os
import pickle
import random
import zipfile

import pytest
import torch
from checkpoint_files import (
    assert_same_state,
    draws,
    format_1_state,
    write_malicious_checkpoint,
)
from fwp_test_utils import tiny_config
from torch import nn

from fwp.gan.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    LEGACY_GLOBALS,
    CheckpointError,
    UnsafeCheckpointError,
    load_checkpoint,
    load_generator,
    save_checkpoint,
)
from fwp.gan.checkpoint_convert import convert_checkpoint
from fwp.gan.torchfile import UNRESOLVED, pickle_globals, read_archive
from fwp.gan.trainer import Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_emoji):
    """A tiny run trained for 2 steps (optimisers with state, EMA moved, RNG advanced)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    config = tiny_config(run__steps=2, run__checkpoint_every=2, run__sample_every=1000)
    Trainer(config, run_dir, images=tiny_emoji, progress=False).run()
    return run_dir


def _state(trained):
    return load_checkpoint(trained / "checkpoints" / "last.pt")


def _one_line_naming(err: BaseException, path) -> str:
    message = str(err)
    assert "\n" not in message and str(path) in message, message
    return message


# -- code in a pickle ----------------------------------------------------------------------------
def test_the_malicious_pickle_of_the_issue_never_runs(tmp_path):
    marker = tmp_path / "SOMEFILE"
    path = write_malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(UnsafeCheckpointError, match=r"would call posix\.system") as info:
        load_checkpoint(path)
    _one_line_naming(info.value, path)
    with pytest.raises(UnsafeCheckpointError, match=r"not a safe checkpoint"):
        load_generator(path)
    with pytest.raises(UnsafeCheckpointError, match="even with --trust-checkpoint"):
        convert_checkpoint(path, tmp_path / "converted.pt", trust_checkpoint=True)
    assert not marker.exists()
    assert not (tmp_path / "converted.pt").exists()
    # the file really runs its payload when unpickled, so the checks above mean something
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_protocol_4_pickle_names_its_callables_through_the_memo(tmp_path):
    marker = tmp_path / "SOMEFILE"
    path = tmp_path / "evil4.pt"
    from checkpoint_files import RunsCommand

    torch.save({"payload": RunsCommand(marker)}, path, pickle_protocol=4)
    assert "posix.system" in read_archive(path).globals
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_callable_named_indirectly_is_reported_as_unresolved():
    assert pickle_globals(pickle.dumps(os.system, protocol=4)) == {"posix.system"}
    # STACK_GLOBAL whose name is not a string pushed by the pickle itself
    obscured = b"\x80\x04\x8c\x05posix)\x93."
    assert pickle_globals(obscured) == {UNRESOLVED}


# -- bad files -----------------------------------------------------------------------------------
def _write_bytes(content: bytes):
    def write(path, state):
        path.write_bytes(content)

    return write


def _truncated(path, state):
    full = path.with_suffix(".full")
    torch.save(state, full)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _plain_pickle(path, state):
    path.write_bytes(pickle.dumps({"step": 1}))


def _legacy_torch(path, state):
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)


def _foreign_zip(path, state):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/hello.txt", "hello")


def _official_fpa(path, state):
    model = nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters())
    torch.save(
        {
            "epoch": 3,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
        },
        path,
    )


def _plain_state_dict(path, state):
    torch.save(nn.Linear(4, 2).state_dict(), path)


def _changed(change):
    def write(path, state):
        state = copy.deepcopy(state)
        change(state)
        torch.save(state, path)

    return write


def _set(dotted, value):
    def change(state):
        *parents, last = dotted.split(".")
        table = state
        for key in parents:
            table = table[key]
        table[last] = value

    return change


def _delete(dotted):
    def change(state):
        *parents, last = dotted.split(".")
        table = state
        for key in parents:
            table = table[key]
        del table[last]

    return change


BAD_FILES = {
    "random bytes": (
        _write_bytes(bytes([0, 255]) + random.Random(0).randbytes(998)),
        r"is not a checkpoint \(its 1000 bytes are not a torch zip archive\)",
    ),
    "text file": (_write_bytes(b"step,loss\n1,0.5\n"), r"is a text file, not a checkpoint"),
    "zero bytes": (_write_bytes(b""), r"is empty \(0 bytes\)"),
    "truncated": (_truncated, r"is truncated or damaged"),
    "pickle": (_plain_pickle, r"is a pickle or a legacy \(pre-zip\) torch file"),
    "legacy torch": (_legacy_torch, r"is a pickle or a legacy \(pre-zip\) torch file"),
    "foreign zip": (_foreign_zip, r"is a zip archive but not a torch file"),
    "official FPA": (
        _official_fpa,
        r"is not an fwp checkpoint: it holds a table of epoch, model_state_dict, "
        r"optimizer_state_dict \(a checkpoint of another tool\?\)",
    ),
    "plain state dict": (
        _plain_state_dict,
        r"is not an fwp checkpoint: it holds a plain state dict of 2 tensors",
    ),
    "newer format": (
        _changed(_set("version", CHECKPOINT_VERSION + 1)),
        rf"written by a newer fwp \(checkpoint format {CHECKPOINT_VERSION + 1}; this fwp reads "
        rf"format {CHECKPOINT_VERSION}\): upgrade fwp",
    ),
    "other marker": (
        _changed(_set("format", "other-tool")),
        r"is not an fwp checkpoint: its format marker is 'other-tool', not 'fwp-checkpoint'",
    ),
    "format 1 without numpy objects": (
        _changed(lambda state: state.pop("format")),
        r"is an fwp checkpoint of format 1, before the format marker; convert it once: "
        r"fwp checkpoint convert",
    ),
    "unregistered rule": (
        _changed(_set("config.painter.rule", "my_plugin_rule")),
        r"was trained with the learning rule 'my_plugin_rule', which is not registered; load the "
        r"code that defines it: fwp --plugin FILE_OR_MODULE",
    ),
    "format 1": (
        _changed(lambda state: state.update(format_1_state(state)) or state.pop("format")),
        r"holds pickled numpy objects, as checkpoints of fwp before format 2 do.*"
        r"fwp checkpoint convert \S+ --trust-checkpoint \(converting unpickles it",
    ),
    "missing entry": (_changed(_delete("rng")), r"is damaged: it lacks the entry 'rng'"),
    "wrong entry type": (
        _changed(_set("step", "12")),
        r"is damaged: its entry 'step' must be int; got str",
    ),
    "bad rng state": (
        _changed(_set("rng.numpy.key", [1, 2, 3])),
        r"is damaged: rng\.numpy\.key must be a list of 624 integers",
    ),
    "bad data position": (
        _changed(_delete("data.position")),
        r"is damaged: data\.position must be an integer",
    ),
    "config of the wrong type": (
        _changed(_set("config.painter.steps", "6")),
        r"\(its configuration\): painter\.steps must be of type int; got '6'",
    ),
    "config with an unknown option": (
        _changed(_set("config.optim.colour", 3)),
        r"\(its configuration\): unknown option optim\.colour",
    ),
    "invalid config": (
        _changed(_set("config.data.channels", 2)),
        r"its configuration is invalid \(data\.channels must be 1 or 3",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_each_bad_file_gets_its_one_line_message(case, tmp_path, trained):
    write, message = BAD_FILES[case]
    path = tmp_path / "bad.pt"
    write(path, _state(trained))
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    _one_line_naming(info.value, path)
    with pytest.raises(CheckpointError, match=message):
        load_generator(path)


def test_weights_that_do_not_fit_the_configuration(tmp_path, trained):
    state = _state(trained)
    name = next(iter(state["ema"]))
    state["ema"][name] = torch.zeros(1)
    path = tmp_path / "misfit.pt"
    torch.save(state, path)
    load_checkpoint(path)  # the file itself is well-formed
    with pytest.raises(CheckpointError, match=r"generator weights do not fit its configuration"):
        load_generator(path)


def test_folders_that_are_not_runs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"is not a run directory"):
        load_generator(empty)
    with pytest.raises(CheckpointError, match=r"is a folder, not a checkpoint file"):
        load_checkpoint(empty)
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_old_torch_gets_a_warning(tmp_path, trained, monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    with pytest.warns(RuntimeWarning, match=r"CVE-2025-32434.*upgrade torch to 2\.10"):
        load_checkpoint(trained / "checkpoints" / "last.pt")


# -- the format ----------------------------------------------------------------------------------
def test_a_checkpoint_is_plain_data_with_its_marker(trained):
    path = trained / "checkpoints" / "last.pt"
    assert read_archive(path).globals <= {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch.FloatStorage",
        "torch.ByteStorage",
        "torch.LongStorage",
    }
    state = torch.load(path, weights_only=True)  # torch's restricted loader reads it as it is
    assert state["format"] == CHECKPOINT_FORMAT and state["version"] == CHECKPOINT_VERSION
    assert state["step"] == 2
    assert set(state["rng"]["numpy"]) == {
        "bit_generator",
        "key",
        "pos",
        "has_gauss",
        "cached_gaussian",
    }


def test_round_trip_keeps_every_state_exactly(tmp_path, tiny_emoji):
    config = tiny_config(run__steps=2, run__checkpoint_every=2, run__sample_every=1000)
    first = Trainer(config, tmp_path / "run", images=tiny_emoji, progress=False)
    first.run()
    expected = first.state_dict()  # nothing has changed since the final checkpoint
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert_same_state(
        {**expected, "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}, saved
    )
    expected_draws = draws()
    expected_batch = first.stream.next_batch()

    second = Trainer(config, tmp_path / "run", images=tiny_emoji, progress=False)
    assert second.step == 2 and second.elapsed == expected["elapsed"]
    assert_same_state(expected["objective"], second.objective.state_dict(), "objective")
    assert_same_state(expected["ema"], second.ema.state_dict(), "ema")
    assert second.stream.state_dict() == expected["data"]
    assert draws() == expected_draws  # torch, numpy and python random continue identically
    assert torch.equal(second.stream.next_batch(), expected_batch)


def test_writing_refuses_what_the_loader_would_refuse(tmp_path, trained):
    import numpy as np

    state = {k: v for k, v in _state(trained).items() if k not in ("format", "version")}
    path = tmp_path / "out.pt"
    with pytest.raises(CheckpointError, match=r"refusing to write .*best_fid holds a numpy"):
        save_checkpoint({**state, "best_fid": np.float64(1.0)}, path)
    with pytest.raises(CheckpointError, match=r"data\.extra holds a builtins\.object"):
        save_checkpoint({**state, "data": {**state["data"], "extra": object()}}, path)
    with pytest.raises(CheckpointError, match=r"lacks the entry 'ema'"):
        save_checkpoint({k: v for k, v in state.items() if k != "ema"}, path)
    assert not path.exists()
    save_checkpoint(state, path)
    assert_same_state(_state(trained), load_checkpoint(path))


# -- converting checkpoints of fwp before format 2 ------------------------------------------------
def test_format_1_is_refused_then_converted_exactly_with_trust(tmp_path, trained):
    state = _state(trained)
    old = tmp_path / "old.pt"
    torch.save(format_1_state(state, best_fid=12.5), old)
    unsafe = read_archive(old).globals - {"collections.OrderedDict"}
    assert "numpy._core.multiarray._reconstruct" in unsafe or (
        "numpy.core.multiarray._reconstruct" in unsafe
    )
    assert {g for g in unsafe if not g.startswith("torch")} <= LEGACY_GLOBALS
    with pytest.raises(UnsafeCheckpointError, match=r"--trust-checkpoint"):
        load_checkpoint(old)
    with pytest.raises(UnsafeCheckpointError, match=r"unpickles it, which runs any code"):
        convert_checkpoint(old, tmp_path / "new.pt")
    assert not (tmp_path / "new.pt").exists()

    [result] = convert_checkpoint(old, tmp_path / "new.pt", trust_checkpoint=True)
    assert result.converted and result.step == state["step"]
    new = load_checkpoint(tmp_path / "new.pt")
    assert type(new["best_fid"]) is float
    assert_same_state({**state, "best_fid": 12.5}, new)

    [again] = convert_checkpoint(tmp_path / "new.pt")  # current files need no trust
    assert not again.converted


def test_a_run_directory_is_converted_in_place(tmp_path, trained):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    last = run / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    torch.save(format_1_state(state), last)
    [result] = convert_checkpoint(run, trust_checkpoint=True)
    assert result.converted and result.destination == last
    generator, config = load_generator(run)
    assert config.data.size == [16, 16] and generator.sample(2).shape == (2, 3, 16, 16)
    assert_same_state(state, load_checkpoint(last))
