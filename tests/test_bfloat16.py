"""descent.bfloat16 (ml_dtypes' NumPy dtype) against PyTorch 2.13's CPU bfloat16.

Elementwise ops agree bitwise (PyTorch computes them in float32 and rounds to nearest even, as
descent's dispatch does: ops/bfloat16.py), as do softmax, log_softmax, most reductions and
cross_entropy's gradient; the rest within bfloat16's tolerance. Also: the dtype object,
promotion against torch.promote_types / result_type for every pair with bfloat16, conversions,
printing, gradients and edge values. Training (optimizers, autocast, checkpoints, compile):
tests/test_bfloat16_training.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import descent as ds

rng = np.random.default_rng(0)
A = (rng.standard_normal((6, 5)) * 2).astype(np.float32)
B = (rng.standard_normal((6, 5)) * 2).astype(np.float32)
P = np.abs(A) + 0.1  # positive: log, sqrt, pow


def _both(*arrays):
    """The same bfloat16 values as (torch tensors, descent tensors)."""
    return ([torch.tensor(a).bfloat16() for a in arrays],
            [ds.tensor(a).bfloat16() for a in arrays])  # fmt: skip


def _values(t):
    """A result's values as float32 (bool as bool), from either library."""
    if isinstance(t, torch.Tensor):
        return t.numpy() if t.dtype == torch.bool else t.float().numpy()
    return t.numpy() if t.dtype == ds.bool else t.float().numpy()


def _same_dtype(rt, rd) -> None:
    rt, rd = getattr(rt, "dtype", rt), getattr(rd, "dtype", rd)  # tensors or dtypes
    assert str(rd).replace("descent.", "") == str(rt).replace("torch.", "")


def _check(fn, *arrays, exact=True, rtol=1e-2, atol=1e-2):
    tt, dd = _both(*arrays)
    rt, rd = fn(torch, *tt), fn(ds, *dd)
    _same_dtype(rt, rd)
    a, b = _values(rt), _values(rd)
    if exact:
        np.testing.assert_array_equal(b, a)
    else:
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


# -- the dtype --------------------------------------------------------------------------------


def test_dtype_object_matches_torch():
    bf, tb = ds.bfloat16, torch.bfloat16
    assert repr(bf) == "descent.bfloat16" == str(bf)
    assert (bf.is_floating_point, bf.is_complex, bf.is_signed, bf.itemsize) == (
        tb.is_floating_point, tb.is_complex, tb.is_signed, tb.itemsize)  # fmt: skip
    assert isinstance(bf, ds.dtype) and bf != ds.float16 and bf != ds.float32
    assert ds.zeros(2, dtype=bf).dtype is bf and ds.zeros(2, dtype="bfloat16").dtype is bf
    import copy
    import pickle

    assert copy.deepcopy(bf) is bf and pickle.loads(pickle.dumps(bf)) is bf


def test_finfo_matches_torch():
    f, t = ds.finfo(ds.bfloat16), torch.finfo(torch.bfloat16)
    for name in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(f, name) == getattr(t, name), name
    assert (f.eps, f.resolution, f.bits) == (0.0078125, 0.01, 16)


def test_import_descent_does_not_import_ml_dtypes():
    # naming torch.bfloat16 (a dtype table) loads ml_dtypes but adds nothing per op: the
    # dispatch is installed when data first gets the dtype
    code = ("import sys, descent; from descent import autograd; "
            "assert 'ml_dtypes' not in sys.modules; "
            "descent.ones(2) + 1; assert 'ml_dtypes' not in sys.modules; "
            "descent.bfloat16; assert 'ml_dtypes' in sys.modules; "
            "assert autograd._cast_dispatch is None; "
            "x = descent.ones(2, dtype=descent.bfloat16); "
            "assert autograd._cast_dispatch is not None; "
            "assert (x + 1).dtype == descent.bfloat16")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)


# -- making and converting tensors ---------------------------------------------------------------


@pytest.mark.parametrize("make", ["zeros", "ones", "randn", "rand", "empty"])
def test_creation_functions(make):
    t = getattr(ds, make)(2, 3, dtype=ds.bfloat16)
    assert t.dtype == ds.bfloat16 and t.shape == (2, 3) and t.element_size() == 2
    assert getattr(ds, make + "_like")(t).dtype == ds.bfloat16


