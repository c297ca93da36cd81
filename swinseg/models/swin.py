"""Swin Transformer (Liu et al., 2021) as a classifier and as a dense-prediction backbone.

With the same weights, the backbone (``num_classes=0``) computes what MMSegmentation's
``mmseg.models.backbones.SwinTransformer`` computes, and the classifier (``num_classes > 0``)
what the official ``microsoft/Swin-Transformer`` model computes. Both accept any input size.

Feature maps travel between modules channels-last, as ``(B, H, W, C)``.

Weight layout (the native one; converters in :mod:`swinseg.weights` map the others):

- ``stages.{i}`` holds the blocks of stage ``i`` and, at its end, the patch merging
  ``stages.{i}.downsample`` (official and MMSegmentation placement);
- patch merging concatenates the 2x2 neighbours in the official order
  (0,0), (1,0), (0,1), (1,1) as (row, column) offsets;
- attention uses one ``qkv`` projection, the MLP ``fc1``/``fc2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..configs.rules import BACKBONE_RULES, check_rules
from ..configs.schema import plain
from ..data.transforms import Preprocessing
from ..ops import linear, padded, relative_position_index, shift_window_mask, swin_block, window_attention

__all__ = ["SwinTransformer", "shifted_window_attention", "window_partition", "window_reverse"]


class DropPath(nn.Module):
    """Stochastic depth: zero whole samples with probability ``p`` while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PatchEmbed(nn.Module):
    """Image (B, C, H, W) -> tokens (B, ceil(H/p), ceil(W/p), D).

    Pads bottom/right with zeros to a multiple of the patch size ``p``, projects each patch with a
    ``p`` x ``p`` convolution of stride ``p``, then applies LayerNorm when ``norm`` is set.
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int, norm: bool) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims) if norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        H, W = x.shape[-2:]
        x = F.pad(x, (0, padded(W, p) - W, 0, padded(H, p) - H))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C).

    Pads odd sizes bottom/right, concatenates each 2x2 neighbourhood in the official order
    (0,0), (1,0), (0,1), (1,1), normalizes the 4C channels and reduces them linearly to 2C.
    """

    def __init__(self, dims: int, norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dims) if norm else nn.Identity()
        self.reduction = nn.Linear(4 * dims, 2 * dims, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, C = x.shape
        H2, W2 = (H + 1) // 2, (W + 1) // 2
        x = F.pad(x, (0, 0, 0, 2 * W2 - W, 0, 2 * H2 - H))
        x = x.view(B, H2, 2, W2, 2, C).permute(0, 1, 3, 4, 2, 5).reshape(B, H2, W2, 4 * C)
        return linear(self.norm(x), self.reduction)


class Mlp(nn.Module):
    """Linear -> exact GELU -> dropout -> Linear -> dropout, on the last dimension (fc1 and its
    GELU as one :func:`swinseg.ops.linear`)."""

    def __init__(self, dims: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.fc2 = nn.Linear(hidden, dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(linear(self.drop(linear(x, self.fc1, gelu=True)), self.fc2))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias.

    The bias table has shape ((2M-1)^2, heads) for the configured window ``M``; a smaller window
    (the official classifier's rule for small maps) uses the matching part of the same table.
    """

    def __init__(
        self,
        dims: int,
        num_heads: int,
        window_size: int,
        qkv_bias: bool,
        qk_scale: float | None,
        attn_drop: float,
        proj_drop: float,
    ) -> None:
        super().__init__()
        if dims % num_heads:
            raise ValueError(f"embedding width {dims} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = qk_scale or (dims // num_heads) ** -0.5
        self.attn_drop = attn_drop
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size, window_size), persistent=False)
        self.qkv = nn.Linear(dims, 3 * dims, bias=qkv_bias)
        self.proj = nn.Linear(dims, dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def relative_position_bias(self, window: int) -> Tensor:
        """(heads, window^2, window^2) bias for a ``window`` x ``window`` window."""
        index = self.relative_position_index
        if window != self.window_size:
            index = relative_position_index(window, self.window_size).to(index.device)
        n = window * window
        return self.relative_position_bias_table[index.view(-1)].view(n, n, -1).permute(2, 0, 1)

    def attention_mask(self, window: int, shift_mask: Tensor | None = None) -> Tensor:
        """The additive mask of :meth:`forward`: the relative position bias, plus the
        (num_windows, N, N) shift mask where there is one, in the dtype the attention computes in
        (autocast's, when it is on). (1 or num_windows, heads, N, N)."""
        bias = self.relative_position_bias(window).unsqueeze(0)
        mask = bias if shift_mask is None else shift_mask.unsqueeze(1).to(bias.dtype) + bias
        device = mask.device.type
        return mask.to(torch.get_autocast_dtype(device)) if torch.is_autocast_enabled(device) else mask

    def forward(self, x: Tensor, attn_mask: Tensor) -> Tensor:
        """(B, num_windows, N, C) -> same shape, with :meth:`attention_mask`'s ``attn_mask``; the
        attention kernel is :func:`swinseg.ops.window_attention`'s choice."""
        B, nW, N, C = x.shape
        heads = self.num_heads
        q, k, v = linear(x, self.qkv).view(B, nW, N, 3, heads, C // heads).permute(3, 0, 1, 4, 2, 5).unbind(0)
        x = window_attention(q, k, v, attn_mask, self.scale, self.attn_drop if self.training else 0.0)
        return self.proj_drop(linear(x.transpose(2, 3).reshape(B, nW, N, C), self.proj))


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C), H and W multiples of ``window`` -> (B, num_windows, window^2, C): windows
    row by row, the tokens of each window row by row."""
    B, H, W, C = x.shape
    x = x.view(B, H // window, window, W // window, window, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, -1, window * window, C)


def window_reverse(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """The inverse of :func:`window_partition`: (B, num_windows, window^2, C) -> (B, height, width, C)."""
    B, C = windows.shape[0], windows.shape[-1]
    x = windows.view(B, height // window, width // window, window, window, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, height, width, C)


def shifted_window_attention(x: Tensor, attn: WindowAttention, window: int, shift: int, shift_mask: Tensor | None) -> Tensor:
    """Self-attention within ``window`` x ``window`` windows of a (B, H, W, C) map, shifted by
    ``shift`` (the paper's W-MSA and SW-MSA) -> (B, H, W, C)."""
    B, H, W, C = x.shape
    # pad bottom/right to multiples of the window
    Hp, Wp = padded(H, window), padded(W, window)
    x = F.pad(x, (0, 0, 0, Wp - W, 0, Hp - H))
    # cyclic shift towards the top left: shifted windows become regular ones
    x = torch.roll(x, (-shift, -shift), dims=(1, 2))
    # partition into windows of window^2 tokens
    windows = window_partition(x, window)
    # attention in each window, with the relative position bias; the shift mask keeps apart
    # tokens that the cyclic shift brought together
    windows = attn(windows, attn.attention_mask(window, shift_mask))
    # reverse the partition, the shift and the padding
    x = window_reverse(windows, window, Hp, Wp)
    x = torch.roll(x, (shift, shift), dims=(1, 2))
    return x[:, :H, :W]


class SwinBlock(nn.Module):
    """``x + attention(norm1(x))`` then ``x + mlp(norm2(x))`` on (B, H, W, C) maps, the attention
    within windows shifted by ``shift``."""

    def __init__(
        self,
        dims: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: float | None,
        drop: float,
        attn_drop: float,
        drop_path: float,
        with_cp: bool,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dims)
        self.attn = WindowAttention(dims, num_heads, window_size, qkv_bias, qk_scale, attn_drop, drop)
        self.norm2 = nn.LayerNorm(dims)
        self.mlp = Mlp(dims, int(dims * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path)
        self.with_cp = with_cp

    def steps(self, x: Tensor, window: int, shift: int, mask: Tensor | None) -> Tensor:
        """What the block computes, as written: (B, H, W, C) -> same shape."""
        x = x + self.drop_path(shifted_window_attention(self.norm1(x), self.attn, window, shift, mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward(self, x: Tensor, window: int, shift: int, mask: Tensor | None) -> Tensor:
        """:meth:`steps`, run as :func:`swinseg.ops.swin_block` chooses (windows by gathers, in
        chunks without gradients on a CPU, recomputed in the backward pass of training)."""
        return swin_block(self, x, window, shift, mask)


class SwinStage(nn.Module):
    """Blocks alternating regular and shifted windows, then optional patch merging.

    Returns ``(out, next)``: the stage output (B, H, W, C) and the input of the next stage
    (merged to half size when ``downsample`` is set).
    """

    def __init__(
        self,
        dims: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: float | None,
        drop: float,
        attn_drop: float,
        drop_path: Sequence[float],
        downsample: bool,
        patch_norm: bool,
        always_partition: bool,
        with_cp: bool,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.always_partition = always_partition
        self.blocks = nn.ModuleList(
            SwinBlock(dims, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path[i], with_cp)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dims, patch_norm) if downsample else None

    def window_and_shift(self, height: int, width: int) -> tuple[int, int]:
        """Window and shift for a map of this size.

        MMSegmentation (``always_partition``) keeps the configured window and shift at every size.
        The official classifier attends over the whole map, unshifted, once it is no larger than
        the window.
        """
        if not self.always_partition and min(height, width) <= self.window_size:
            return min(height, width), 0
        return self.window_size, self.window_size // 2

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        H, W = x.shape[1:3]
        window, shift = self.window_and_shift(H, W)
        mask = None
        if shift and len(self.blocks) > 1:
            mask = shift_window_mask(padded(H, window), padded(W, window), window, shift, x.device)
        for i, block in enumerate(self.blocks):
            x = block(x, window, shift, mask) if i % 2 else block(x, window, 0, None)
        return x, (self.downsample(x) if self.downsample is not None else x)


class SwinTransformer(nn.Module):
    """Swin Transformer; arguments carry MMSegmentation's names.

    Args:
        pretrain_img_size: image size of pre-training; sets the absolute position embedding grid.
        in_channels: input channels.
        embed_dims: width of the first stage; it doubles at every patch merging.
        patch_size: patch size of the embedding (must equal ``strides[0]``).
        window_size: attention window ``M`` (in tokens).
        mlp_ratio: MLP hidden width relative to the stage width.
        depths: blocks per stage.
        num_heads: attention heads per stage.
        strides: patch embedding stride, then 2 for every patch merging.
        out_indices: stages whose normalized outputs the backbone returns.
        qkv_bias: learn a bias for q, k and v.
        qk_scale: override of the attention scale ``head_dim ** -0.5``.
        patch_norm: LayerNorm after the patch embedding and inside patch merging.
        drop_rate: dropout after the position embedding, in the MLP and after attention.
        attn_drop_rate: dropout on attention weights.
        drop_path_rate: stochastic depth, rising linearly from 0 over all blocks to this value.
        use_abs_pos_embed: add a learned absolute position embedding (resized bicubically when
            the token grid differs from the pre-training one).
        frozen_stages: freeze the patch embedding (>= 0) and stages ``1..frozen_stages``.
        with_cp: MMSegmentation's name for activation checkpointing (recomputation; not a
            weights file). Training always recomputes part of each block: it keeps the block
            input and the outputs of qkv and fc1, and recomputes norms, shifts, attention and
            GELU in the backward pass. ``with_cp=True`` keeps only the block input and
            recomputes the whole block: less memory, about one more forward pass of time.
        num_classes: 0 builds a backbone returning a list of (B, C_i, H_i, W_i) maps with output
            norms ``norm{i}``; > 0 builds a classifier (final LayerNorm, global average pool,
            linear head) returning (B, num_classes) logits.
        always_partition: keep the window and shift on maps no larger than the window
            (MMSegmentation); False applies the official classifier's single-window rule.
            None chooses True for a backbone and False for a classifier.
    """

    def __init__(
        self,
        pretrain_img_size: int | tuple[int, int] = 224,
        in_channels: int = 3,
        embed_dims: int = 96,
        patch_size: int = 4,
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        strides: Sequence[int] = (4, 2, 2, 2),
        out_indices: Sequence[int] = (0, 1, 2, 3),
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        patch_norm: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        use_abs_pos_embed: bool = False,
        frozen_stages: int = -1,
        with_cp: bool = False,
        num_classes: int = 0,
        always_partition: bool | None = None,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = plain({k: v for k, v in locals().items() if k not in ("self", "__class__")})
        check_rules(self.config, BACKBONE_RULES, "SwinTransformer: ")
        num_stages = len(depths)
        if len(num_heads) != num_stages or len(strides) != num_stages:
            raise ValueError(
                f"depths, num_heads and strides need one entry per stage, got {len(depths)}, {len(num_heads)} and {len(strides)}"
            )
        if strides[0] != patch_size:
            raise ValueError(f"strides[0]={strides[0]} must equal patch_size={patch_size} (non-overlapping patches)")
        if any(s != 2 for s in strides[1:]):
            raise ValueError(f"patch merging halves the map: strides[1:] must all be 2, got {list(strides[1:])}")
        if num_classes == 0 and not all(0 <= i < num_stages for i in out_indices):  # a classifier has no stage outputs
            raise ValueError(f"out_indices {list(out_indices)} must lie in 0..{num_stages - 1}")
        pair = (pretrain_img_size,) * 2 if isinstance(pretrain_img_size, int) else tuple(pretrain_img_size)
        if len(pair) != 2:
            raise ValueError(f"pretrain_img_size must be an int or an (H, W) pair, got {pretrain_img_size!r}")
        if always_partition is None:
            always_partition = num_classes == 0

        self.num_classes = num_classes
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.num_features = [embed_dims * 2**i for i in range(num_stages)]

        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size, patch_norm)
        if use_abs_pos_embed:
            self.pos_grid = (pair[0] // patch_size, pair[1] // patch_size)
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], embed_dims))
        else:
            self.absolute_pos_embed = None
        self.drop_after_pos = nn.Dropout(drop_rate)

        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.stages = nn.ModuleList(
            SwinStage(
                dims=self.num_features[i],
                depth=depths[i],
                num_heads=num_heads[i],
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                qk_scale=qk_scale,
                drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=rates[sum(depths[:i]) : sum(depths[: i + 1])],
                downsample=i < num_stages - 1,
                patch_norm=patch_norm,
                always_partition=always_partition,
                with_cp=with_cp,
            )
            for i in range(num_stages)
        )
        if num_classes > 0:
            self.norm = nn.LayerNorm(self.num_features[-1])
            self.head = nn.Linear(self.num_features[-1], num_classes)
        else:
            for i in self.out_indices:
                self.add_module(f"norm{i}", nn.LayerNorm(self.num_features[i]))
        self.init_weights()
        self._freeze_stages()

    def init_weights(self) -> None:
        """Truncated-normal (std 0.02) linear weights and bias tables, zero biases, unit LayerNorms."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, WindowAttention):
                nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
        if self.absolute_pos_embed is not None:
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        frozen: list[nn.Module] = [self.patch_embed]
        for i in range(min(self.frozen_stages, len(self.stages))):
            frozen.append(self.stages[i])
            if hasattr(self, f"norm{i}"):
                frozen.append(getattr(self, f"norm{i}"))
        return frozen

    def _freeze_stages(self) -> None:
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False
        if self.frozen_stages >= 0 and self.absolute_pos_embed is not None:
            self.absolute_pos_embed.requires_grad = False

    def train(self, mode: bool = True) -> SwinTransformer:
        super().train(mode)
        for m in self._frozen_modules():
            m.eval()
        return self

    def _add_pos_embed(self, x: Tensor) -> Tensor:
        pos = self.absolute_pos_embed
        grid = tuple(x.shape[1:3])
        pos = pos.view(1, *self.pos_grid, -1)
        if grid != self.pos_grid:
            pos = F.interpolate(pos.permute(0, 3, 1, 2), size=grid, mode="bicubic", align_corners=False)
            pos = pos.permute(0, 2, 3, 1)
        return x + pos

    @property
    def preprocessing(self) -> Preprocessing:
        """The official classifier's evaluation: bicubic resize and centre crop to the
        pre-training size, ImageNet normalization."""
        size = self.config["pretrain_img_size"]
        return Preprocessing("center_crop", (size if isinstance(size, int) else size[0],), "bicubic")

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Image (B, C, H, W) -> every stage's output, (B, H_i, W_i, C_i) with H_i = ceil(H / (4 * 2^i))."""
        channels = self.patch_embed.proj.in_channels
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"expected images of shape (B, {channels}, H, W), got {tuple(x.shape)}")
        x = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            x = self._add_pos_embed(x)
        x = self.drop_after_pos(x)
        outs = []
        for stage in self.stages:
            out, x = stage(x)
            outs.append(out)
        return outs

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        """(B, C, H, W) -> list of (B, C_i, H_i, W_i) maps (backbone) or (B, num_classes) logits."""
        outs = self.forward_stages(x)
        if self.num_classes > 0:
            return self.head(self.norm(outs[-1]).mean(dim=(1, 2)))
        return [getattr(self, f"norm{i}")(outs[i]).permute(0, 3, 1, 2).contiguous() for i in self.out_indices]
