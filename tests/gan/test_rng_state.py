"""Every global random number generator's state is plain data that survives a weights-only
save and load and restores the same draws."""

import random

import numpy as np
import pytest
import torch
from checkpoint_files import draws

from fwp.gan.runtime import plain_rng_state, rng_state, seed_everything, set_rng_state


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def test_rng_state_is_plain_and_restores_every_generator(tmp_path):
    seed_everything(5)
    np.random.standard_normal()  # numpy caches the second Gaussian: has_gauss = 1
    random.gauss(0.0, 1.0)  # python too: gauss_next is set
    state = rng_state()
    assert state["numpy"]["has_gauss"] == 1 and state["python"]["gauss_next"] is not None
    assert {type(leaf) for leaf in _leaves(state)} <= {torch.Tensor, int, float, str}
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    expected = (*draws(), np.random.standard_normal(), random.gauss(0.0, 1.0))

    seed_everything(6)  # move every generator elsewhere
    set_rng_state(torch.load(path, weights_only=True))
    assert (*draws(), np.random.standard_normal(), random.gauss(0.0, 1.0)) == expected


def test_legacy_states_become_the_plain_form():
    seed_everything(7)
    legacy = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    plain = plain_rng_state(legacy)
    current = rng_state()
    assert plain["numpy"] == current["numpy"] and plain["python"] == current["python"]
    assert plain_rng_state(plain) == plain


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("numpy"), r"rng lacks the state of numpy"),
        (lambda s: s.update(torch=torch.zeros(3)), r"rng\.torch must be a 1-D uint8 tensor"),
        (lambda s: s["numpy"].update(bit_generator="PCG64"), r"bit_generator must be 'MT19937'"),
        (lambda s: s["numpy"].update(pos=700), r"rng\.numpy\.pos must be an integer in \[0, 624\]"),
        (lambda s: s["numpy"]["key"].__setitem__(0, -1), r"rng\.numpy\.key must be a list"),
        (lambda s: s["python"].update(internal=[1, 2]), r"rng\.python\.internal must be a list"),
        (lambda s: s["python"].update(gauss_next="x"), r"gauss_next must be a float or None"),
        (lambda s: s.update(cuda=torch.zeros(3)), r"rng\.cuda must be a list"),
    ],
)
def test_malformed_states_are_refused_by_name(change, message):
    state = rng_state()
    change(state)
    with pytest.raises(ValueError, match=message):
        set_rng_state(state)
