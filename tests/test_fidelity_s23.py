"""Session 23's fidelity fixes at the edges (helper-163's probe, /work/notes/s23/h163/probe.py):
error classes, dtypes and values where descent differed from PyTorch 2.13 (the oracle),
each case compared with torch computed here."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _outcome(fn, m):
    """(None, result) or (the exception, None) of fn(m)."""
    try:
        return None, fn(m)
    except Exception as e:  # noqa: BLE001 - any class: compared with torch's below
        return e, None


def _same_class(fn):
    """fn(torch) raises X => fn(descent) raises an X; fn(torch) computes => fn(descent)
    computes the same dtype and values."""
    te, tr = _outcome(fn, torch)
    de, dr = _outcome(fn, descent)
    if te is not None:
        assert de is not None, f"torch raises {type(te).__name__}: {te}; descent computes"
        assert isinstance(de, type(te)), (type(te), type(de), str(de))
        return de
    assert de is None, f"torch computes; descent raises {type(de).__name__}: {de}"
    assert str(dr.dtype).split(".")[-1] == str(tr.dtype).split(".")[-1]
    np.testing.assert_allclose(dr.detach().numpy().astype(np.float64),
                               tr.detach().numpy().astype(np.float64),
                               rtol=1e-6)  # fmt: skip
    return None


# -- cross_entropy / nll_loss targets ----------------------------------------------------------
@pytest.mark.parametrize("shape", [(3,), (4, 3), (2, 3, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing,weighted", [(0.0, False), (0.15, True)])
def test_cross_entropy_probability_target_values_and_gradients(shape, reduction, smoothing,
                                                               weighted):  # fmt: skip
    rng = np.random.default_rng(23)
    x, t = rng.standard_normal(shape), rng.random(shape)
    g = rng.standard_normal(shape[:1] + shape[2:] if len(shape) > 1 else ())
    got = []
    for m in (torch, descent):
        xi = m.tensor(x, dtype=m.float32, requires_grad=True)
        ti = m.tensor(t, dtype=m.float32, requires_grad=True)
        w = m.tensor([1.0, 2.0, 0.5]) if weighted else None
        loss = m.nn.functional.cross_entropy(xi, ti, weight=w, reduction=reduction,
                                             label_smoothing=smoothing)  # fmt: skip
        (loss * m.tensor(g, dtype=m.float32) if reduction == "none" else loss).sum().backward()
        got.append([loss.detach().numpy(), xi.grad.numpy(), ti.grad.numpy()])
    for ours, theirs in zip(got[1], got[0], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


TARGET_CALLS = {
    "ce_int32": lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 2]).int()),
    "ce_int8": lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 2]).char()),
    "ce_bool": lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([True, False])),
    "ce_float_index_shape": lambda m: m.nn.functional.cross_entropy(
        m.zeros(2, 3), m.tensor([0.0, 2.0])
    ),
    "ce_uint8": lambda m: m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 2]).byte()),
    "nll_float": lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor([0.0, 2.0])),
    "nll_int16": lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor([0, 2]).short()),
    "nll_bool": lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor([True, False])),
    "nll_uint8": lambda m: m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor([0, 2]).byte()),
    "CrossEntropyLoss_int32": lambda m: m.nn.CrossEntropyLoss()(
        m.zeros(2, 3), m.tensor([1, 2]).int()
    ),
}


@pytest.mark.parametrize("call", list(TARGET_CALLS))
def test_loss_target_dtypes(call):
    err = _same_class(TARGET_CALLS[call])
    if err is not None:  # names the op, the dtype and the fix
        assert "Long or Byte" in str(err) and ".long()" in str(err)


# -- one_hot and scaled_dot_product_attention ---------------------------------------------------
def _sdpa(q, k=None, v=None, **kw):
    return lambda m: m.nn.functional.scaled_dot_product_attention(
        q(m), (k or q)(m), (v or q)(m), **kw
    )


EDGE_CALLS = {
    "one_hot_int32": lambda m: m.nn.functional.one_hot(m.tensor([0, 1]).int(), 3),
    "one_hot_uint8": lambda m: m.nn.functional.one_hot(m.tensor([0, 1]).byte(), 3),
    "one_hot_bool": lambda m: m.nn.functional.one_hot(m.tensor([True, False]), 3),
    "one_hot_float": lambda m: m.nn.functional.one_hot(m.tensor([0.0, 1.0]), 3),
    "one_hot_empty_int32": lambda m: m.nn.functional.one_hot(m.zeros(0, dtype=m.int32)),
    "one_hot_int64": lambda m: m.nn.functional.one_hot(m.tensor([0, 2])),
    "sdpa_int64": _sdpa(lambda m: m.ones(1, 2, 2, dtype=m.int64)),
    "sdpa_bool": _sdpa(lambda m: m.ones(1, 2, 2, dtype=m.bool)),
    "sdpa_uint8": _sdpa(lambda m: m.ones(1, 2, 2, dtype=m.uint8)),
    "sdpa_mixed": _sdpa(lambda m: m.ones(1, 2, 2), lambda m: m.ones(1, 2, 2).double()),
    "sdpa_float32": _sdpa(lambda m: m.ones(1, 2, 2)),
    "sdpa_mask_float64": lambda m: m.nn.functional.scaled_dot_product_attention(
        m.ones(1, 2, 2), m.ones(1, 2, 2), m.ones(1, 2, 2), attn_mask=m.ones(2, 2).double()
    ),
    "sdpa_mask_long": lambda m: m.nn.functional.scaled_dot_product_attention(
        m.ones(1, 2, 2), m.ones(1, 2, 2), m.ones(1, 2, 2), attn_mask=m.ones(2, 2).long()
    ),
    "sdpa_mask_float32_query64": lambda m: m.nn.functional.scaled_dot_product_attention(
        m.ones(1, 2, 2).double(),
        m.ones(1, 2, 2).double(),
        m.ones(1, 2, 2).double(),
        attn_mask=m.ones(2, 2),
    ),
}


@pytest.mark.parametrize("call", list(EDGE_CALLS))
def test_one_hot_and_sdpa_dtypes(call):
    _same_class(EDGE_CALLS[call])


# -- activations that PyTorch has no integer (or bool) kernel for -------------------------------
ACTIVATIONS = {
    "celu": lambda m, x: m.nn.functional.celu(x),
    "celu_neg_alpha": lambda m, x: m.nn.functional.celu(x, alpha=-1.0),
    "celu_": lambda m, x: m.nn.functional.celu_(x),
    "rrelu": lambda m, x: m.nn.functional.rrelu(x),
    "rrelu_": lambda m, x: m.nn.functional.rrelu_(x),
    "torch.rrelu": lambda m, x: m.rrelu(x),
    "softshrink": lambda m, x: m.nn.functional.softshrink(x),
    "hardshrink": lambda m, x: m.nn.functional.hardshrink(x),
    "Tensor.hardshrink": lambda m, x: x.hardshrink(),
    "tanhshrink": lambda m, x: m.nn.functional.tanhshrink(x),
    "threshold": lambda m, x: m.nn.functional.threshold(x, 1, 0),
    "threshold_": lambda m, x: m.nn.functional.threshold_(x, 1, 0),
    "prelu": lambda m, x: m.nn.functional.prelu(x, m.tensor([0.25])),
    "prelu_same_dtype": lambda m, x: m.nn.functional.prelu(x, m.tensor([1]).to(x.dtype)),
    "prelu_f64_weight": lambda m, x: m.nn.functional.prelu(x.float(), m.tensor([0.25]).double()),
    "nn.PReLU": lambda m, x: m.nn.PReLU()(x),
}


@pytest.mark.parametrize("dt", ["int64", "uint8", "bool", "float32"])
@pytest.mark.parametrize("call", list(ACTIVATIONS))
def test_activations_of_integers(call, dt):
    fn = ACTIVATIONS[call]
    err = _same_class(lambda m: fn(m, m.tensor([-2, 0, 1, 3]).to(getattr(m, dt))))
    if isinstance(err, NotImplementedError):
        assert ".float()" in str(err) and dt in str(err)


@pytest.mark.parametrize("call", ["celu", "rrelu", "softshrink", "hardshrink", "threshold"])
def test_activations_of_empty_bool(call):
    # PyTorch dispatches on the dtype before it looks at the size: an empty bool tensor raises
    fn = ACTIVATIONS[call]
    _same_class(lambda m: fn(m, m.zeros(0, dtype=m.bool)))


# -- Python ints and floats out of a dtype's range in tensor() / as_tensor() --------------------
@pytest.mark.parametrize(
    "data,dtype",
    [
        ([2**64 - 1], None),
        (2**63, None),
        ([[1, 2], [3, -(2**63) - 1]], None),
        ([2**100], None),
        ([2**64], "int8"),
        ([128], "int8"),
        ([-129], "int8"),
        ([-1], "uint8"),  # wraps to 255, as PyTorch
        ([-256], "uint8"),
        ([40000], "int16"),
        ([2**31], "int32"),
        ([300.0], "int8"),
        ([127.9], "int8"),  # a float must lie in the range itself
        ([-1.0], "uint8"),
        ([float("nan")], "int32"),
        ([2**63], "float32"),  # floating, bool and uint64 dtypes take it
        ([2**63], "bool"),
        ([2**64 - 1], "uint64"),
        ([1, 2.5], None),
        ([2**63 - 1, -(2**63)], None),
    ],
)
@pytest.mark.parametrize("make", ["tensor", "as_tensor"])
def test_tensor_of_out_of_range_python_numbers(data, dtype, make):
    def fn(m):
        return getattr(m, make)(data, dtype=None if dtype is None else getattr(m, dtype))

    err = _same_class(fn)
    if err is not None:
        assert "overflow" in str(err).lower() and isinstance(err, RuntimeError)


# -- scans with dtype=bool, histc of integers, trace of bools -------------------------------------
MISC_CALLS = {
    "cumsum_dtype_bool": lambda m: m.tensor([1, 0, 2]).cumsum(0, dtype=m.bool),
    "torch.cumsum_dtype_bool": lambda m: m.cumsum(m.tensor([True, False]), 0, dtype=m.bool),
    "cumprod_dtype_bool": lambda m: m.cumprod(m.tensor([1, 2]), 0, dtype=m.bool),
    "cumsum_bool": lambda m: m.tensor([True, False, True]).cumsum(0),  # int64
    "cumprod_bool": lambda m: m.tensor([True, True, False]).cumprod(0),  # int64
    "cumsum_int8_dtype_int8": lambda m: m.tensor([100, 100], dtype=m.int8).cumsum(0, dtype=m.int8),
    "histc_int64": lambda m: m.histc(m.tensor([1, 2, 3])),
    "histc_bool": lambda m: m.histc(m.tensor([True, False])),
    "histc_float": lambda m: m.histc(m.tensor([1.0, 2.0, 3.0]), bins=3),
    "trace_bool": lambda m: m.trace(m.tensor([[True, False], [True, True]])),
    "trace_int": lambda m: m.trace(m.tensor([[1, 2], [3, 4]], dtype=m.int8)),
}


@pytest.mark.parametrize("call", list(MISC_CALLS))
def test_scans_histc_trace_dtypes(call):
    _same_class(MISC_CALLS[call])


# -- losses of integer / bool pairs, linear of bools, trapezoid of bools --------------------------
LOSSES = {
    "mse": lambda m, a, b: m.nn.functional.mse_loss(a, b),
    "smooth_l1": lambda m, a, b: m.nn.functional.smooth_l1_loss(a, b),
    "huber": lambda m, a, b: m.nn.functional.huber_loss(a, b),
    "kl_div": lambda m, a, b: m.nn.functional.kl_div(a, b, reduction="batchmean"),
}


PAIRS = ["int-int", "uint8-uint8", "bool-bool", "int-float", "float-int", "bool-float",
         "float-bool", "empty-int"]  # fmt: skip


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_losses_of_integer_pairs(loss, pair):
    def fn(m):
        vals = {"int": m.tensor([1, 2]), "uint8": m.tensor([1, 2], dtype=m.uint8),
                "bool": m.tensor([True, False]), "float": m.tensor([1.5, 2.0]),
                "empty": m.zeros(0, dtype=m.int64)}  # fmt: skip
        a, b = pair.split("-")
        return LOSSES[loss](m, vals[a], vals["empty" if a == "empty" else b])

    _same_class(fn)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.nn.functional.linear(m.ones(2, 3, dtype=m.bool), m.ones(4, 3, dtype=m.bool)),
        lambda m: m.nn.functional.linear(m.ones(2, 3, dtype=m.int64), m.ones(4, 3, dtype=m.int64)),
        lambda m: m.trapezoid(m.tensor([True, False, True])),
        lambda m: m.cumulative_trapezoid(m.tensor([[True, False], [True, True]])),
        lambda m: m.trapezoid(m.tensor([1, 2, 4])),
    ],
    ids=["linear_bool", "linear_int", "trapezoid_bool", "cumulative_trapezoid_bool", "trap_int"],
)
def test_linear_and_trapezoid_of_bools(call):
    _same_class(call)


# -- index dtypes: int64 or int32 (take: int64), as PyTorch's index ops -------------------------
INDEX_CALLS = {
    "index_select": lambda m, i: m.ones(4, 2).index_select(0, i),
    "index_add": lambda m, i: m.zeros(4).index_add(0, i, m.ones(2)),
    "scatter_add": lambda m, i: m.zeros(4).scatter_add(0, i, m.ones(2)),
    "take": lambda m, i: m.ones(4).take(i),
}


@pytest.mark.parametrize("dt", ["int64", "int32", "int16", "uint8"])
@pytest.mark.parametrize("call", list(INDEX_CALLS))
def test_index_dtypes(call, dt):
    _same_class(lambda m: INDEX_CALLS[call](m, m.tensor([0, 2]).to(getattr(m, dt))))


@pytest.mark.parametrize("dt", ["int64", "int32", "int16", "uint8"])
@pytest.mark.parametrize(
    "call",
    [
        lambda m, i: m.zeros(4).scatter(0, i, 1.0),
        lambda m, i: m.nn.functional.embedding(i, m.ones(4, 2)),
        lambda m, i: m.nn.Embedding(4, 2)(i).shape and m.zeros(1),
    ],
    ids=["scatter", "F.embedding", "nn.Embedding"],
)
def test_scatter_and_embedding_index_dtypes(call, dt):
    _same_class(lambda m: call(m, m.tensor([0, 2]).to(getattr(m, dt))))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64", "bool", "float32"])
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 2), (4, 0)])
def test_gather_of_an_empty_index_of_any_dtype_is_empty_as_torch(dtype, shape):
    # torch skips gather's index checks (dtype, dims, sizes) for an empty index: op_db samples one
    xs = [lib.arange(6.0).reshape(3, 2).requires_grad_() for lib in (torch, descent)]
    outs = []
    for lib, x in zip((torch, descent), xs):
        index = lib.zeros(shape, dtype=getattr(lib, dtype))
        y = lib.gather(x, len(shape) - 1, index)
        (y.sum() + (x * 0).sum()).backward()
        outs.append((tuple(y.shape), x.grad.tolist()))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("dtype", ["uint8", "int32", "bool"])
def test_take_along_dim_takes_int64_indices_only_as_torch(dtype):
    with pytest.raises(RuntimeError):
        torch.take_along_dim(torch.zeros(3), torch.zeros(2, dtype=getattr(torch, dtype)), 0)
    with pytest.raises(RuntimeError, match="take_along_dim.*int64"):
        descent.take_along_dim(descent.zeros(3), descent.zeros(2, dtype=getattr(descent, dtype)), 0)
    with pytest.raises(RuntimeError, match="take_along_dim.*int64"):
        descent.zeros(3).take_along_dim(descent.zeros(2, dtype=getattr(descent, dtype)), 0)


@pytest.mark.parametrize("op", ["put", "index_copy", "index_fill", "take"])
def test_int64_only_index_ops_refuse_int32_as_torch(op):
    def call(lib):
        x, i = lib.zeros(3, 4), lib.tensor([0, 1], dtype=lib.int32)
        args = {
            "put": (i, lib.ones(2)),
            "index_copy": (0, i, lib.ones(2, 4)),
            "index_fill": (0, i, 1.0),
            "take": (i,),
        }[op]
        return getattr(x, op)(*args)

    with pytest.raises((RuntimeError, IndexError)):
        call(torch)
    with pytest.raises(RuntimeError, match=f"{op}.*int64"):
        call(descent)
