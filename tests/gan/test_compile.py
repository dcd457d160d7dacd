"""torch.compile of the training step's networks: same values and gradients, clean fallback."""

import math

import pytest
import torch
from fwp_test_utils import record_losses, tiny_config

from fwp.gan import compiled
from fwp.gan.config import ConfigError
from fwp.gan.generators import build_generator
from fwp.gan.networks.discriminator import LightweightDiscriminator
from fwp.gan.trainer import Trainer
from fwp.painters.layers import ChannelNorm


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Compiled graphs and their guards must not leak from one test into another."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _losses_per_step(config, run_dir, images) -> list[dict[str, float]]:
    trainer = Trainer(config, run_dir, images=images, progress=False)
    history = record_losses(trainer)
    trainer.run()
    return history


@pytest.mark.parametrize("controller", ["lstm", "transformer"])
def test_compiled_step_gives_the_eager_losses(tmp_path, tiny_emoji, monkeypatch, controller):
    """The trainer's compiled path (graph capture, the LSTM graph break, recompiles when the
    discriminator is frozen, the eager penalised pass) computes the eager step's losses, with
    either controller.

    aot_eager runs the captured graphs with eager kernels, so this checks the capture and the
    training logic without inductor's compile time; the inductor tests below check kernels.
    """
    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    histories = {
        mode: _losses_per_step(
            tiny_config(run__compile=mode, run__steps=5, painter__controller=controller),
            tmp_path / mode,
            tiny_emoji,
        )
        for mode in ("off", "default")
    }
    assert len(histories["off"]) == 5  # steps 0 and 4 carry the gradient penalty
    assert histories["off"][0]["gradient_penalty"] > 0
    for eager, fast in zip(histories["off"], histories["default"], strict=True):
        for name, value in eager.items():
            assert math.isclose(value, fast[name], rel_tol=1e-4, abs_tol=1e-5), (name, eager, fast)


def _values_and_gradients(call, module, inputs):
    module.zero_grad(set_to_none=True)
    output = call(inputs)
    tensors = [output] if isinstance(output, torch.Tensor) else [output.logits, output.small_logits]
    weights = [torch.linspace(-1, 1, t.numel(), device=t.device).reshape(t.shape) for t in tensors]
    sum((t * w).sum() for t, w in zip(tensors, weights, strict=True)).backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return [t.detach() for t in tensors], grads


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("network", ["generator", "discriminator", "channel-norm"])
def test_inductor_matches_eager_values_and_gradients(network, device, monkeypatch):
    """Compiled and eager calls agree, values and parameter gradients. The channel norm at 128
    channels is the shape whose compiled backward failed on CUDA with inductor's mix-order
    reduction (pytorch/pytorch#178080). On CUDA both run in full float32: cuDNN's convolutions
    default to TF32, whose rounding differs between the eager and the compiled kernels."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.manual_seed(0)
    if network == "generator":
        module = build_generator(tiny_config())
        inputs = torch.randn(4, module.latent_dim)
    elif network == "discriminator":
        module = LightweightDiscriminator((16, 16), channels=3, base_channels=8, max_channels=32)
        inputs = torch.rand(4, 3, 16, 16) * 2 - 1
    else:
        module = torch.nn.Sequential(torch.nn.Conv2d(3, 128, 1), ChannelNorm(128))
        inputs = torch.randn(20, 3, 16, 16)
    module, inputs = module.to(device), inputs.to(device)
    call = compiled.maybe_compile(module, "default", torch.device(device), network)
    assert isinstance(call, compiled.CompiledCall)
    eager_values, eager_grads = _values_and_gradients(module, module, inputs)
    fast_values, fast_grads = _values_and_gradients(call, module, inputs)
    assert not call.failed
    for eager, fast in zip(eager_values, fast_values, strict=True):
        torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-5)
    assert eager_grads.keys() == fast_grads.keys()
    for name, grad in eager_grads.items():
        # the channel norm's gain and bias gradients are float32 sums of 5,120 terms of size ~100
        # taken in another order: their absolute error scales with the gradient
        scale = max(1.0, grad.abs().max().item()) if network == "channel-norm" else 1.0
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


def test_compiling_turns_off_the_mix_order_reduction(monkeypatch):
    """The CUDA bug above comes from inductor's mix-order reduction; fwp's compiled calls run
    without it."""
    from torch._inductor import config as inductor_config

    monkeypatch.setattr(inductor_config.triton, "mix_order_reduction", True)
    compiled.CompiledCall(torch.nn.Linear(3, 4), "default", "generator")
    assert inductor_config.triton.mix_order_reduction is False


def test_a_failing_compiler_falls_back_to_eager_with_one_warning():
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler here")

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
    call = compiled.CompiledCall(module, "default", "generator", backend=broken_backend)
    x = torch.randn(2, 3)
    with pytest.warns(RuntimeWarning, match="torch.compile of the generator failed"):
        first = call(x)
    assert call.failed
    torch.testing.assert_close(first, module(x))
    torch.testing.assert_close(call(x), module(x))  # no second warning: it stays eager


def test_a_genuine_error_still_surfaces_from_the_eager_call():
    module = torch.nn.Linear(3, 4)
    call = compiled.CompiledCall(module, "default", "generator", backend="eager")
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="shapes cannot be"):
        call(torch.randn(2, 5))


def test_off_returns_the_module_itself():
    module = torch.nn.Linear(3, 4)
    assert compiled.maybe_compile(module, "off", torch.device("cpu"), "generator") is module


def test_bad_compile_options_are_refused_before_any_work():
    with pytest.raises(ConfigError, match=r"run\.compile must be one of"):
        tiny_config(run__compile="fastest")
    with pytest.raises(ConfigError, match=r"run\.compile and run\.reference exclude each other"):
        tiny_config(run__compile="default", run__reference=True)
