"""Fixes found while writing session 20's compat programs (tests/compat/programs, helper-142),
each differential against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import pytest

import descent

torch = pytest.importorskip("torch")


# norm_init_zoo: calculate_gain("linear" / conv / "sigmoid") is the int 1 in PyTorch; descent
# returned 1.0, which a program's report (or a str() of it) tells apart.
@pytest.mark.parametrize(
    "name", ["linear", "conv2d", "conv_transpose1d", "sigmoid", "tanh", "relu", "selu"]
)
def test_calculate_gain_types(name):
    ours = descent.nn.init.calculate_gain(name)
    theirs = torch.nn.init.calculate_gain(name)
    assert type(ours) is type(theirs) and ours == theirs


# norm_init_zoo: nn.utils.convert_conv2d_weight_memory_format was a no-op; PyTorch lays every
# Conv2d / ConvTranspose2d weight (recursively) out in the format, and back with
# contiguous_format. The 3-d form does the same for Conv3d / ConvTranspose3d.
@pytest.mark.parametrize("dims", [2, 3])
def test_convert_conv_weight_memory_format(dims):
    def run(lib):
        nn = lib.nn
        conv, convt = (
            (nn.Conv2d, nn.ConvTranspose2d) if dims == 2 else (nn.Conv3d, nn.ConvTranspose3d)
        )
        fmt = lib.channels_last if dims == 2 else lib.channels_last_3d
        fn = getattr(nn.utils, f"convert_conv{dims}d_weight_memory_format")
        m = nn.Sequential(conv(3, 4, 3), nn.Sequential(convt(4, 2, 3), nn.Linear(2, 2)))
        w = m[0].weight
        out = fn(m, fmt)
        got = [out is m, m[0].weight is w]
        for p in (m[0].weight, m[1][0].weight):
            got += [p.stride(), p.is_contiguous(), p.is_contiguous(memory_format=fmt)]
        got.append(m[1][1].weight.stride())
        fn(m, lib.contiguous_format)
        got += [m[0].weight.stride(), m[0].weight.is_contiguous()]
        return got

    assert run(descent) == run(torch)
