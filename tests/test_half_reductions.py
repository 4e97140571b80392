"""Reductions over many elements in float16/bfloat16 against PyTorch, which counts and divides
in float32 (its "opmath" type). In half precision a count above 65,504 is inf in float16 (and
rounds in bfloat16): the gradient of max()/min()/amax/median over 70,000 ties was all zeros."""

import numpy as np
import pytest
import torch

import descent

N = 70_000  # more than float16's largest finite value, 65,504
ULP = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 1e-6}

CASES = {
    "max()": lambda L, x: x.max(),
    "min()": lambda L, x: x.min(),
    "amax(0)": lambda L, x: x.amax(0),
    "amin rows": lambda L, x: x.reshape(2, N // 2).amin(1).sum(),
    "max 2-d": lambda L, x: x.reshape(7, N // 7).max(),
    "median()": lambda L, x: x.median(),
    "inf-norm": lambda L, x: L.linalg.vector_norm(x, float("inf")),
}


def _grad(L, dt, f, create_graph=False):
    x = L.ones(N, dtype=getattr(L, dt), requires_grad=True)
    (g,) = L.autograd.grad(f(L, x), x, create_graph=create_graph)
    return str(g.dtype).split(".")[-1], g.detach().float().numpy().astype(np.float64)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_ties_share_the_gradient_as_torch(dt, name):
    f = CASES[name]
    (tdt, tg), (ddt, dg) = _grad(torch, dt, f), _grad(descent, dt, f)
    assert ddt == tdt == dt
    assert np.count_nonzero(dg) == np.count_nonzero(tg) == N
    # the same share, to one unit in the last place (PyTorch rounds twice for some dim
    # reductions in bfloat16: 2.849e-05 for 1/35,000, where descent gives 2.861e-05)
    np.testing.assert_allclose(dg, tg, rtol=ULP[dt], atol=0)
    assert abs(dg.sum() - 1.0 * (2 if name == "amin rows" else 1)) < 0.01


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_ties_with_create_graph(dt):
    f = CASES["max()"]
    (tdt, tg), (ddt, dg) = _grad(torch, dt, f, True), _grad(descent, dt, f, True)
    assert ddt == tdt
    np.testing.assert_array_equal(dg, tg)


def test_small_ties_unchanged_and_nan_max():
    for dt in ("float16", "float32"):
        x = descent.tensor([1.0, 3.0, 3.0, 2.0], dtype=getattr(descent, dt), requires_grad=True)
        x.max().backward()
        np.testing.assert_array_equal(x.grad.float().numpy(), [0, 0.5, 0.5, 0])
    x = descent.tensor([1.0, float("nan"), 3.0], dtype=descent.float16, requires_grad=True)
    t = torch.tensor([1.0, float("nan"), 3.0], dtype=torch.float16, requires_grad=True)
    x.max().backward()
    t.max().backward()
    np.testing.assert_array_equal(x.grad.float().numpy(), t.grad.float().numpy())


@pytest.mark.parametrize("dt", ["bfloat16", "float16"])
@pytest.mark.parametrize("n", [300, 5_000, 60_000])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_mean_divides_by_the_float32_weight_sum(dt, n, weighted):
    """'mean' divides by the summed weights; a bfloat16 running sum of ones stopped at 256."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = rng.integers(0, 3, n)
    w = [0.5, 1.0, 2.0] if weighted else None
    out = {}
    for L in (torch, descent):
        xi = L.tensor(x).to(getattr(L, dt)).requires_grad_()
        kw = {} if w is None else {"weight": L.tensor(w).to(xi.dtype)}
        loss = L.nn.functional.nll_loss(L.log_softmax(xi, 1), L.tensor(y), ignore_index=2, **kw)
        loss.float().backward()
        out[L.__name__] = (str(loss.dtype).split(".")[-1], loss.float().item(), xi.grad.float())
    ref = torch.nn.functional.nll_loss(
        torch.log_softmax(torch.tensor(x), 1),
        torch.tensor(y),
        ignore_index=2,
        **({} if w is None else {"weight": torch.tensor(w)}),
    ).item()
    (ddt, dv, dg), (tdt, tv, tg) = out["descent"], out["torch"]
    assert ddt == tdt == dt
    assert abs(dv - ref) < 0.02 * abs(ref)  # within half precision of the float32 loss
    assert abs(dv - tv) < 0.02 * abs(ref)
    np.testing.assert_allclose(dg.numpy(), tg.numpy(), rtol=0.02, atol=0.02 * float(tg.abs().max()))


def test_nll_loss_mean_of_70000_bfloat16_rows_as_torch():
    for L in (torch, descent):
        x = L.ones(N, 2, dtype=L.bfloat16)
        assert L.nn.functional.nll_loss(x, L.zeros(N, dtype=L.int64)).float().item() == -1.0


NORMS = {
    "vector_norm": lambda L, x, kw: L.linalg.vector_norm(x, **kw),
    "Tensor.norm": lambda L, x, kw: x.norm(**kw),
    "vector_norm p=3": lambda L, x, kw: L.linalg.vector_norm(x, 3, **kw),
    "vector_norm p=1": lambda L, x, kw: L.linalg.vector_norm(x, 1, **kw),
}
NORM_INPUTS = [((N,), 1.0, {}), ((3, 400), 300.0, {"dim": 1}), ((5, 7), 1e-3, {}),
               ((2, 3, 4), 1000.0, {"dim": (0, 2), "keepdim": True})]  # fmt: skip


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(NORMS))
@pytest.mark.parametrize("case", range(len(NORM_INPUTS)))
def test_half_norms_accumulate_in_float32_as_torch(dt, name, case):
    """In float16 a sum of squares above 65,504 was inf: ||ones(70000)|| = inf (torch 264.5)."""
    shape, scale, kw = NORM_INPUTS[case]
    x = (np.random.default_rng(case).standard_normal(shape) * scale).astype(np.float32)
    out = []
    for L in (torch, descent):
        xi = L.tensor(x).to(getattr(L, dt)).requires_grad_()
        y = NORMS[name](L, xi, kw)
        y.float().sum().backward()
        out.append(
            (str(y.dtype).split(".")[-1], y.detach().float().numpy(), xi.grad.float().numpy())
        )
    (tdt, tv, tg), (ddt, dv, dg) = out
    assert ddt == tdt == dt
    np.testing.assert_array_equal(np.isfinite(dv), np.isfinite(tv))  # inf only where torch's
    np.testing.assert_allclose(dv, tv, rtol=1e-2)
    np.testing.assert_allclose(dg, tg, rtol=2e-2, atol=1e-2 * float(np.abs(tg).max()))


POOLS = {
    "global avg 300x300": (
        lambda L, x: L.nn.functional.adaptive_avg_pool2d(x, 1),
        (1, 2, 300, 300),
    ),
    "adaptive_avg_pool1d": (lambda L, x: L.nn.functional.adaptive_avg_pool1d(x, 1), (1, 2, N)),
    "avg_pool2d 3/2/1": (lambda L, x: L.nn.functional.avg_pool2d(x, 3, 2, 1), (2, 3, 9, 8)),
    "avg_pool2d no pad count": (
        lambda L, x: L.nn.functional.avg_pool2d(
            x, 3, 2, 1, ceil_mode=True, count_include_pad=False
        ),
        (2, 3, 9, 8),
    ),
    "avg_pool2d divisor": (
        lambda L, x: L.nn.functional.avg_pool2d(x, 2, divisor_override=3),
        (2, 3, 8, 8),
    ),
}


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(POOLS))
@pytest.mark.parametrize("create_graph", [False, True])
def test_half_average_pooling_sums_in_float32_as_torch(dt, name, create_graph):
    """A float16 window sum stalled at 2,048 and a divisor above 65,504 was inf: the global
    average of a 300 x 300 map of ones came out 0 (torch 1.0), its gradient 0."""
    f, shape = POOLS[name]
    x = (np.random.default_rng(1).standard_normal(shape) + 1).astype(np.float32)
    out = []
    for L in (torch, descent):
        xi = L.tensor(x).to(getattr(L, dt)).requires_grad_()
        y = f(L, xi)
        (g,) = L.autograd.grad(y.float().sum(), xi, create_graph=create_graph)
        out.append(
            (str(y.dtype).split(".")[-1], y.detach().float().numpy(), g.detach().float().numpy())
        )
    (tdt, tv, tg), (ddt, dv, dg) = out
    assert ddt == tdt == dt
    np.testing.assert_allclose(dv, tv, rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(dg, tg, rtol=2e-2, atol=2e-2 * float(np.abs(tg).max()))


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_half_embedding_bag_sums_bags_in_float32(dt, mode):
    """Bags of 5,000 rows: a float16 running sum drifted by about 1 on values near 3 (torch
    0.002). Values against torch's; the weight gradient against float64 (PyTorch's bfloat16
    weight gradient is itself off by 186 on 442 here, descent's by 1)."""
    rng = np.random.default_rng(0)
    w0 = (rng.standard_normal((50, 8)) * 0.5 + 1).astype(np.float32)
    idx = rng.integers(0, 50, (4, 5_000))
    out = {}
    for L in (torch, descent):
        w = L.tensor(w0).to(getattr(L, dt)).requires_grad_()
        y = L.nn.functional.embedding_bag(L.tensor(idx), w, mode=mode)
        y.float().sum().backward()
        out[L.__name__] = (
            str(y.dtype).split(".")[-1],
            y.detach().float().numpy(),
            w.grad.float().numpy(),
        )
    w64 = torch.tensor(w0).to(getattr(torch, dt)).double().requires_grad_()
    torch.nn.functional.embedding_bag(torch.tensor(idx), w64, mode=mode).sum().backward()
    (tdt, tv, _), (ddt, dv, dg) = out["torch"], out["descent"]
    assert ddt == tdt == dt
    np.testing.assert_allclose(dv, tv, rtol=2e-2, atol=2e-2 * float(np.abs(tv).max()))
    ref = w64.grad.numpy()
    assert np.abs(dg - ref).max() <= 0.02 * np.abs(ref).max()


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize("scale", [1.0, 0.5, 1e-3])
def test_half_nanmean_divides_in_float32_as_torch(dt, scale):
    """A float16 count of 70,000 non-nan values was inf: nanmean gave nan (torch: inf when the
    float16 sum overflows, else the mean)."""
    x = (np.random.default_rng(2).standard_normal((2, N)) * scale + scale).astype(np.float32)
    x[:, ::7] = np.nan
    out = []
    for L in (torch, descent):
        xi = L.tensor(x).to(getattr(L, dt)).requires_grad_()
        for kw in ({}, {"dim": 1}):
            y = xi.nanmean(**kw)
            (g,) = L.autograd.grad(y.float().sum(), xi)
            out.append((str(y.dtype).split(".")[-1], y.detach().float().numpy(), g.float().numpy()))
    for (tdt, tv, tg), (ddt, dv, dg) in zip(out[:2], out[2:]):
        assert ddt == tdt == dt
        np.testing.assert_allclose(dv, tv, rtol=1e-2)  # inf where torch's is inf
        np.testing.assert_allclose(dg, tg, rtol=1e-2, atol=1e-3 * float(np.nanmax(np.abs(tg))))
