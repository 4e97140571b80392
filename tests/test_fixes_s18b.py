"""Session 18 (helper-130): selection ops on stride-0 and strided inputs, torch.nanmedian's
index on rows of NaN, against PyTorch 2.13.

`torch.tensor(1., dtype=torch.float16).expand(2).median(0)` returns whatever lies past the
one stored element in PyTorch 2.13 (-1567., 0., -1.9e23 from run to run: its dim-wise median
reads an expanded input as if it were contiguous), so the reference here is PyTorch on
`.contiguous()` of the same view, which descent matches.
"""

import numpy as np
import pytest
import torch

import descent

DTYPES = ["float16", "bfloat16", "float32"]

# name -> a view of a base tensor (the same calls in both libraries)
VIEWS = {
    "expand_front": lambda x: x.reshape((1, *x.shape)).expand((3, *x.shape)),
    "expand_back": lambda x: x.reshape((*x.shape, 1)).expand((*x.shape, 4)),
    "transpose": lambda x: x.transpose(0, 1) if x.ndim == 2 else x,
    "step": lambda x: x[::2],
}


def _pair(base, dtype):
    return (
        torch.tensor(base).to(getattr(torch, dtype)),
        descent.tensor(base).to(getattr(descent, dtype)),
    )


def _same(t, d):
    np.testing.assert_array_equal(np.asarray(d.float().numpy()), t.float().numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [1.0, -2.5])
def test_median_of_an_expanded_scalar(dtype, value):
    t, d = _pair(np.array(value, np.float32), dtype)
    for shape in [(2,), (5,), (3, 2)]:
        te, de = t.expand(shape).contiguous(), d.expand(shape)
        for dim in range(len(shape)):
            for op in ["median", "nanmedian"]:
                tr, dr = getattr(te, op)(dim), getattr(de, op)(dim)
                _same(tr[0], dr[0])
                _same(tr[1], dr[1])
        _same(te.median(), de.median())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("shape", [(1,), (5,), (4, 3)])
def test_selection_on_views(dtype, view, shape):
    rng = np.random.default_rng(len(shape) * 10 + shape[0])
    base = (rng.integers(-4, 5, size=shape) * 0.5).astype(np.float32)
    if base.size > 3:
        base.ravel()[1] = np.nan
    t, d = (VIEWS[view](a) for a in _pair(base, dtype))
    t = t.contiguous()
    for dim in range(t.ndim):
        for op, args in [("median", ()), ("nanmedian", ()), ("kthvalue", (1,)), ("mode", ())]:
            tr, dr = getattr(t, op)(*args, dim), getattr(d, op)(*args, dim)
            _same(tr[0], dr[0])
            _same(tr[1], dr[1])
        tq = torch.quantile(t.float(), 0.3, dim=dim)
        dq = descent.quantile(d.float(), 0.3, dim=dim)
        np.testing.assert_allclose(dq.numpy(), tq.numpy(), rtol=1e-6, equal_nan=True)
    for op in ["median", "nanmedian"]:
        _same(getattr(t, op)(), getattr(d, op)())


@pytest.mark.parametrize("dtype", DTYPES)
def test_nanmedian_index_of_a_row_of_nans(dtype):
    # PyTorch's index there is introselect's choice: 0, 0, 0, 2, 2, 3, 5, ... for n = 1, 2, ...
    for n in range(1, 40):
        base = np.full((3, n), np.nan, np.float32)
        base[1, 0] = 1.0
        t, d = _pair(base, dtype)
        tr, dr = t.nanmedian(1), d.nanmedian(1)
        _same(tr[0], dr[0])
        _same(tr[1], dr[1])
        tr, dr = t.T.contiguous().nanmedian(0), d.T.nanmedian(0)
        _same(tr[1], dr[1])


# repeat's backward (PyTorch's repeat_backward): each leading axis that repeat added is summed
# on its own, rounded to float16/bfloat16 each time, then one sum over the repeated axes
REPEATS = [
    ((3,), (5, 2)),
    ((3,), (7, 4, 3)),
    ((2, 3), (4, 1)),
    ((2, 3), (3, 5, 7)),
    ((4,), (300,)),
    ((2, 3, 4), (4, 1, 9)),
    ((5,), (1, 1, 40)),
    ((3, 2), (2, 33, 5)),
    ((), (6, 7)),
    ((2, 3), (1, 1)),
    ((2, 3), (0, 2)),
]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", range(len(REPEATS)))
@pytest.mark.filterwarnings(r"ignore:Using backward\(\) with create_graph")
@pytest.mark.parametrize("create_graph", [False, True])
def test_repeat_backward_rounds_as_pytorch(dtype, case, create_graph):
    shape, reps = REPEATS[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(shape).astype(np.float32)
    out_shape = tuple(torch.zeros(shape).repeat(*reps).shape)
    for _ in range(3):
        g = (rng.standard_normal(out_shape) * 10).astype(np.float32)
        tx, dx = _pair(x, dtype)
        tg, dg = _pair(g, dtype)
        tx.requires_grad_()
        dx.requires_grad_()
        tx.repeat(*reps).backward(tg, create_graph=create_graph)
        dx.repeat(*reps).backward(dg, create_graph=create_graph)
        assert dx.grad.dtype == getattr(descent, dtype)
        _same(tx.grad, dx.grad)


def test_repeat_backward_float32_and_float64():
    for dtype, rtol in [(np.float32, 1e-5), (np.float64, 1e-12)]:
        for shape, reps in REPEATS:
            rng = np.random.default_rng(0)
            x = rng.standard_normal(shape).astype(dtype)
            out_shape = tuple(torch.zeros(shape).repeat(*reps).shape)
            g = rng.standard_normal(out_shape).astype(dtype)
            tx = torch.tensor(x, requires_grad=True)
            dx = descent.tensor(x, requires_grad=True)
            tx.repeat(*reps).backward(torch.tensor(g))
            dx.repeat(*reps).backward(descent.tensor(g))
            np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=rtol)


# swap_tensors finds the live nodes that saved a tensor from autograd's weak list of saving
# nodes, not from a scan of the garbage collector's heap (3-5 s per call in a test worker)


def _swap_refusals(L):
    x, w = L.randn(4), L.randn(4, requires_grad=True)
    y = (w * x).sum()  # saves x (for w's gradient)
    out = []
    for t in (x, w):
        try:
            L.utils.swap_tensors(t, L.randn(4))
            out.append("swapped")
        except RuntimeError:
            out.append("refused")
    del y  # the graph dies with its output: x is no longer saved
    L.utils.swap_tensors(x, L.randn(4))
    return out


def test_swap_tensors_does_not_scan_the_heap(monkeypatch):
    import gc

    def no_scan(*args):
        raise AssertionError("gc.get_referrers scans the whole heap")

    monkeypatch.setattr(gc, "get_referrers", no_scan)
    assert _swap_refusals(descent) == _swap_refusals(torch) == ["refused", "swapped"]


def test_saving_nodes_list_stays_bounded():
    from descent import autograd

    w = descent.randn(3, requires_grad=True)
    for _ in range(20000):
        (w * w).sum()  # each graph dies at once
    # pruned whenever it outgrows its limit (twice the live saving nodes, at least 4096)
    assert len(autograd._savers) <= autograd._savers_limit[0] + 1 < 20000
    y = (w * w).sum()
    live = autograd._live_saving_nodes()
    assert y.grad_fn is not None and len(live) >= 1 and len(autograd._savers) == len(live)
