"""The FPA/U-Net refinement stage: a U-Net trained after a trained painter run
(`fwp train --init-from RUN --refiner`), as the official --load_pre_trained --frozen_base."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from fwp_test_utils import record_losses, tiny_config

from fwp.gan.checkpoint import load_checkpoint
from fwp.gan.stages import InitSourceError, check_init_source
from fwp.gan.trainer import Trainer

REFINER = {"refiner__enabled": True, "refiner__depth": 1, "refiner__base_channels": 4}


@pytest.fixture(scope="module")
def painter_run(tmp_path_factory, tiny_emoji):
    """A finished 4-step run of the tiny painter."""
    run = tmp_path_factory.mktemp("stage1") / "painter"
    Trainer(tiny_config(run__steps=4), run, images=tiny_emoji, progress=False).run()
    return run


def stage_two(painter_run, **options):
    return tiny_config(generator__init_from=str(painter_run), **{**REFINER, **options})


def _part(state, prefix):
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stage_two_trains_the_refiner_after_the_frozen_painter(tmp_path, painter_run, tiny_emoji):
    first = load_checkpoint(painter_run / "checkpoints" / "last.pt")
    ema_painter = _part(first["ema"], "painter.")
    raw_painter = _part(first["objective"]["networks"]["generator"], "painter.")
    assert not _equal(ema_painter, raw_painter)

    config = stage_two(painter_run, refiner__lr=0.01)
    trainer = Trainer(config, tmp_path / "stage2", images=tiny_emoji, progress=False)
    generator = trainer.objective.generator
    # both painters start from the EMA painter of the first run; so does the discriminator
    assert _equal(generator.painter.state_dict(), ema_painter)
    assert _equal(trainer.ema.painter.state_dict(), ema_painter)
    assert _equal(
        trainer.objective.discriminator.state_dict(),
        first["objective"]["networks"]["discriminator"],
    )
    # the generator's optimiser holds the refiner only, at its own learning rate
    (group,) = trainer.objective.optimizers["generator"].param_groups
    assert group["lr"] == 0.01
    assert {id(p) for p in group["params"]} == {id(p) for p in generator.refiner.parameters()}
    refiner_start = {k: v.clone() for k, v in generator.refiner.state_dict().items()}

    trainer.run()
    final = load_checkpoint(tmp_path / "stage2" / "checkpoints" / "last.pt")
    assert _equal(_part(final["objective"]["networks"]["generator"], "painter."), ema_painter)
    assert _equal(_part(final["ema"], "painter."), ema_painter)
    refiner_end = _part(final["objective"]["networks"]["generator"], "refiner.")
    assert not _equal(refiner_end, refiner_start)
    saved = json.loads((tmp_path / "stage2" / "config.json").read_text())
    assert saved["generator"]["init_from"] == str(painter_run)  # the source is recorded


@pytest.mark.parametrize(
    ("choice", "trained", "averaged"), [("raw", "raw", "raw"), ("raw+ema", "raw", "ema")]
)
def test_init_weights_choose_the_painters(
    tmp_path, painter_run, tiny_emoji, choice, trained, averaged
):
    first = load_checkpoint(painter_run / "checkpoints" / "last.pt")
    weights = {
        "raw": _part(first["objective"]["networks"]["generator"], "painter."),
        "ema": _part(first["ema"], "painter."),
    }
    config = stage_two(painter_run, generator__init_weights=choice, generator__freeze_painter=False)
    trainer = Trainer(config, tmp_path / "run", images=tiny_emoji, progress=False)
    assert _equal(trainer.objective.generator.painter.state_dict(), weights[trained])
    assert _equal(trainer.ema.painter.state_dict(), weights[averaged])
    # a painter trained on is in the optimiser (one group: refiner.lr is 0)
    (group,) = trainer.objective.optimizers["generator"].param_groups
    assert len(group["params"]) == len(list(trainer.objective.generator.parameters()))


def test_unfrozen_painter_trains_on_with_the_match_loss(tmp_path, painter_run, tiny_emoji):
    config = stage_two(painter_run, generator__freeze_painter=False, refiner__match_loss_weight=1.0)
    trainer = Trainer(config, tmp_path / "run", images=tiny_emoji, progress=False)
    start = {k: v.clone() for k, v in trainer.objective.generator.painter.state_dict().items()}
    result = trainer.run()
    assert "match" in result.last_losses
    assert not _equal(trainer.objective.generator.painter.state_dict(), start)


def test_resume_of_a_stage_two_run_needs_only_its_own_checkpoint(tmp_path, painter_run, tiny_emoji):
    source = tmp_path / "painter"
    shutil.copytree(painter_run, source)
    full = Trainer(
        stage_two(source, run__steps=6, run__checkpoint_every=3),
        tmp_path / "full",
        images=tiny_emoji,
        progress=False,
    )
    full_history = record_losses(full)
    full.run()

    first = Trainer(
        stage_two(source, run__steps=3, run__checkpoint_every=3),
        tmp_path / "split",
        images=tiny_emoji,
        progress=False,
    )
    history = record_losses(first)
    first.run()
    shutil.rmtree(source)  # the init run is read once, when the stage starts
    second = Trainer(
        stage_two(source, run__steps=6, run__checkpoint_every=3),
        tmp_path / "split",
        images=tiny_emoji,
        progress=False,
    )
    assert second.step == 3
    second_history = record_losses(second)
    second.run()
    history += second_history
    assert [h["step"] for h in history] == list(range(1, 7))
    for expected, got in zip(full_history, history, strict=True):
        for name in expected:
            assert math.isclose(expected[name], got[name], rel_tol=1e-6, abs_tol=1e-6), name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"painter__hidden_size": 16}, r"painter.hidden_size 32 there, 16 here"),
        ({"painter__rule": "hebb"}, r"painter.rule 'delta' there, 'hebb' here"),
        ({"discriminator__base_channels": 4}, "--no-generator-init-discriminator"),
    ],
)
def test_a_different_init_run_is_refused_by_name(painter_run, options, message):
    with pytest.raises(InitSourceError, match=message):
        check_init_source(stage_two(painter_run, **options))


def test_a_fresh_discriminator_may_differ(tmp_path, painter_run, tiny_emoji):
    config = stage_two(
        painter_run, discriminator__base_channels=4, generator__init_discriminator=False
    )
    check_init_source(config)
    Trainer(config, tmp_path / "run", images=tiny_emoji, progress=False)


def test_init_runs_that_cannot_start_a_stage_are_refused(tmp_path, painter_run, tiny_emoji):
    with pytest.raises(InitSourceError, match=r"does not exist|neither"):
        check_init_source(stage_two(tmp_path / "missing"))
    refined = tmp_path / "refined"
    Trainer(tiny_config(run__steps=1, **REFINER), refined, images=tiny_emoji, progress=False)
    with pytest.raises(InitSourceError, match="trains a refiner"):
        check_init_source(stage_two(refined))
