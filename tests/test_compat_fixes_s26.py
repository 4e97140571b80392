"""Differences session 26's real programs found (helper-188, tests/compat/programs): each test
runs the PyTorch line and the descent line side by side and fails on the old behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["float16", "float32", "float64", "complex64"])
def test_finfo_prints_as_torch(name):
    # PyTorch prints the limits with C's %g and lists smallest_normal; descent printed full
    # Python reprs without it
    assert repr(descent.finfo(getattr(descent, name))) == repr(torch.finfo(getattr(torch, name)))


@pytest.mark.parametrize("name", ["int8", "uint8", "int16", "int32", "int64"])
def test_iinfo_is_torch_iinfo(name):
    # descent returned NumPy's iinfo: another repr, and dtype a NumPy dtype, not a str
    ours, theirs = descent.iinfo(getattr(descent, name)), torch.iinfo(getattr(torch, name))
    assert repr(ours) == repr(theirs)
    assert (ours.bits, ours.min, ours.max, ours.dtype) == (
        theirs.bits,
        theirs.min,
        theirs.max,
        theirs.dtype,
    )
    assert type(ours.max) is int and type(ours.dtype) is str


def test_matrix_exp_in_a_float16_autocast_region():
    # PyTorch's matrix_exp is one kernel outside autocast's lists; descent's Pade products
    # were autocast to float16 and the float32 result was nan
    a = np.arange(16, dtype=np.float32).reshape(4, 4) / 20 - 0.4
    x = descent.tensor(a, requires_grad=True)
    with descent.autocast("cpu", dtype=descent.float16):
        y = descent.linalg.matrix_exp(x)
        y_method = x.matrix_exp()
    y.sum().backward()
    xt = torch.tensor(a, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.float16):
        yt = torch.linalg.matrix_exp(xt)
    yt.sum().backward()
    assert y.dtype == descent.float32 and y_method.dtype == descent.float32
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y_method.detach().numpy(), y.detach().numpy())


def _named_results(lib):
    A = lib.tensor([[2.0, 1.0], [1.0, 3.0]])
    LU, piv = lib.linalg.lu_factor(A)
    return [
        lib.histogram(lib.tensor([3.0, 1.0, 2.0]), 2),
        lib.geqrf(A),
        lib.lu_unpack(LU, piv),
        lib.slogdet(A),
        lib.svd(A),
        A.qr(),
        lib.linalg.cholesky_ex(A),
        lib.linalg.inv_ex(A),
        lib.linalg.solve_ex(A, A),
        lib.linalg.ldl_factor(A),
        lib.linalg.ldl_factor_ex(A),
        lib.linalg.lu(A),
        lib.linalg.lu_factor(A),
        lib.linalg.lu_factor_ex(A),
    ]


@pytest.mark.filterwarnings("ignore:torch.qr is deprecated")
def test_named_tuples_print_as_torch_return_types():
    # these printed as `LUFactorResult(LU=..., pivots=...)` (histogram: a bare pair), where
    # PyTorch prints `torch.return_types.linalg_lu_factor(\nLU=...,\npivots=...)`
    for ours, theirs in zip(_named_results(descent), _named_results(torch), strict=True):
        assert type(ours).__name__ == type(theirs).__name__
        assert repr(ours).replace("descent", "torch") == repr(theirs)
        assert ours._fields == tuple(f for f in ours._fields if hasattr(theirs, f))


class _NoStep:
    """An optimizer without an update rule: the scaler's bookkeeping is what is tested (a first
    SGD step costs seconds of one-time set-up in either library)."""

    def __init__(self, params):
        self.param_groups = [{"params": list(params)}]
        self.state = {}

    def step(self):
        pass

    def zero_grad(self):
        for p in self.param_groups[0]["params"]:
            p.grad = None


def test_grad_scaler_setters_and_growth_tracker():
    # set_growth_factor / set_backoff_factor / set_growth_interval and _get_growth_tracker
    # were missing (AttributeError); the figures are torch 2.13's for the same calls
    w = descent.nn.Parameter(descent.ones(2))
    opt = _NoStep([w])
    scaler = descent.amp.GradScaler("cpu", init_scale=8.0, growth_interval=5)
    scaler.set_growth_factor(4.0)
    scaler.set_backoff_factor(0.25)
    scaler.set_growth_interval(2)
    seen = []
    for loss_scale in (1.0, 1.0, 1.0, float("inf")):
        opt.zero_grad()
        scaler.scale((w * w).sum() * loss_scale).backward()
        scaler.step(opt)
        scaler.update()
        seen.append((scaler.get_scale(), scaler._get_growth_tracker()))
    assert seen == [(8.0, 1), (32.0, 0), (32.0, 1), (8.0, 0)]
    assert (scaler.get_growth_factor(), scaler.get_backoff_factor()) == (4.0, 0.25)


def _contractions(lib):
    r = np.random.default_rng(0)
    v = lib.tensor(r.standard_normal(4).astype(np.float32), requires_grad=True)
    A = lib.tensor(r.standard_normal((1, 4)).astype(np.float32))
    B = lib.tensor(r.standard_normal((2, 3)).astype(np.float32))
    C = lib.tensor(r.standard_normal((3, 4)).astype(np.float32))
    with lib.autocast("cpu", dtype=lib.float16):
        outs = [lib.inner(v, v), lib.inner(A, A), lib.tensordot(A, v, dims=1),
                lib.tensordot(B, B, dims=([0, 1], [0, 1])), lib.tensordot(B, B, dims=0),
                lib.inner(v, C)]  # fmt: skip
    outs[0].backward()
    return outs, v.grad


def test_one_by_one_contractions_in_autocast_are_float32_dots():
    # inner(v, v) and tensordot to a single element are dot products in PyTorch (float32 in a
    # float16 region); descent's matmul made them float16. Larger results stay float16.
    ours, g = _contractions(descent)
    theirs, gt = _contractions(torch)
    for o, t in zip(ours, theirs, strict=True):
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_allclose(o.detach().float().numpy(), t.detach().float().numpy(),
                                   rtol=1e-3, atol=1e-3)  # fmt: skip
    np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=1e-6)
