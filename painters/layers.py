"""Convolutional building blocks shared by the image networks: blur, channel norm, attention.

The conv generator (:mod:`fwp.painters.conv_generator`), the diffusion-style U-Net of the refiner
(:mod:`fwp.painters.unet`) and the discriminators (:mod:`fwp.gan.networks`) are written from the
architectures that "Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) uses in its official
code: the generator and discriminator of Lightweight GAN ("Towards Faster and Stabilized GAN
Training for High-fidelity Few-shot Image Synthesis", Liu et al., ICLR 2021, in the implementation
of lucidrains/lightweight-gan) and the U-Net of denoising diffusion models (Ho et al., NeurIPS
2020, in the implementation of lucidrains/denoising-diffusion-pytorch). The attention modules are
the attention of "Attention Is All You Need" (Vaswani et al., NeurIPS 2017) over the pixels of a
feature map, and its linear-complexity form ("Efficient Attention", Shen et al., WACV 2021).

Every module maps feature maps (B, C, H, W) to (B, C', H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class Blur(nn.Module):
    """A fixed depthwise 3x3 binomial blur ([1, 2, 1] outer [1, 2, 1] / 16), reflect padding.

    Shapes: (B, C, H, W) -> (B, C, H, W), for any C (the kernel is broadcast over channels).
    """

    kernel: Tensor

    def __init__(self) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        # Not persistent: a constant, kept out of checkpoints, still moved by .to(device).
        self.register_buffer("kernel", torch.outer(taps, taps) / 16.0, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(channels, 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=channels)


class ChannelNorm(nn.Module):
    """Layer norm over the channels of every pixel, with a gain and bias per channel.

    (B, C, H, W) -> (B, C, H, W); statistics are per sample and pixel, so samples never mix.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).square().mean(dim=1, keepdim=True)
        return (x - mean) * (var + self.eps).rsqrt() * self.gain + self.bias


