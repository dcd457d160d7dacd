"""Training moves the painter toward the data (statistics that do not depend on the loss)."""

from fwp_test_utils import tiny_config

from fwp.gan.data import load_images, to_float
from fwp.gan.metrics import near_duplicates
from fwp.gan.trainer import Trainer


def sample_statistics(generator, real) -> tuple[float, float]:
    """(colour gap, spread) of 256 fixed-latent samples.

    colour gap: mean absolute difference of the per-colour-channel means of samples and data.
    spread: per-pixel standard deviation across samples, averaged (0 = every latent paints the
    same image).
    """
    fake = generator.sample(256, seed=5)
    gap = (fake.mean(dim=(0, 2, 3)) - real.mean(dim=(0, 2, 3))).abs().mean().item()
    return gap, fake.std(dim=0).mean().item()


def test_a_few_hundred_steps_move_the_samples_toward_the_data(tmp_path):
    """An untrained painter paints near-identical grey images; emoji are mostly white and varied.

    800 steps of the quick preset's training setting (Transformer controller, R1 penalty) on 256
    real emoji, with its painter shrunk to 16x16, T=6, width 64, batch 16, must close most of the
    colour gap between the EMA painter's samples and the data, and make the samples differ across
    latents. Measured over seeds 0-5, each in fast mode and in reference mode (the same math, other
    rounding): colour gap 0.24-0.25 -> 0.004 to 0.047 (at most 0.20 of the start), spread
    0.011-0.013 -> 0.52 to 0.68. GAN trajectories part on rounding, so the bounds leave room: a
    trainer that does not learn keeps both where they start.

    Collapse: before training every pair of 64 fixed-latent samples is a near-duplicate (RMS
    pixel difference < 0.1; 2,016 of 2,016 pairs); after, the same twelve runs left 9 to 97 such
    pairs (the LSTM controller with the one-centred penalty, the earlier quick setting, left 228
    to 573 for seeds 0-2). A generator that paints one picture for every latent keeps all 2,016.
    """
    images = load_images("emoji", (16, 16), 3, limit=256, progress=False)
    real = to_float(images)
    config = tiny_config(
        data__limit=256,
        painter__hidden_size=64,
        painter__latent_dim=32,
        optim__batch_size=16,
        optim__ema_decay=0.98,
        run__steps=800,
        run__log_every=100,
        run__checkpoint_every=800,
        run__sample_every=800,
    )
    trainer = Trainer(config, tmp_path / "run", images=images, progress=False)
    gap_before, spread_before = sample_statistics(trainer.ema, real)
    assert gap_before > 0.15 and spread_before < 0.02  # the gaps are real to begin with
    assert near_duplicates(trainer.ema.sample(64, seed=5)).fraction == 1.0
    trainer.run()
    gap_after, spread_after = sample_statistics(trainer.ema, real)
    assert gap_after < 0.4 * gap_before, (gap_before, gap_after)
    assert spread_after > 0.3, (spread_before, spread_after)
    repeats = near_duplicates(trainer.ema.sample(64, seed=5))
    assert repeats.fraction < 0.2, repeats.describe()  # not collapsed onto a few pictures
