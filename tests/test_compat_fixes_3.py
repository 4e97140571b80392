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
- torch.jit.script_method (RWKV_in_150_lines.py's ScriptModule RNN, RWKV-LM's MyFunction) was
  missing, and torch.jit.isinstance / Error / Future.
- torch.distributed's collective signatures: `all_gather(tensor_list, tensor, async_op=True)
  .wait()` (DINO's eval_knn, MoCo's concat_all_gather) raised TypeError (descent's
  all_gather(tensor) returns a list); `group=` / `async_op=` were refused everywhere;
  `all_gather_object(object_list, obj)` too. init_process_group(world_size=1) outside a launcher
  imported mpi4py (MPI's start: a second) for a group of one; it no longer does.
- `out=` an expanded tensor raised NumPy's ValueError (read-only destination) where PyTorch
  raises its RuntimeError about one memory location written twice.
"""

from __future__ import annotations

import os
import socket
import sys

import numpy as np
import pytest
import torch
import torch.distributed as tdist

import descent as ds
import descent.distributed as ddist

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
def test_spatial_transformer_at_identity_gets_pytorchs_theta_gradient(padding_mode, align_corners):
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


def _script_cell(lib):
    class Cell(lib.jit.ScriptModule):
        def __init__(self):
            super().__init__()
            self.w = lib.linspace(-1.0, 1.0, 4)

        @lib.jit.script_method
        def step(self, x, state, i: int):
            y = x * self.w + state[i]
            state[i] = y  # the state row is written in place, as RWKV's RNN mode
            return y.sum()

    return Cell()


def test_jit_script_method_on_a_script_module():
    outs = []
    for lib in (torch, ds):
        cell = _script_cell(lib)
        state = lib.zeros(2, 4)
        total = [cell.step(lib.ones(4) * k, state, k % 2).item() for k in range(3)]
        outs.append((total, state.tolist()))
    assert outs[1] == outs[0]
    assert "script_method" in ds.jit.__all__


def test_jit_isinstance_checks_element_types_as_pytorch():
    cases = [
        ([1, 2], list[int]), ([1, "a"], list[int]), ({"a": [1.0]}, dict[str, list[float]]),
        ({1: 2}, dict[str, int]), ((1, "x"), tuple[int, str]), ((1,), tuple[int, str]),
        (None, list[int] | None), ([3], list[int] | None), ("s", int | str), ("s", int | None),
        (3.0, (int, float)), ([[1], [2, "a"]], list[list[int]]),
    ]  # fmt: skip
    for obj, t in cases:
        assert ds.jit.isinstance(obj, t) == torch.jit.isinstance(obj, t), (obj, t)
    assert ds.jit.isinstance([ds.ones(2)], list[ds.Tensor])
    assert not ds.jit.isinstance([ds.ones(2), 1], list[ds.Tensor])
    with pytest.warns(UserWarning, match="inner type"):  # an empty container, as PyTorch
        assert ds.jit.isinstance([], list[int])
    for lib in (torch, ds):  # a container type without its element types
        with pytest.raises(RuntimeError, match="without a contained type"):
            lib.jit.isinstance([1], list)
    assert issubclass(ds.jit.Error, RuntimeError)
    assert isinstance(ds.jit.fork(lambda: 3), ds.jit.Future)


def test_distributed_collectives_take_pytorchs_signatures_in_a_group_of_one():
    if ddist.is_initialized() or ddist.launched_by_mpi() or tdist.is_initialized():
        pytest.skip("a process group is already set up in this process")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    had_mpi = "mpi4py" in sys.modules
    outs = []
    try:
        for lib, dist in ((torch, tdist), (ds, ddist)):
            dist.init_process_group(backend="gloo", init_method="env://", world_size=1, rank=0)
            try:
                assert dist.is_initialized() and dist.get_world_size() == 1
                index = lib.arange(3, 7)
                y_all = lib.empty(dist.get_world_size(), 4, dtype=index.dtype)
                y_l = list(y_all.unbind(0))
                work = dist.all_gather(y_l, index, async_op=True)
                work.wait()
                plain = [lib.zeros(4, dtype=index.dtype)]
                none = dist.all_gather(plain, index)
                t = lib.tensor([1.0, -2.0])
                dist.all_reduce(t, op=dist.ReduceOp.SUM)
                dist.all_reduce(t, group=None, async_op=True).wait()
                dist.broadcast(t, 0, async_op=True).wait()
                objs = [None]
                dist.all_gather_object(objs, {"rank": dist.get_rank()})
                dist.barrier(async_op=True).wait()
                outs.append((y_all.tolist(), lib.cat(y_l).tolist(), plain[0].tolist(), none,
                             t.tolist(), objs))  # fmt: skip
                with pytest.raises(RuntimeError):  # a list of the wrong length
                    dist.all_gather([lib.zeros(4), lib.zeros(4)], lib.zeros(4))
            finally:
                dist.destroy_process_group()
            assert not dist.is_initialized()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert outs[1] == outs[0]
    assert outs[0][0] == [[3, 4, 5, 6]]  # written through the unbind views
    # a group of one needs no MPI (importing mpi4py initialises it: about a second)
    assert had_mpi or "mpi4py" not in sys.modules
    assert ddist.all_gather(ds.ones(2))[0].tolist() == [1.0, 1.0]  # descent's own form


def test_out_into_an_expanded_tensor_is_pytorchs_runtime_error():
    for lib in (torch, ds):
        base = lib.ones(1, 4)
        with pytest.raises(RuntimeError, match="more than one element of the written-to"):
            lib.add(lib.ones(3, 4), 1, out=base.expand(3, 4))
        assert base.tolist() == [[1.0, 1.0, 1.0, 1.0]]
        same = lib.ones(1, 4).expand(1, 4)  # repeats nothing: written as PyTorch writes it
        lib.mul(lib.ones(1, 4), 3, out=same)
        assert same.tolist() == [[3.0, 3.0, 3.0, 3.0]]