def test_conversions():
    x = ds.tensor([1.1, 2.3, -0.7])
    for y in (x.to(ds.bfloat16), x.bfloat16(), x.type(ds.bfloat16), x.to(dtype=ds.bfloat16),
              ds.tensor([1.1, 2.3, -0.7], dtype=ds.bfloat16)):  # fmt: skip
        assert y.dtype == ds.bfloat16 and y.element_size() == 2
        ref = torch.tensor([1.1, 2.3, -0.7]).bfloat16()
        assert y.tolist() == ref.tolist() and all(type(v) is float for v in y.tolist())
        assert y.float().dtype == ds.float32 and y.float().tolist() == ref.float().tolist()
    assert x.bfloat16().type() == "descent.BFloat16Tensor"
    assert x.bfloat16().double().dtype == ds.float64 and x.bfloat16().long().tolist() == [1, 2, 0]
    v = ds.tensor(3.14159).bfloat16().item()
    assert type(v) is float and v == torch.tensor(3.14159).bfloat16().item() == 3.140625
    assert ds.is_floating_point(x.bfloat16()) and x.bfloat16().is_floating_point()


def test_numpy_raises_as_torch_and_from_numpy_accepts_ml_dtypes():
    with pytest.raises(TypeError) as te:
        torch.ones(2, dtype=torch.bfloat16).numpy()
    with pytest.raises(TypeError) as de:
        ds.ones(2, dtype=ds.bfloat16).numpy()
    assert str(de.value) == str(te.value) == "Got unsupported ScalarType BFloat16"
    import ml_dtypes

    arr = np.array([1.5, -2.25], dtype=ml_dtypes.bfloat16)
    for t in (ds.from_numpy(arr), ds.tensor(arr)):
        assert t.dtype == ds.bfloat16 and t.tolist() == [1.5, -2.25]


def test_requires_grad_and_module_to():
    assert ds.ones(2, dtype=ds.bfloat16, requires_grad=True).requires_grad
    net = ds.nn.Sequential(ds.nn.Linear(3, 4), ds.nn.BatchNorm1d(4))
    ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    for m, r in (
        (net.to(ds.bfloat16), ref.to(torch.bfloat16)),
        (net.float().bfloat16(), ref.float().bfloat16()),
    ):
        got = {k: str(v.dtype).split(".")[1] for k, v in m.state_dict().items()}
        want = {k: str(v.dtype).split(".")[1] for k, v in r.state_dict().items()}
        assert got == want  # floating parameters and buffers only: num_batches_tracked stays int64
    y = net(ds.randn(5, 3, dtype=ds.bfloat16))
    assert y.dtype == ds.bfloat16


# -- printing -----------------------------------------------------------------------------------

PRINT_CASES = [
    [1.0, 2.0], [1.1, 2.3, 1e-3], [3.14159, 1e10], [0.1, -0.25, 7.0], [], [[1.5, 2.0], [3.0, -4.5]],
    [float("inf"), float("nan"), -0.0], 3.14159, [1e-5, 2e-5], [65504.0, 1e38],
]  # fmt: skip


@pytest.mark.parametrize("values", PRINT_CASES, ids=range(len(PRINT_CASES)))
def test_printing_matches_torch(values):
    t = torch.tensor(values, dtype=torch.bfloat16)
    d = ds.tensor(values, dtype=ds.bfloat16)
    assert repr(d) == repr(t).replace("torch.", "descent.")
    r = torch.tensor(values, dtype=torch.bfloat16, requires_grad=True)
    g = ds.tensor(values, dtype=ds.bfloat16, requires_grad=True)
    assert repr(g) == repr(r).replace("torch.", "descent.")


# -- values: elementwise ops bitwise ------------------------------------------------------------

UNARY = ["exp", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "abs", "neg", "reciprocal",
         "square", "erf", "expm1", "floor", "ceil", "round", "trunc", "sign", "exp2", "atan",
         "sinh", "cosh", "frac"]  # fmt: skip
POSITIVE = ["log", "sqrt", "log1p", "log2", "log10", "lgamma", "digamma"]
ACTIVATIONS = ["gelu", "silu", "softplus", "elu", "leaky_relu", "mish", "hardswish", "hardsigmoid",
               "logsigmoid", "selu", "celu", "relu6", "softsign", "tanhshrink"]  # fmt: skip


