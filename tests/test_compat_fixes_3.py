"""Disagreements with PyTorch found by running real PyTorch programs on descent
(tests/compat/programs), third file: each test compares with torch 2.13 on the case that failed.

- torch.linspace's CPU kernel counts the first half of the values up from start and the second
  half down from end, each value one fused multiply-add (float16 / bfloat16: every operation
  rounded, the index included); descent took NumPy's linspace, one ulp off at many points for
  float32 / float64, and for integer dtypes truncated e - step * k computed with two roundings
  (linspace(3, -7, 7, dtype=int64) gave -2 where PyTorch gives -1). Bounds outside an integer or
  half dtype's range are refused as PyTorch refuses them (int8 wrapped 1000 to -24).
- F.affine_grid built its base grid in float64 ((2i + 1) / n - 1); PyTorch's is linspace(-1, 1)
  in theta's dtype, times (n - 1) / n without align_corners. Grid points one ulp off an integer
  pixel coordinate move grid_sample's floor, and the gradient of theta jumps: a spatial
  transformer initialised to the identity (the STN tutorial) got theta gradients 4.0 apart.
- torch.jit.script_method (RWKV_in_150_lines.py's ScriptModule RNN) was missing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

LINSPACE_BOUNDS = [(0, 10), (3, -7), (-1, 1), (0.5, 7.25), (-0.9375, 0.9375), (2.7, -3.2)]
LINSPACE_STEPS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 16, 17, 31, 33, 64, 100, 1000]


def _values(t) -> np.ndarray:
    return t.float().numpy() if "bfloat16" in str(t.dtype) else t.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "uint8"])
def test_linspace_is_pytorchs_kernel_value_for_value(dtype):
    for start, end in LINSPACE_BOUNDS:
        if dtype == "uint8" and min(start, end) < 0:
            continue
        for steps in LINSPACE_STEPS:
            want = _values(torch.linspace(start, end, steps, dtype=getattr(torch, dtype)))
            got = _values(ds.linspace(start, end, steps, dtype=getattr(ds, dtype)))
            assert got.dtype == want.dtype
            # bitwise: these are the grids that grid_sample floors and programs index with
            assert got.tobytes() == want.tobytes(), (start, end, steps)


def test_linspace_integer_descending_truncates_like_pytorch():
    want = torch.linspace(3, -7, 7, dtype=torch.int64)
    got = ds.linspace(3, -7, 7, dtype=ds.int64)
    assert want.tolist() == [3, 1, 0, -1, -3, -5, -7]
    assert got.tolist() == want.tolist()
    # the default float dtype, 0-d tensor bounds and float64 by set_default_dtype
    assert (
        ds.linspace(ds.tensor(0.1), ds.tensor(0.9), 7).numpy().tobytes()
        == torch.linspace(torch.tensor(0.1), torch.tensor(0.9), 7).numpy().tobytes()
    )


def test_linspace_refuses_bounds_outside_the_dtype():
    for lib in (torch, ds):
        with pytest.raises(RuntimeError, match="cannot be converted"):
            lib.linspace(1, 1000, 5, dtype=lib.int8)
        with pytest.raises(RuntimeError, match="cannot be converted"):
            lib.linspace(1e30, 0, 3, dtype=lib.float16)
        # one step is start itself: float16 overflows to inf unchecked, as PyTorch
        assert lib.linspace(1e30, 0, 1, dtype=lib.float16).float().tolist() == [float("inf")]
        # uint8 takes a negative start wrapped (-3 -> 253), as PyTorch's conversion
    assert (
        ds.linspace(-3, 5, 3, dtype=ds.uint8).tolist()
        == torch.linspace(-3, 5, 3, dtype=torch.uint8).tolist()
    )


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_identity_is_pytorchs_grid(align_corners):
    for size in [(1, 1, 4, 5), (2, 3, 7, 16), (1, 2, 3, 4, 6)]:
        nd = len(size) - 2
        eye = np.tile(np.eye(nd, nd + 1, dtype=np.float32), (size[0], 1, 1))
        want = torch.nn.functional.affine_grid(torch.tensor(eye), list(size), align_corners)
        got = ds.nn.functional.affine_grid(ds.tensor(eye), list(size), align_corners)
        assert got.numpy().tobytes() == want.numpy().tobytes(), size


@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_spatial_transformer_at_identity_gets_pytorchs_theta_gradient(padding_mode,
                                                                      align_corners):
    """The STN tutorial's localisation head starts at the identity; then every sample lands on
    a pixel centre, where the bilinear gradient depends on which side the coordinate rounds."""
    img = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    theta0 = np.tile(np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32), (2, 1, 1))
    out = []
    for lib in (torch, ds):
        F = lib.nn.functional
        x = lib.tensor(img, requires_grad=True)
        theta = lib.tensor(theta0, requires_grad=True)
        grid = F.affine_grid(theta, [2, 3, 4, 5], align_corners=align_corners)
        y = F.grid_sample(x, grid, padding_mode=padding_mode, align_corners=align_corners)
        gx, gt = lib.autograd.grad((y * y).sum(), (x, theta))
        out.append([y.detach().numpy(), gx.numpy(), gt.numpy()])
    for want, got in zip(out[0], out[1], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_jit_script_method_on_a_script_module():
    outs = []
    for lib in (torch, ds):

        class Cell(lib.jit.ScriptModule):
            def __init__(self):
                super().__init__()
                self.w = lib.linspace(-1.0, 1.0, 4)

            @lib.jit.script_method
            def step(self, x, state, i: int):
                y = x * self.w + state[i]
                state[i] = y  # the state row is written in place, as RWKV's RNN mode
                return y.sum()

        cell = Cell()
        state = lib.zeros(2, 4)
        total = [cell.step(lib.ones(4) * k, state, k % 2).item() for k in range(3)]
        outs.append((total, state.tolist()))
    assert outs[1] == outs[0]
    assert "script_method" in ds.jit.__all__
