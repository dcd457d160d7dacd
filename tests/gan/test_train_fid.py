import csv
import math

import torch
from fwp_test_utils import random_inception_weights, tiny_config

from fwp.gan.checkpoint import load_checkpoint
from fwp.gan.metrics import FID_WEIGHTS_ENV
from fwp.gan.trainer import Trainer


def test_fid_during_training_is_logged_and_keeps_the_best_checkpoint(
    tmp_path, tiny_emoji, monkeypatch
):
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(random_inception_weights(tmp_path / "inception.pth")))
    config = tiny_config(run__steps=4, run__fid_every=2, run__fid_num=12, data__limit=24)
    trainer = Trainer(config, tmp_path / "run", images=tiny_emoji[:24], progress=False)
    result = trainer.run()

    with (tmp_path / "run" / "metrics.csv").open() as handle:
        every_row = list(csv.DictReader(handle))
    steps = [int(row["step"]) for row in every_row]
    assert len(steps) == len(set(steps)), "one metrics row per step (losses and FID together)"
    rows = [row for row in every_row if row["fid"]]
    assert [int(row["step"]) for row in rows] == [2, 4]
    assert all(row["g_loss"] for row in rows if int(row["step"]) == 4)  # a log step too
    scores = [float(row["fid"]) for row in rows]
    assert all(math.isfinite(s) and s >= 0 for s in scores)
    assert all(row["kid"] and row["kid_std"] for row in rows)
    assert result.best_fid == min(scores)
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["best_fid"] == min(scores)
    assert best["step"] == [2, 4][scores.index(min(scores))]
    # the reference statistics were cached once for this dataset and resolution
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1


def test_measuring_fid_during_training_does_not_change_the_training(
    tmp_path, tiny_emoji, monkeypatch
):
    """Building the Inception network and scoring samples must leave the training's random
    stream alone: the same seed trains the same weights with and without --fid-every."""
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(random_inception_weights(tmp_path / "inception.pth")))
    weights = {}
    for fid_every in (0, 2):
        config = tiny_config(
            run__steps=4, run__fid_every=fid_every, run__fid_num=12, data__limit=24
        )
        trainer = Trainer(
            config, tmp_path / f"run-{fid_every}", images=tiny_emoji[:24], progress=False
        )
        trainer.run()
        weights[fid_every] = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    assert weights[0].keys() == weights[2].keys()
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[2][name], value, rtol=0, atol=0, msg=name)