@pytest.mark.parametrize("name", UNARY + POSITIVE)
def test_unary_bitwise(name):
    _check(lambda L, x: getattr(L, name)(x), P if name in POSITIVE else A)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_bitwise(name):
    # gelu differs from PyTorch's in the last bit of values near 1e-8 (its erf polynomial)
    _check(lambda L, x: getattr(L.nn.functional, name)(x), A, exact=name != "gelu",
           rtol=0, atol=1e-7)  # fmt: skip


def test_rsqrt_within_one_ulp():
    # PyTorch's vectorised rsqrt is a float32 approximation: 1 bfloat16 ulp from descent's
    _check(lambda L, x: L.rsqrt(x), P, exact=False, rtol=8e-3, atol=0)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "maximum", "minimum", "atan2",
                                  "pow", "fmod", "remainder", "hypot", "copysign"])  # fmt: skip
def test_binary_bitwise(name):
    _check(lambda L, x, y: getattr(L, name)(x, y), P if name == "pow" else A, B)
    _check(lambda L, x, y: getattr(L, name)(x, y[2]), P if name == "pow" else A, B)  # broadcast


@pytest.mark.parametrize("c", [0.1, 1.3, 2, -3.7, 1e-3, 7])
def test_python_scalars_bitwise(c):
    # PyTorch rounds c to bfloat16 for + and -, keeps it in float32 for * and /, and computes
    # c / x as reciprocal(x) * c: descent does the same
    for fn in (
        lambda L, x: x + c,
        lambda L, x: x - c,
        lambda L, x: c - x,
        lambda L, x: x * c,
        lambda L, x: x / c,
        lambda L, x: c / x,
        lambda L, x: x**2,
        lambda L, x: c + x,
    ):
        _check(fn, A)
    _check(lambda L, x: x.clone().mul_(c), A)
    _check(lambda L, x: x.clone().add_(c), A)
    _check(lambda L, x: x.clone().div_(c), A)


def test_composites_round_once_as_torch():
    _check(lambda L, x, y: L.lerp(x, y, 0.3), A, B)
    _check(lambda L, x, y: L.lerp(x, y, 0.7), A, B)
    _check(lambda L, x, y: L.addcmul(x, x, y, value=0.5), A, B)
    _check(lambda L, x, y: L.addcdiv(x, x, y, value=0.5), A, B)
    _check(lambda L, x: L.where(x > 0, x, 0.3), A)
    _check(lambda L, x: L.clamp(x, -1.3, 1.1), A)
    _check(lambda L, x, y: x.clone().add_(y), A, B)
    _check(lambda L, x, y: x.clone().mul_(y.float()), A, B)  # float32 into bfloat16 in place


def test_shape_and_indexing_ops_bitwise():
    _check(lambda L, x, y: L.cat([x, y]), A, B)
    _check(lambda L, x, y: L.stack([x, y], 1), A, B)
    _check(lambda L, x: x.T.contiguous().reshape(3, 10), A)
    _check(lambda L, x: x[L.tensor([0, 2])][:, 1:4:2], A)
    _check(lambda L, x: L.gather(x, 1, L.tensor([[0], [1], [2], [3], [4], [0]])), A)
    _check(lambda L, x: L.sort(x, 1)[0], A)
    _check(lambda L, x: L.topk(x, 2)[0], A)
    _check(lambda L, x: x.masked_fill(x > 0, 0.3), A)
    _check(lambda L, x: L.nn.functional.pad(x, (1, 2)), A)
    _check(lambda L, x: L.nn.functional.embedding(L.tensor([1, 3]), x), A)
    _check(lambda L, x, y: x < y, A, B)
    _check(lambda L, x: L.isfinite(x / 0), A)
    _check(lambda L, x: L.argmax(x, 1), A)


# -- values: products and reductions within bfloat16's tolerance ----------------------------------


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "prod", "amax", "amin",
                                  "logsumexp", "cumsum", "cumprod", "norm"])  # fmt: skip
def test_reductions(name):
    _check(lambda L, x: getattr(L, name)(x, 0), A, exact=False, rtol=2e-2)
    if name not in ("logsumexp", "cumsum", "cumprod"):
        _check(lambda L, x: getattr(L, name)(x), A, exact=False, rtol=2e-2)


