"""Introspective training (INNg, Lazarow et al., ICCV 2017; WINN, Lee et al., CVPR 2018): the
synthesis ascent, the gradient penalty, the pool of pseudo-negatives, the cascade, exact resume,
learning, and the command line."""

import csv
import json
import math
import re

import pytest
import torch
from click.testing import CliRunner
from fwp_test_utils import (
    TINY_CLI_SHORT_RUN,
    assert_same_losses,
    random_inception_weights,
    straight_and_resumed,
    tiny_config,
)

from fwp.cli.main import cli
from fwp.gan.checkpoint import load_checkpoint, load_generator
from fwp.gan.config import PRESETS, ConfigError, build_config
from fwp.gan.data import load_images, to_float, to_uint8
from fwp.gan.generators import build_generator
from fwp.gan.metrics import FID_WEIGHTS_ENV
from fwp.gan.networks import CascadeSampler, Critic, synthesise
from fwp.gan.objectives import (
    IntrospectiveObjective,
    NegativePool,
    build_objective,
    critic_loss,
    gradient_penalty,
)
from fwp.gan.trainer import Trainer

CPU = torch.device("cpu")

#: a tiny classic run: stages of 3 steps, 16 pseudo-negatives per stage, a narrow critic
INTRO = {
    "objective__name": "introspective",
    "introspective__stages": 3,
    "introspective__stage_steps": 3,
    "introspective__stage_negatives": 16,
    "introspective__pool_size": 40,
    "introspective__critic_width": 8,
    "introspective__critic_max_width": 16,
    "introspective__synthesis_steps": 4,
    "introspective__negative_batch": 8,
    "introspective__critic_passes": 2,
}


def intro_config(**overrides):
    return tiny_config(**{**INTRO, **overrides})


def intro_objective(seed: int = 0, **overrides) -> IntrospectiveObjective:
    torch.manual_seed(seed)
    config = intro_config(**overrides)
    objective = build_objective(config, build_generator(config), CPU)
    assert isinstance(objective, IntrospectiveObjective)
    return objective


def small_critic(seed: int = 0) -> Critic:
    torch.manual_seed(seed)
    return Critic(3, (8, 8), width=4, max_width=8)


# -- synthesis -------------------------------------------------------------------------------------
def test_synthesis_raises_the_score_of_every_image():
    critic = small_critic()
    start = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    result = synthesise(critic, start, steps=5, lr=1e-3)
    assert result.steps == 5
    torch.testing.assert_close(result.start_scores, critic(start).detach())
    torch.testing.assert_close(result.end_scores, critic(result.images).detach())
    assert (result.end_scores > result.start_scores).all(), (result.start_scores, result.end_scores)
    assert all(p.grad is None for p in critic.parameters())  # the critic learns nothing here


def test_synthesis_clips_to_the_data_range_after_every_step():
    critic = small_critic()
    start = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    one_step = synthesise(critic, start, steps=1, lr=0.5).images  # steps far past the range
    assert one_step.abs().max() <= 1.0
    assert (one_step.abs() == 1.0).float().mean() > 0.2  # many pixels were clipped
    many = synthesise(critic, start, steps=8, lr=0.5).images
    assert many.abs().max() <= 1.0


def test_synthesis_stops_early_at_the_threshold():
    critic = small_critic()
    start = torch.rand(4, 3, 8, 8) * 2 - 1
    reached = synthesise(critic, start, steps=10, lr=0.01, threshold=-math.inf)
    assert reached.steps == 0 and torch.equal(reached.images, start)
    score = float(critic(start).detach().mean())
    partly = synthesise(critic, start, steps=200, lr=0.01, threshold=score + 1e-3)
    assert 1 <= partly.steps < 200
    assert float(partly.end_scores.mean()) >= score + 1e-3


