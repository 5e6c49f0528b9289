"""The fixed-order convolutions (pipeline/models/conv.py): the same function as torch's, in every form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.models import conv

# (input shape, weight shape, stride, padding, groups): each layer shape the models build
LAYERS = {
    "first conv, few channels": ((4, 2, 8, 8), (8, 2, 3, 3), 1, 1, 1),
    "strided conv, channels-last": ((4, 8, 8, 8), (16, 8, 4, 4), 2, 1, 1),
    "to one channel, as a transposed conv": ((4, 8, 28, 28), (1, 8, 3, 3), 1, 1, 1),
    "to three channels": ((4, 8, 9, 9), (3, 8, 3, 3), 1, 1, 1),
    "grouped, one channel per group": ((4, 5, 8, 8), (20, 1, 3, 3), 1, 1, 5),
    "grouped, many channels per group": ((4, 20, 4, 4), (40, 4, 3, 3), 1, 1, 5),
}


def test_portable_processes_run_without_onednn_and_nnpack() -> None:
    assert not torch.backends.mkldnn.enabled and not torch._C._get_nnpack_enabled()


@pytest.mark.parametrize("name", LAYERS)
def test_conv2d_computes_what_torch_does_with_the_same_gradients(name: str) -> None:
    x_shape, w_shape, stride, padding, groups = LAYERS[name]
    torch.manual_seed(0)
    x, w, b = torch.randn(x_shape), torch.randn(w_shape), torch.randn(w_shape[0])
    ours = [t.clone().requires_grad_() for t in (x, w, b)]
    theirs = [t.clone().requires_grad_() for t in (x, w, b)]
    out = conv.conv2d(*ours, stride, padding, groups)
    expected = F.conv2d(*theirs, stride, padding, 1, groups)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    (out * torch.arange(out.numel()).view_as(out).sin()).sum().backward()
    (expected * torch.arange(expected.numel()).view_as(expected).sin()).sum().backward()
    for mine, reference in zip(ours, theirs):
        torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-4, atol=1e-3)


def test_modules_keep_torch_names_and_compute_the_same() -> None:
    torch.manual_seed(0)
    ours, plain = conv.ConvTranspose2d(8, 4, 4, stride=2, padding=1), torch.nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(3, 8, 7, 7)
    torch.testing.assert_close(ours(x), plain(x), rtol=1e-4, atol=1e-4)
    ours, plain = conv.Conv2d(8, 1, 3, padding=1), torch.nn.Conv2d(8, 1, 3, padding=1)
    plain.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x), plain(x), rtol=1e-4, atol=1e-4)


def test_unsupported_settings_are_refused_rather_than_computed_otherwise() -> None:
    with pytest.raises(ValueError, match="dilation"):
        conv.Conv2d(2, 2, 3, dilation=2)
    with pytest.raises(ValueError, match="output padding"):
        conv.ConvTranspose2d(2, 2, 3, stride=2, output_padding=1)