def test_vector_norm_and_clip_grad_norm():
    _check(lambda L, x: L.linalg.vector_norm(x), A, exact=False)
    _check(lambda L, x: L.linalg.vector_norm(x, ord=1, dim=1), A, exact=False)
    out = []
    for L in (torch, ds):
        p = L.nn.Parameter(L.tensor(A).to(L.bfloat16))
        p.grad = L.tensor(B).to(L.bfloat16)
        n = L.nn.utils.clip_grad_norm_([p], 1.0)
        out.append((n, p.grad))
    _same_dtype(out[0][0], out[1][0])
    np.testing.assert_allclose(_values(out[1][0]), _values(out[0][0]), rtol=1e-2)
    np.testing.assert_allclose(_values(out[1][1]), _values(out[0][1]), rtol=1e-2, atol=1e-3)


def test_sums_accumulate_in_float32():
    # 10,000 ones: a bfloat16 accumulator would stop at 256 (ml_dtypes' own NumPy sum does)
    x = ds.ones(10_000, dtype=ds.bfloat16)
    t = torch.ones(10_000, dtype=torch.bfloat16)
    assert x.sum().item() == t.sum().item() == 9984.0  # 10,000 rounded to bfloat16's 8 bits
    assert x.mean().item() == t.mean().item() == 1.0


def test_products():
    _check(lambda L, x, y: x @ y.T, A, B)  # float32 accumulation, one rounding: bitwise here
    _check(lambda L, x, y: L.bmm(x[None], y.T[None]), A, B)
    _check(lambda L, x, y: L.nn.functional.linear(x, y[:3], y[3, :3]), A, B, exact=False)
    _check(lambda L, x, y: L.einsum("ij,kj->ik", x, y), A, B, exact=False)
    _check(lambda L, x, y: L.nn.functional.conv2d(x.reshape(1, 1, 6, 5),
                                                  y[:3, :3].reshape(1, 1, 3, 3)),
           A, B, exact=False)  # fmt: skip
    _check(lambda L, x, y: L.nn.functional.scaled_dot_product_attention(x[None], y[None],
                                                                        x[None]),
           A, B, exact=False)  # fmt: skip


@pytest.mark.parametrize("shape, dim", [((64, 37), 1), ((64, 37), 0), ((4, 30, 7), 1),
                                        ((5, 6, 7), 0), ((8, 300), -1)])  # fmt: skip
