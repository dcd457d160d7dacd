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
        h, w = x.shape[-2:]
        q = self.to_q(x)
        k, v = self.to_kv(x).chunk(2, dim=1)
        q, k, v = (rearrange(t, "b (h c) x y -> (b h) c x y", h=self.heads) for t in (q, k, v))
        pad = self.kernel_size // 2
        k, v = (
            rearrange(
                F.unfold(t, kernel_size=self.kernel_size, padding=pad),
                "b (d j) n -> b n j d",
                d=self.dim_head,
            )
            for t in (k, v)
        )
        q = rearrange(q, "b c x y -> b (x y) c") * self.scale
        sim = torch.einsum("bid,bijd->bij", q, k)
        attn = (sim - sim.amax(dim=-1, keepdim=True).detach()).softmax(dim=-1)
        out = torch.einsum("bij,bijd->bid", attn, v)
        return rearrange(out, "(b h) (x y) d -> b (h d) x y", h=self.heads, x=h, y=w)

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
