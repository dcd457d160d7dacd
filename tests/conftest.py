"""Session fixtures shared by all test folders."""

from __future__ import annotations

import pytest
import torch

from fwp.gan.data import load_images

# The tests run many tiny tensor operations, for which one thread is faster than several and
# results do not depend on how many cores the machine has.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_emoji() -> torch.Tensor:
    """64 real emoji at 16x16, uint8 (64, 3, 16, 16)."""
    return load_images("emoji", (16, 16), 3, limit=64, progress=False)