def test_softmax_and_log_softmax_bitwise(shape, dim):
    # PyTorch's kernels keep the last-dim sum and log (log_softmax) or, across an inner dim,
    # the exponentials (softmax) in bfloat16 buffers: descent rounds at the same places
    # (float32 sums in another order can still flip a rounding: one element in a thousand)
    # (across an inner dim, PyTorch's kernel splits the positions over its threads and each
    # thread's vector loop rounds at other places: 535 of 2368 values differ for (64, 37) over
    # dim 0 between one thread and two. descent follows the layout for its own thread count
    # (softmax._vector_lanes reads get_num_threads), so the oracle runs with that count, also
    # in a one-thread xdist worker.)
    z = (np.random.default_rng(len(shape) + dim).standard_normal(shape) * 3).astype(np.float32)
    threads = torch.get_num_threads()
    for fn in (lambda L, x: L.softmax(x, dim), lambda L, x: L.log_softmax(x, dim)):
        tt, dd = _both(z)
        torch.set_num_threads(ds.get_num_threads())
        try:
            a = _values(fn(torch, *tt))
        finally:
            torch.set_num_threads(threads)
        b = _values(fn(ds, *dd))
        assert (a != b).sum() <= max(1, a.size // 500)
        np.testing.assert_allclose(b, a, rtol=2.0**-7, atol=0)


def test_softmax_norms_and_losses():
    _check(lambda L, x: L.softmax(x, 1), A)
    _check(lambda L, x: L.log_softmax(x, 1), A)  # PyTorch's bfloat16 sum and log buffers
    _check(lambda L, x: L.log_softmax(x, 0), A)
    _check(lambda L, x, y: L.nn.functional.layer_norm(x, (5,), y[0], y[1]), A, B, exact=False,
           atol=3e-2)  # fmt: skip
    _check(lambda L, x: L.nn.functional.cross_entropy(x, L.tensor([0, 1, 2, 3, 4, 0])), A,
           exact=False)  # fmt: skip
    _check(lambda L, x, y: L.nn.functional.mse_loss(x, y), A, B, exact=False)


# -- promotion ------------------------------------------------------------------------------------

ALL = ["bfloat16", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
       "bool", "complex64", "complex128"]  # fmt: skip


@pytest.mark.parametrize("other", ALL)
def test_promote_types_against_torch(other):
    for a, b in (("bfloat16", other), (other, "bfloat16")):
        want = torch.promote_types(getattr(torch, a), getattr(torch, b))
        got = ds.promote_types(getattr(ds, a), getattr(ds, b))
        assert repr(got) == repr(want).replace("torch.", "descent."), (a, b)


@pytest.mark.parametrize("other", ALL)
def test_result_type_of_tensors_and_zero_d_against_torch(other):
    def make(L, name, shape):
        return L.ones(shape, dtype=getattr(L, name))

    for sa, sb in (((2,), (2,)), ((2,), ()), ((), (2,)), ((), ())):
        for a, b in (("bfloat16", other), (other, "bfloat16")):
            if "bool" in (a, b) and a == b:
                continue
            ta, tb = make(torch, a, sa), make(torch, b, sb)
            da, db = make(ds, a, sa), make(ds, b, sb)
            _same_dtype(torch.result_type(ta, tb), ds.result_type(da, db))
            _same_dtype(ta * tb, da * db)


@pytest.mark.parametrize("scalar", [2.5, 3, True, 1j])
def test_python_scalars_keep_bfloat16(scalar):
    t, d = torch.ones(2, dtype=torch.bfloat16), ds.ones(2, dtype=ds.bfloat16)
    _same_dtype(t * scalar, d * scalar)
    _same_dtype(t + scalar, d + scalar)
    i, j = torch.ones(2, dtype=torch.int32), ds.ones(2, dtype=ds.int32)
    _same_dtype(i + torch.tensor(2.5, dtype=torch.bfloat16), j + ds.tensor(2.5, dtype=ds.bfloat16))


# -- gradients ------------------------------------------------------------------------------------

GRADS = {
    "exp": (lambda L, x: L.exp(x), A),
    "tanh": (lambda L, x: L.tanh(x), A),
    "sigmoid": (lambda L, x: L.sigmoid(x), A),
    "log": (lambda L, x: L.log(x), P),
    "sqrt": (lambda L, x: L.sqrt(x), P),
    "gelu": (lambda L, x: L.nn.functional.gelu(x), A),
    "silu": (lambda L, x: L.nn.functional.silu(x), A),
    "scalars": (lambda L, x: (x * 0.3 + 1.7) / 3.1, A),
    "rdiv": (lambda L, x: 2.3 / x, P),
    "pow": (lambda L, x: x**3, A),
    "sum": (lambda L, x: x.sum(), A),
    "mean": (lambda L, x: x.mean(1), A),
    "var": (lambda L, x: x.var(0), A),
    "max": (lambda L, x: x.max(1)[0], A),
    "softmax": (lambda L, x: L.softmax(x, 1), A),
    "log_softmax": (lambda L, x: L.log_softmax(x, 1), A),
    "cross_entropy": (
        lambda L, x: L.nn.functional.cross_entropy(x, L.tensor([0, 1, 2, 3, 4, 0])),
        A,
    ),
    "index": (lambda L, x: x[L.tensor([0, 0, 2])], A),
    "lerp": (lambda L, x: L.lerp(x, x * 2, 0.3), A),
}


@pytest.mark.parametrize("name", list(GRADS))
def test_unary_gradients(name):
    fn, arr = GRADS[name]
    grads = []
    for L in (torch, ds):
        x = L.tensor(arr).to(L.bfloat16).requires_grad_()
        y = fn(L, x)
        y.backward(L.ones_like(y))
        grads.append(x.grad)
    assert grads[1].dtype == ds.bfloat16
    np.testing.assert_allclose(_values(grads[1]), _values(grads[0]), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("name", ["mul", "div", "matmul", "linear", "layer_norm", "mse", "where",
                                  "cat", "conv2d", "sdpa"])  # fmt: skip
def test_binary_gradients(name):
    fns = {
        "mul": lambda L, x, y: x * y, "div": lambda L, x, y: x / (y.abs() + 0.5),
        "matmul": lambda L, x, y: x @ y.T,
        "linear": lambda L, x, y: L.nn.functional.linear(x, y[:3], y[3, :3]),
        "layer_norm": lambda L, x, y: L.nn.functional.layer_norm(x, (5,), y[0], y[1]),
        "mse": lambda L, x, y: L.nn.functional.mse_loss(x, y),
        "where": lambda L, x, y: L.where(x > 0, x, y), "cat": lambda L, x, y: L.cat([x, y], 1),
        "conv2d": lambda L, x, y: L.nn.functional.conv2d(x.reshape(1, 1, 6, 5),
                                                         y[:3, :3].reshape(1, 1, 3, 3)),
        "sdpa": lambda L, x, y: L.nn.functional.scaled_dot_product_attention(x[None], y[None],
                                                                             x[None]),
    }  # fmt: skip
    grads = []
    for L in (torch, ds):
        x, y = (L.tensor(a).to(L.bfloat16).requires_grad_() for a in (A / 2, B / 2))
        out = fns[name](L, x, y)
        out.backward(L.ones_like(out))
        grads.append((x.grad, y.grad))
    for gt, gd in zip(*grads):
        assert gd.dtype == ds.bfloat16
        np.testing.assert_allclose(_values(gd), _values(gt), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("rows", [6, 257, 1000])
def test_cross_entropy_gradient_bitwise(rows):
    # PyTorch's cross_entropy is log_softmax (bfloat16) then nll_loss: so is descent's for
    # bfloat16 logits; the loss value may be one ulp apart (PyTorch sums rows in bfloat16)
    r = np.random.default_rng(rows)
    z, y = r.standard_normal((rows, 5)).astype(np.float32), r.integers(0, 5, rows)
    out = []
    for L in (torch, ds):
        x = L.tensor(z).to(L.bfloat16).requires_grad_()
        loss = L.nn.functional.cross_entropy(x, L.tensor(y))
        loss.backward()
        out.append((loss, x.grad))
    np.testing.assert_array_equal(_values(out[1][1]), _values(out[0][1]))
    np.testing.assert_allclose(out[1][0].item(), out[0][0].item(), rtol=8e-3)
    _check(lambda L, x: L.nn.functional.cross_entropy(x, L.tensor(y), reduction="none"), z)


def test_mixed_dtype_gradients_land_in_each_dtype():
    w = ds.randn(3, 3, requires_grad=True)  # float32
    x = ds.randn(2, 3, dtype=ds.bfloat16, requires_grad=True)
    y = x * w[:2]  # promoted to float32 (a matmul of mixed dtypes raises, as in PyTorch)
    assert y.dtype == ds.float32
    y.sum().backward()
    assert x.grad.dtype == ds.bfloat16 and w.grad.dtype == ds.float32


# -- edge values -------------------------------------------------------------------------------

EDGE = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 3.3961e38, 3.4e38, -3.39e38,
                 1e-40, -1e-40, 9.2e-41, 1e-45, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8,
                 1.0 - 2.0**-9, 65504.0, 1.1754943508222875e-38, 3.3895313892515355e38],
                dtype=np.float32)  # fmt: skip


def test_edge_value_casts_bitwise():
    for src, dt in ((EDGE, ds.float32), (EDGE.astype(np.float64), ds.float64)):
        t = torch.tensor(src).bfloat16()
        d = ds.tensor(src, dtype=dt).bfloat16()
        nan = np.isnan(src)  # nan's bits differ (PyTorch's 0xffff, ml_dtypes' 0x7fc0)
        assert np.isnan(d.float().numpy()[nan]).all() and t.float().isnan().numpy()[nan].all()
        # ties to even, overflow to inf, subnormals, -0.0: the same bits
        np.testing.assert_array_equal(d._data.view(np.int16)[~nan],
                                      t.view(torch.int16).numpy()[~nan])  # fmt: skip


def test_edge_value_arithmetic_bitwise():
    x = np.array([1e38, 3e38, 1e-38, 1e-40, -0.0, np.inf, np.nan, 1.0], dtype=np.float32)
    _check(lambda L, a: a * 2, x)  # 3e38 * 2 overflows to inf
    _check(lambda L, a: a / 4, x)  # subnormal results
    _check(lambda L, a: a + a, x)
    _check(lambda L, a: -a, x)
    _check(lambda L, a: L.exp(a), x)
    _check(lambda L, a: 1 / a, x)  # -0.0 -> -inf
    t = torch.tensor(x).bfloat16()
    d = ds.tensor(x).bfloat16()
    assert repr(d) == repr(t).replace("torch.", "descent.")