class PreNormResidual(nn.Module):
    """``x + fn(ChannelNorm(x))``: a residual branch with a channel norm in front.

    Shapes: (B, C, H, W) -> (B, C, H, W); ``fn`` must keep the shape.
    """

    def __init__(self, channels: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = ChannelNorm(channels)
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fn(self.norm(x))


def _shifted_windows(t: Tensor, kernel_size: int) -> list[Tensor]:
    """The ``kernel_size**2`` neighbours of every pixel as views: entry ``j = dy * kernel_size +
    dx`` is ``t`` shifted so that pixel (x, y) reads (x + dy - r, y + dx - r), r = kernel_size // 2,
    zeros beyond the border. (N, D, H, W) -> kernel_size**2 tensors (N, D, H, W)."""
    h, w = t.shape[-2:]
    r = kernel_size // 2
    padded = F.pad(t, (r, r, r, r))
    offsets = range(kernel_size)
    return [padded[..., dy : dy + h, dx : dx + w] for dy in offsets for dx in offsets]


def neighbourhood_attention(q: Tensor, k: Tensor, v: Tensor, kernel_size: int) -> Tensor:
    """Softmax attention of every pixel over its ``kernel_size`` x ``kernel_size`` neighbourhood
    (zero padding; the zero keys at the border take part in the softmax).

    q, k, v: (N, D, H, W) (queries already scaled) -> (N, D, H, W). The neighbours are read as
    shifted views of the padded keys and values, so the work is a few element-wise kernels per
    neighbour; :func:`neighbourhood_attention_reference` computes the same with ``F.unfold`` (one
    copy of every neighbourhood, and on CUDA one im2col launch per image), and the tests compare
    the two, values and gradients.
    """
    keys, values = _shifted_windows(k, kernel_size), _shifted_windows(v, kernel_size)
    sim = torch.stack([(q * key).sum(dim=1) for key in keys], dim=1)  # (N, J, H, W)
    attn = (sim - sim.amax(dim=1, keepdim=True).detach()).softmax(dim=1)
    out = attn[:, 0, None] * values[0]
    for j in range(1, len(values)):
        out = out + attn[:, j, None] * values[j]
    return out


def neighbourhood_attention_reference(q: Tensor, k: Tensor, v: Tensor, kernel_size: int) -> Tensor:
    """:func:`neighbourhood_attention` written with ``F.unfold``: the reference it is tested
    against. q, k, v: (N, D, H, W) -> (N, D, H, W)."""
    h, w = q.shape[-2:]
    dim = q.shape[1]
    pad = kernel_size // 2
    k, v = (
        rearrange(F.unfold(t, kernel_size=kernel_size, padding=pad), "n (d j) p -> n p j d", d=dim)
        for t in (k, v)
    )
    q = rearrange(q, "n d x y -> n (x y) d")
    sim = torch.einsum("npd,npjd->npj", q, k)
    attn = (sim - sim.amax(dim=-1, keepdim=True).detach()).softmax(dim=-1)
    out = torch.einsum("npj,npjd->npd", attn, v)
    return rearrange(out, "n (x y) d -> n d x y", x=h, y=w)


class LinearLocalAttention(nn.Module):
    """Lightweight GAN's attention: global linear attention beside local 3x3 softmax attention.

    Two branches over ``heads`` heads of width ``dim_head``, concatenated and mixed by a 1x1 conv:

    - linear attention over all pixels: queries from a 1x1 conv, keys and values from a depthwise
      3x3 conv followed by a 1x1 conv; queries are softmax-normalised over their features, keys
      over the pixels; the output passes a GELU;
    - softmax attention of every pixel over its 3x3 neighbourhood (zero padding at the border,
      whose zero keys take part in the softmax), queries, keys and values from 1x1 convs.

    Shapes: (B, dim, H, W) -> (B, dim, H, W).
    """

    def __init__(self, dim: int, heads: int = 8, dim_head: int = 64, kernel_size: int = 3) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.kernel_size = kernel_size
        self.scale = dim_head**-0.5
        self.to_linear_q = nn.Conv2d(dim, inner, 1, bias=False)
        self.to_linear_kv = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
            nn.Conv2d(dim, 2 * inner, 1, bias=False),
        )
        self.to_q = nn.Conv2d(dim, inner, 1, bias=False)
        self.to_kv = nn.Conv2d(dim, 2 * inner, 1, bias=False)
        self.to_out = nn.Conv2d(2 * inner, dim, 1)

    def _linear(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        q = self.to_linear_q(x)
        k, v = self.to_linear_kv(x).chunk(2, dim=1)
        q, k, v = (rearrange(t, "b (h c) x y -> (b h) (x y) c", h=self.heads) for t in (q, k, v))
        q = q.softmax(dim=-1) * self.scale
        k = k.softmax(dim=-2)
        context = torch.einsum("bnd,bne->bde", k, v)
        out = torch.einsum("bnd,bde->bne", q, context)
        return F.gelu(rearrange(out, "(b h) (x y) d -> b (h d) x y", h=self.heads, x=h, y=w))

    def _local(self, x: Tensor) -> Tensor:
        q = self.to_q(x)
        k, v = self.to_kv(x).chunk(2, dim=1)
        q, k, v = (rearrange(t, "b (h c) x y -> (b h) c x y", h=self.heads) for t in (q, k, v))
        out = neighbourhood_attention(q * self.scale, k, v, self.kernel_size)
        return rearrange(out, "(b h) d x y -> b (h d) x y", h=self.heads)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_out(torch.cat([self._linear(x), self._local(x)], dim=1))


class LinearAttention(nn.Module):
    """Linear attention over all pixels (Shen et al.), as in the diffusion U-Net.

    Queries are softmax-normalised over their features, keys over the pixels; the output is mixed
    by a 1x1 conv and channel-normalised. Shapes: (B, dim, H, W) -> (B, dim, H, W).
    """

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32) -> None:
        super().__init__()
        self.heads = heads
        self.scale = dim_head**-0.5
        self.to_qkv = nn.Conv2d(dim, 3 * heads * dim_head, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(heads * dim_head, dim, 1), ChannelNorm(dim))

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        q, k, v = (
            rearrange(t, "b (h c) x y -> b h c (x y)", h=self.heads)
            for t in self.to_qkv(x).chunk(3, dim=1)
        )
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q)
        return self.to_out(rearrange(out, "b h c (x y) -> b (h c) x y", x=h, y=w))


class SpatialAttention(nn.Module):
    """Softmax attention of every pixel over all pixels (Vaswani et al.), with a 1x1 output conv.

    Shapes: (B, dim, H, W) -> (B, dim, H, W).
    """

    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Conv2d(dim, 3 * heads * dim_head, 1, bias=False)
        self.to_out = nn.Conv2d(heads * dim_head, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        q, k, v = (
            rearrange(t, "b (h c) x y -> b h (x y) c", h=self.heads)
            for t in self.to_qkv(x).chunk(3, dim=1)
        )
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1 / sqrt(dim_head)
        return self.to_out(rearrange(out, "b h (x y) c -> b (h c) x y", x=h, y=w))
