"""Convolutions that sum in an order the code fixes, and run about as fast as oneDNN's.

In `trainer.cpu_kernels: portable` oneDNN and NNPACK are switched off (`kernels.pin`): both choose
their loop blocking from the CPU's cache sizes, so two machines with the same instruction set
summed in another order and wrote other bits (issue #38). A CPU convolution then runs ATen's
im2col / col2im loops around MKL's matrix products, whose order `MKL_CBWR` fixes. In the default
layout those are ~2x slower than oneDNN on this project's small images; three rules, fixed by the
layer's shape (never by a timing taken on this machine, which would make the bits depend on it
again), bring them back near oneDNN's cost (per layer in docs/performance.md):

* a layer that reads few channels per group (the first conv, 1-2 channels; each batched
  classifier's first conv) takes its input contiguous: im2col of 1-2 planes is cheap that way;
* every other layer takes it channels-last, where ATen's im2col copies whole pixel vectors;
* a stride-1 conv to fewer channels than it reads (the decoder's last layer, to 1 or 3 channels)
  runs as the transposed convolution that equals it: one matrix product into `out * k * k`
  columns, then col2im, instead of unfolding `in * k * k` columns per pixel (9x less memory).

On a GPU, and with oneDNN on (`native`), these are the plain `torch.nn.functional` calls.
`Conv2d` and `ConvTranspose2d` keep `nn`'s parameters and `state_dict` names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

FEW_CHANNELS = 4  # input channels per group up to which im2col runs faster on a contiguous input


def fixed_order(x: torch.Tensor) -> bool:
    """Whether this convolution runs ATen's own CPU kernels (oneDNN switched off)."""
    return x.device.type == "cpu" and not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


def conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, groups: int = 1,
) -> torch.Tensor:
    """`F.conv2d` (dilation 1), in the layout and form that suits ATen's kernels when they run it."""
    if not fixed_order(x):
        return F.conv2d(x, weight, bias, stride, padding, 1, groups)
    out_channels, in_per_group, kh, kw = weight.shape
    pad = _pair(padding)
    if groups == 1 and _pair(stride) == (1, 1) and out_channels < in_per_group and pad[0] < kh and pad[1] < kw:
        # conv(x, w, p) == conv_transpose(x, w flipped, k - 1 - p) at stride 1: the same sums, no im2col
        flipped = weight.flip(2, 3).transpose(0, 1)  # (in, out, kh, kw)
        return F.conv_transpose2d(x.contiguous(), flipped, bias, padding=(kh - 1 - pad[0], kw - 1 - pad[1]))
    layout = torch.contiguous_format if in_per_group <= FEW_CHANNELS else torch.channels_last
    # ATen runs channels-last if either operand is, so the weight follows the input's layout
    return F.conv2d(x.contiguous(memory_format=layout), weight.contiguous(memory_format=layout), bias, stride, padding, 1, groups)


def conv_transpose2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """`F.conv_transpose2d` (no output padding, dilation 1, one group); channels-last on ATen's kernels."""
    if fixed_order(x):
        x = x.contiguous(memory_format=torch.channels_last)
    return F.conv_transpose2d(x, weight, bias, stride, padding)


class Conv2d(nn.Conv2d):
    """`nn.Conv2d` through `conv2d` above (zero padding, dilation 1)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.dilation != (1, 1) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("Conv2d here supports numeric zero padding and dilation 1 only")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)


class ConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` through `conv_transpose2d` above (one group, no output padding)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.dilation != (1, 1) or self.output_padding != (0, 0):
            raise ValueError("ConvTranspose2d here supports one group, dilation 1 and no output padding only")

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("ConvTranspose2d here takes no output_size")
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding)