# -- losses ----------------------------------------------------------------------------------------
def test_the_gradient_penalty_equals_its_definition():
    critic = small_critic(3)
    generator = torch.Generator().manual_seed(4)
    real = torch.rand(5, 3, 8, 8, generator=generator) * 2 - 1
    fake = torch.rand(5, 3, 8, 8, generator=generator) * 2 - 1
    mix = torch.rand(5, generator=generator)
    penalty = gradient_penalty(critic, real, fake, mix)
    terms = []
    for i in range(5):  # by hand, one image at a time
        point = (mix[i] * real[i] + (1 - mix[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(point).sum(), point, create_graph=True)
        terms.append((grad.pow(2).sum().sqrt() - 1.0) ** 2)
    expected = torch.stack(terms).mean()
    torch.testing.assert_close(penalty, expected)
    # and its gradient in the critic's weights (the output bias does not reach ∂f/∂x)
    params = [p for name, p in critic.named_parameters() if name != "out.bias"]
    for got, want in zip(
        torch.autograd.grad(penalty, params), torch.autograd.grad(expected, params), strict=True
    ):
        torch.testing.assert_close(got, want)


def test_critic_losses_are_the_formulas():
    data, neg = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    assert float(critic_loss("wasserstein", data, neg)) == pytest.approx(-1.0 - 2.0)
    logistic = (math.log1p(math.exp(-1)) + math.log1p(math.exp(-3))) / 2
    logistic += (math.log1p(math.exp(-2)) + math.log(2)) / 2
    assert float(critic_loss("logistic", data, neg)) == pytest.approx(logistic)


# -- the pool --------------------------------------------------------------------------------------
def test_the_pool_is_bounded_and_drops_the_oldest_first():
    pool = NegativePool(10, (3, 4, 4), CPU)
    batches = [torch.rand(4, 3, 4, 4) * 2 - 1 for _ in range(3)]
    pool.add(batches[0])
    assert len(pool) == 4
    pool.add(batches[1])
    assert len(pool) == 8
    pool.add(batches[2])
    assert len(pool) == 10 and pool.images.dtype == torch.uint8
    expected = torch.cat([to_uint8(batches[0])[2:], to_uint8(batches[1]), to_uint8(batches[2])])
    assert torch.equal(pool.images, expected)


def test_the_pool_samples_with_replacement():
    pool = NegativePool(5, (1, 2, 2), CPU)
    pool.add(torch.linspace(-1, 1, 5)[:, None, None, None].expand(5, 1, 2, 2))
    drawn = to_uint8(pool.sample(60))
    index = [int((pool.images[:, 0, 0, 0] == d[0, 0, 0]).nonzero()) for d in drawn]
    assert len(drawn) == 60 and len(set(index)) == 5  # more draws than images; each one seen


def test_the_pool_grows_by_one_stage_of_negatives_per_stage_up_to_its_bound():
    images = to_float(load_images("emoji", (16, 16), 3, limit=16, progress=False))
    objective = intro_objective()
    sizes = [len(objective.pool)]
    for step in range(9):
        losses = objective.train_step(images[:8], step)
        sizes.append(int(losses["pool_size"]))
    assert sizes[0] == 16  # the noise of stage 0
    assert sizes[3] == 32 and sizes[1:3] == [16, 16]  # a stage of 3 steps adds 16
    assert sizes[6] == 40 and sizes[9] == 40  # the bound, introspective.pool_size
    assert objective.cascade.num_stages == 3
    assert torch.equal(objective.pool.images[-16:], to_uint8(objective.chain))  # newest last


# -- the cascade -----------------------------------------------------------------------------------
def test_the_cascade_applies_each_stored_stage_once_in_order():
    cascade = CascadeSampler(3, (8, 8), 3, 4, 8, synthesis_steps=3, synthesis_lr=0.01)
    critics = [small_critic(seed) for seed in (10, 11)]
    cascade.store_stage(0, critics[0], -1.0, 1.0)
    cascade.store_stage(1, critics[1], -2.0, 2.0)
    cascade.early_stop = False
    calls: list[int] = []
    for index, stage in enumerate(cascade.critics):
        stage.register_forward_hook(lambda *_, index=index: calls.append(index))
    z = cascade.sample_latents(4, torch.Generator().manual_seed(0))
    result = cascade.paint(z, frames=True)
    assert calls == [0] * 4 + [1] * 4  # 3 steps and the final score, per stage, stage 3 unused
    assert result.partials.shape == (3, 4, 3, 8, 8)
    x = z.reshape(4, 3, 8, 8)
    torch.testing.assert_close(result.partials[0], x)
    for k, critic in enumerate(critics):  # each stage is the ascent of its own critic
        x = synthesise(critic, x, 3, 0.01).images
        torch.testing.assert_close(result.partials[k + 1], x)
    torch.testing.assert_close(result.updates.sum(0), result.image)
    assert list(cascade.parameters()) == []  # the EMA copies it instead of averaging


def test_the_cascade_thresholds_lie_in_each_stage_score_range_and_do_not_use_global_rng():
    cascade = CascadeSampler(3, (8, 8), 2, 4, 8, synthesis_steps=2, synthesis_lr=0.01)
    cascade.store_stage(0, small_critic(), 5.0, 7.0)
    state = torch.get_rng_state()
    threshold = cascade.threshold(0)
    cascade(cascade.sample_latents(2, torch.Generator().manual_seed(1)))
    assert torch.equal(torch.get_rng_state(), state)
    assert threshold is not None and 5.0 <= threshold <= 7.0
    with pytest.raises(ValueError, match="cannot be stored"):
        cascade.store_stage(1 + 1, small_critic(), 0.0, 1.0)


# -- run directory, resume -------------------------------------------------------------------------
def test_resume_from_a_mid_stage_checkpoint_reproduces_the_uninterrupted_run(tmp_path, tiny_emoji):
    def trainer(run_dir, steps):
        config = intro_config(run__steps=steps, run__checkpoint_every=4, run__sample_every=100)
        return Trainer(config, run_dir, images=tiny_emoji, progress=False)

    # stages end after steps 3 and 6: the checkpoint of step 4 is mid-stage
    full, second, full_history, split_history = straight_and_resumed(trainer, tmp_path)
    assert_same_losses(full_history, split_history)
    assert torch.equal(full.objective.pool.images, second.objective.pool.images)
    assert torch.equal(full.objective.chain, second.objective.chain)
    for key, value in full.ema.state_dict().items():
        assert torch.equal(value, second.ema.state_dict()[key]), key
    state = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    pool = state["objective"]["introspective"]["pool"]
    assert pool.dtype == torch.uint8 and torch.equal(pool, full.objective.pool.images)


def test_a_classic_run_directory_samples_through_its_cascade(tmp_path, tiny_emoji):
    trainer = Trainer(intro_config(), tmp_path / "run", images=tiny_emoji, progress=False)
    rng_before = torch.get_rng_state()
    trainer.save_samples()  # pictures never move the training RNG
    assert torch.equal(torch.get_rng_state(), rng_before)
    trainer.run()
    run = tmp_path / "run"
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["step", "elapsed_s", "img_per_s", "lr_critic"]
    assert set(trainer.objective.loss_names) <= set(header)
    names = {p.name for p in (run / "samples").iterdir()}
    assert {"strip_0000006.png", "negatives_0000006.png", "samples_0000006.png"} <= names
    generator, config = load_generator(run)
    assert config.introspective.mode == "classic"
    assert isinstance(generator, CascadeSampler) and generator.num_stages == 2
    assert generator.sample(3, seed=0).shape == (3, 3, 16, 16)


def test_fid_during_training_and_fwp_fid_sample_through_the_cascade(
    tmp_path, tiny_emoji, monkeypatch
):
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    weights = random_inception_weights(tmp_path / "inception.pth")
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(weights))
    config = intro_config(run__fid_every=3, run__fid_num=12, data__limit=24)
    result = Trainer(config, tmp_path / "run", images=tiny_emoji[:24], progress=False).run()
    with (tmp_path / "run" / "metrics.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["fid"]]
    assert [int(row["step"]) for row in rows] == [3, 6]
    assert all(math.isfinite(float(row["fid"])) for row in rows)
    assert result.best_fid == min(float(row["fid"]) for row in rows)
    args = ["fid", str(tmp_path / "run"), "--num", "12", "--device", "cpu", "--quiet"]
    scored = CliRunner().invoke(cli, [*args, "--json", "--fid-method", "eigh"])
    assert scored.exit_code == 0, scored.output
    assert math.isfinite(json.loads(scored.output.strip().splitlines()[-1])["fid"])


def test_painter_mode_regresses_the_painter_onto_the_refined_images(tiny_emoji):
    objective = intro_objective(
        introspective__mode="painter",
        introspective__synthesis_steps=6,
        introspective__early_stop=False,
    )
    real = to_float(tiny_emoji[:8])
    before = [p.detach().clone() for p in objective.generator.parameters()]
    losses = objective.train_step(real, 0)
    assert {"painter_gap", "diversity", "synthesis_steps", "score_synthesised"} <= set(losses)
    assert float(losses["painter_gap"]) > 0 and len(objective.pool) == 8
    moved = [
        not torch.equal(a, b) for a, b in zip(before, objective.generator.parameters(), strict=True)
    ]
    assert any(moved)


@pytest.mark.parametrize("weight", [0.0, 2.0])
def test_the_painters_loss_is_the_distance_plus_the_capped_diversity_term(weight):
    """Painter mode: the painter's gradient is that of mean((g(z) - refined)^2) +
    weight * -mean(min(ratio, cap)) written out here (the ratio: mean absolute image difference /
    mean absolute latent difference of sample i and sample i + B/2); the logged ``diversity`` is
    the ratios' mean."""
    objective = intro_objective(
        introspective__mode="painter",
        objective__diversity_weight=weight,
        objective__diversity_cap=0.3,
    )
    painter = objective.generator
    torch.manual_seed(3)
    latents = torch.randn(6, painter.latent_dim)
    refined = torch.rand(6, 3, 16, 16) * 2 - 1

    painter.zero_grad()
    painted = painter(latents).float()
    first, second = torch.arange(3), torch.arange(3, 6)
    image_distance = (painted[first] - painted[second]).abs().flatten(1).mean(1)
    latent_distance = (latents[first] - latents[second]).abs().mean(1)
    ratios = image_distance / latent_distance
    expected = ((painted - refined) ** 2).mean() - weight * ratios.clamp(max=0.3).mean()
    expected.backward()
    wanted = [p.grad.clone() for p in painter.parameters()]

    optimizer = objective.optimizers["generator"]
    seen: list[list[torch.Tensor]] = []
    optimizer.step = lambda *a, **k: seen.append([p.grad.clone() for p in painter.parameters()])
    gap, diversity = objective.update_painter(latents, refined)
    assert len(seen) == objective.config.introspective.painter_updates
    for got, want in zip(seen[0], wanted, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)
    assert float(gap) == pytest.approx(float(((painted - refined) ** 2).mean()), rel=1e-5)
    assert float(diversity) == pytest.approx(float(ratios.mean()), rel=1e-5)


# -- learning --------------------------------------------------------------------------------------
def test_two_stages_move_noise_towards_the_emoji():
    """80 steps (two stages of 40) on 256 real 16x16 emoji with a narrow critic (lr 1e-3).
    Measured over seeds 0-1: the critic scores every data image above every noise image, the
    cascade's samples' colour gap to the data falls 0.25 -> 0.05-0.07 and their mean distance
    to the nearest emoji 20.9 -> 17.5-18.0. An untrained critic does neither."""
    torch.manual_seed(0)
    images = to_float(load_images("emoji", (16, 16), 3, limit=256, progress=False))
    objective = intro_objective(
        data__limit=256,
        optim__batch_size=32,
        introspective__stage_steps=40,
        introspective__stages=2,
        introspective__stage_negatives=64,
        introspective__pool_size=256,
        introspective__critic_max_width=32,
        introspective__synthesis_steps=30,
        introspective__synthesis_lr=0.02,
        introspective__negative_batch=32,
        introspective__lr_critic=1e-3,
    )
    noise = objective.chain.clone()

    def nearest(x):
        return torch.cdist(x.flatten(1), images.flatten(1)).min(1).values.mean().item()

    def colour_gap(x):
        return (x.mean((0, 2, 3)) - images.mean((0, 2, 3))).abs().mean().item()

    for step in range(80):
        objective.train_step(images[torch.randint(256, (32,))], step)
    with torch.no_grad():
        assert (objective.critic(images) > objective.critic(noise).max()).all()
    z = objective.cascade.sample_latents(64, torch.Generator().manual_seed(9))
    chain = objective.cascade.stage_images(z)
    assert len(chain) == 3
    assert colour_gap(chain[-1]) < 0.5 * colour_gap(chain[0]), [colour_gap(x) for x in chain]
    assert nearest(chain[-1]) < 0.92 * nearest(chain[0]), [nearest(x) for x in chain]


# -- configuration and command line ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("introspective__pool_size", 0, "introspective.pool_size must be a positive integer"),
        ("introspective__synthesis_lr", 0.0, "introspective.synthesis_lr must be positive"),
        ("introspective__critic_beta2", 1.0, "introspective.critic_beta2 must be in [0, 1)"),
        ("introspective__gp_weight", -1.0, "introspective.gp_weight must be >= 0"),
        ("introspective__mode", "cascade", "introspective.mode must be one of classic, painter"),
        ("introspective__stage_negatives", 50, "introspective.pool_size (40) must hold"),
    ],
)
def test_bad_introspective_options_are_refused_naming_the_option(option, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        intro_config(**{option: value})


def test_presets_follow_the_official_defaults():
    config = build_config("introspective")
    intro = config.introspective
    assert (config.objective.name, intro.mode, intro.loss, intro.gp_weight) == (
        "introspective",
        "classic",
        "wasserstein",
        10.0,
    )
    assert (intro.lr_critic, intro.critic_beta1, intro.critic_beta2) == (1e-4, 0.0, 0.9)
    assert (intro.critic_passes, intro.negative_batch, config.optim.batch_size) == (3, 50, 50)
    assert (intro.synthesis_lr, intro.early_stop) == (0.01, True)
    assert "introspective-quick" in PRESETS
    assert build_config("introspective-quick").run.minutes <= 10


def intro_flags(options: dict) -> list[str]:
    """``--section-name value`` command-line options of ``section__name`` overrides."""
    flags = []
    for key, value in options.items():
        flags += [f"--{key.replace('__', '-').replace('_', '-')}", str(value)]
    return flags


def test_fwp_train_objective_introspective_runs_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    flags = intro_flags(INTRO)
    result = CliRunner().invoke(
        cli, ["train", *TINY_CLI_SHORT_RUN, *flags, "--run-dir", str(run_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "critic_loss=" in result.output and "pool_size=" in result.output
    assert (run_dir / "samples" / "strip_0000004.png").is_file()
    painted = CliRunner().invoke(cli, ["paint", str(run_dir), "--num", "4", "--strips", "2"])
    assert painted.exit_code == 0, painted.output


def test_the_command_line_refuses_a_bad_option_before_any_work(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--objective",
            "introspective",
            "--introspective-pool-size",
            "0",
            "--run-dir",
            str(run_dir),
        ],
    )
    assert result.exit_code != 0
    assert "introspective.pool_size must be a positive integer" in result.output
    assert not run_dir.exists()


def test_fwp_ablate_compares_objectives_with_introspective_cells(tmp_path):
    tiny = [a for a in TINY_CLI_SHORT_RUN if a != "--quiet"][2:]  # without --preset quick
    options = {k: v for k, v in INTRO.items() if k != "objective__name"}
    sweep = tmp_path / "sweep"
    result = CliRunner().invoke(
        cli,
        [
            "ablate",
            str(sweep),
            "--preset",
            "quick",
            *tiny,
            *intro_flags(options),
            "--set",
            "objective.name=adversarial,introspective",
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 trained, 0 already done, 0 failed" in result.output
    cells = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert cells == [
        "delta-objective.name=adversarial-seed0",
        "delta-objective.name=introspective-seed0",
    ]
    _, config = load_generator(sweep / cells[1])
    assert config.objective.name == "introspective"
